"""infra.config.yamlio: the fast loader reads what PyYAML's safe loader reads, and fails the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import yamlio
from tests.conftest import ROOT

DOCUMENTS = sorted((ROOT / "stacks").glob("Pulumi.*.yaml")) + sorted((ROOT / "infra" / "cost" / "catalog").glob("*.yaml"))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_reads_every_stack_file_and_catalog_as_the_safe_loader_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert yamlio.safe_load(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["config: [unclosed", "a: 1\n b: 2\n", "key: @value", "- x\n-: [\n"])
def test_a_bad_document_fails_with_the_safe_loaders_error(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError) as got:
        yamlio.safe_load(text)
    assert str(got.value) == str(expected.value)


def test_refuses_what_the_safe_loader_refuses() -> None:
    with pytest.raises(yaml.YAMLError):
        yamlio.safe_load("!!python/object/apply:os.system ['true']")


def test_uses_the_c_loader_when_pyyaml_has_one() -> None:
    assert (yamlio._FAST is not None) == bool(getattr(yaml, "__with_libyaml__", False))
