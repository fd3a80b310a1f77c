"""Pure tests of names, tags and shapes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from components import naming, shapes


@given(st.text(min_size=1, max_size=120))
def test_dns_label_is_always_valid(text: str) -> None:
    label = naming.dns_label(text, 40)
    assert 1 <= len(label) <= 40
    assert all(c.islower() or c.isdigit() or c == "-" for c in label)
    assert naming.dns_label(text, 40) == label, "stable: no random part"


def test_long_names_keep_a_stable_hash_suffix() -> None:
    a = naming.physical_name("im-" + "x" * 50, "nodes", max_len=30)
    b = naming.physical_name("im-" + "x" * 51, "nodes", max_len=30)
    assert len(a) == len(b) == 30 and a != b


def test_fixed_tag_keys_win_over_extra_tags() -> None:
    tags = naming.tags("prod", "prod-aws", {"environment": "dev", "team": "im"})
    assert tags == {"team": "im", "environment": "prod", "stack": "prod-aws", "managed-by": "im-platform"}
    assert all(k == k.lower() and ":" not in k and "/" not in k for k in tags), "valid GCP label keys"


def test_cluster_name_derives_from_the_stack() -> None:
    assert naming.cluster_name("prod-aws") == "im-prod-aws"
    assert naming.child_name("im-prod-aws", "nat", "1") == "im-prod-aws-nat-1"


def test_gcp_custom_shapes_cover_odd_ratios() -> None:
    assert shapes.machine_types("gcp", 6, 18, False) == ("n2-custom-6-18432",)
    assert shapes.machine_types("gcp", 8, 32, True) == ("n2-standard-8",)
