"""Machine shapes at the edges of each cloud's table, and the name-shortening rule: cases a
mutation run showed no test pinned down."""

from __future__ import annotations

import pytest

from components import naming
from components.shapes import ShapeError, machine_types


@pytest.mark.parametrize("vcpu, memory, expected", [
    (2, 1, "n2-custom-2-1024"),          # 0.5 GiB per vCPU: the smallest custom ratio
    (2, 16, "n2-highmem-2"),             # 8 GiB per vCPU in the table
    (6, 48, "n2-custom-6-49152"),        # 8 GiB per vCPU, custom: still allowed
    (30, 30, "n2-custom-30-30720"),      # 1 GiB per vCPU, 30 vCPUs: custom
    (32, 48, "n2-custom-32-49152"),      # 32 vCPUs: the largest custom count
])
def test_gcp_custom_shapes_cover_half_to_eight_gib_per_vcpu_up_to_32_vcpus(vcpu: int, memory: int, expected: str) -> None:
    assert machine_types("gcp", vcpu, memory, spot=False) == (expected,)


@pytest.mark.parametrize("vcpu, memory", [(2, 0), (6, 54), (34, 68), (3, 6), (4, 1)])
def test_gcp_refuses_shapes_outside_the_custom_range(vcpu: int, memory: int) -> None:
    with pytest.raises(ShapeError, match="set instanceType"):
        machine_types("gcp", vcpu, memory, spot=False)


@pytest.mark.parametrize("cloud, vcpu, memory", [("aws", 4, 6), ("azure", 4, 6), ("aws", 3, 12), ("azure", 3, 12),
                                                 ("aws", 4, 4), ("azure", 4, 4)])
def test_uneven_or_missing_ratios_name_the_shapes_the_cloud_has(cloud: str, vcpu: int, memory: int) -> None:
    with pytest.raises(ShapeError) as info:
        machine_types(cloud, vcpu, memory, spot=True)
    message = str(info.value)
    assert f"no {cloud} instance type is known for {vcpu} vCPU and {memory} GiB" in message
    assert "use a shape such as 4/8, 4/16" in message and "(vCPU/GiB) or set instanceType" in message, message


def test_an_unknown_cloud_is_named() -> None:
    with pytest.raises(ShapeError, match="unknown cloud 'oci'"):
        machine_types("oci", 4, 16, spot=False)


def test_shorten_keeps_names_that_fit_and_cuts_longer_ones_at_a_clean_boundary() -> None:
    assert naming.shorten("a" * 40, 40) == "a" * 40
    cut = naming.shorten("abcd-" * 9, 40)  # 45 characters
    assert len(cut) <= 40 and cut.startswith("abcd-abcd") and "--" not in cut
    assert cut != naming.shorten("abcd-" * 9 + "x", 40), "the digest tells long names apart"
    assert naming.shorten("-abcdefghij" * 5, 40).startswith("-abcdefghij"), "only the cut end is trimmed"


def test_physical_names_join_parts_with_single_hyphens() -> None:
    assert naming.physical_name("im-prod-aws", "nat", "1") == "im-prod-aws-nat-1"
    assert naming.cluster_name("prod-aws") == "im-prod-aws"
    assert len(naming.cluster_name("x" * 60)) == 40
    assert naming.dns_label("--Im_Prod--") == "im-prod"
