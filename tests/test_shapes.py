"""Machine shapes at the edges of each cloud's table, and the name-shortening rule: cases a
mutation run showed no test pinned down."""

from __future__ import annotations

import pytest

from components import naming
from components.shapes import ShapeError, machine_types, valid_shapes


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
    assert "(vCPU/GiB) or set instanceType" in message, message
    suggested = [tuple(map(int, s.split("/"))) for s in message.split("use a shape such as ")[1].split(" (")[0].split(", ")]
    assert suggested and all(machine_types(cloud, v, m, spot=True) for v, m in suggested), suggested


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("vcpu, memory", [(7, 16), (7, 14), (3, 12), (5, 20), (15, 64), (100, 200), (1, 1)])
def test_a_shape_the_cloud_lacks_suggests_the_nearest_shapes_it_has_and_each_plans(cloud: str, arch: str, vcpu: int,
                                                                                   memory: int) -> None:
    if cloud == "gcp" and arch == "arm64":
        return  # no arm64 shapes in the table on GCP: the message says to set instanceType
    with pytest.raises(ShapeError) as info:
        machine_types(cloud, vcpu, memory, spot=False, arch=arch)
    text = str(info.value).split("use a shape such as ")[1].split(" (vCPU/GiB)")[0]
    suggested = [tuple(map(int, s.split("/"))) for s in text.split(", ")]
    # Every suggestion is a shape the table maps, and the obvious neighbours are among them:
    # vcpu 7 with 16 GiB names 8/16 (one vCPU up, the same memory).
    assert all(machine_types(cloud, v, m, spot=False, arch=arch) for v, m in suggested), suggested
    if (vcpu, memory) == (7, 16):
        assert (8, 16) in suggested, suggested


def test_the_arch_of_an_instance_type_follows_each_clouds_naming_rule() -> None:
    from components.shapes import instance_type_arch

    # Every type the shape table maps has the architecture it was mapped for.
    for cloud in ("aws", "gcp", "azure"):
        for arch in ("x86_64", "arm64"):
            for v, m in valid_shapes(cloud, arch):
                for instance_type in machine_types(cloud, v, m, spot=True, arch=arch):
                    assert instance_type_arch(cloud, instance_type) == arch, (cloud, instance_type)
    # And the types users name beside them (AWS Graviton "g", GCP T2A/C4A, Azure "p").
    for cloud, instance_type, arch in [("aws", "c7g.xlarge", "arm64"), ("aws", "t4g.medium", "arm64"),
                                       ("aws", "x2gd.large", "arm64"), ("aws", "a1.large", "arm64"),
                                       ("aws", "g4dn.xlarge", "x86_64"), ("aws", "m7a.large", "x86_64"),
                                       ("gcp", "t2a-standard-8", "arm64"), ("gcp", "c4a-standard-8", "arm64"),
                                       ("gcp", "c3-standard-8", "x86_64"), ("azure", "Standard_D8ps_v6", "arm64"),
                                       ("azure", "Standard_B2pls_v2", "arm64"), ("azure", "Standard_D8as_v5", "x86_64")]:
        assert instance_type_arch(cloud, instance_type) == arch, instance_type


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


def test_the_readmes_shape_table_is_what_the_shape_lookup_returns() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    header = "| GiB per vCPU | AWS (spot alternatives) | GCP | Azure |"
    rows = [line for line in readme.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == 4
    n = 4
    for row in rows:
        ratio, aws, gcp, azure = [c.strip() for c in row.strip("|").split("|")]
        memory = n * int(ratio)
        names = {"aws": aws, "gcp": gcp, "azure": azure}
        for cloud, cell in names.items():
            if cell == "—":
                with pytest.raises(ShapeError):
                    machine_types(cloud, n, memory, spot=True)
                continue
            found = machine_types(cloud, n, memory, spot=True)
            families = [f.strip("`() ") for f in cell.replace("(", ",").split(",")]
            if cloud == "aws":
                assert [t.split(".")[0] for t in found] == families, (ratio, found)
            else:
                (pattern,) = families
                assert found == (pattern.replace("N", str(n), 1).replace("M", str(memory * 1024)),), (ratio, found)
    sizes = readme.split("Sizes N: ", 1)[1].split(" (", 1)[0]
    assert [int(s) for s in sizes.split(", ")] == [s for s in (2, 4, 8, 16, 32, 48, 64) if machine_types("aws", s, s * 4, False)]
