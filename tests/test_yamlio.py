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


# ---------------------------------------------------------------------------------------------
# set_stack_value: the one edit a failover makes to a stack file.

STACK = """# a comment that stays
config:
  aws:region: us-east-1   # kept
  im-platform:dr:
    peer: prod-azure
    role: 'primary'       # the only edit
  traffic: {stacks: [a, b], active: a}
"""


def test_set_stack_value_changes_one_value_and_keeps_every_other_byte(tmp_path: Path) -> None:
    from infra.config.stackfiles import set_stack_value

    path = tmp_path / "Pulumi.s.yaml"
    path.write_text(STACK)
    assert set_stack_value(path, "im-platform:dr.role", "standby") is True
    assert path.read_text() == STACK.replace("'primary'", "standby")
    # Unprefixed project keys and flow style, as the engine reads them.
    assert set_stack_value(path, "im-platform:traffic.active", "b") is True
    assert path.read_text() == STACK.replace("'primary'", "standby").replace("active: a}", "active: b}")
    assert set_stack_value(path, "im-platform:traffic.active", "b") is False, "already so: nothing written"
    # A value YAML would read as something else is quoted.
    assert set_stack_value(path, "im-platform:dr.peer", "true") is True
    assert 'peer: "true"' in path.read_text()


def test_set_stack_value_refuses_a_key_the_file_does_not_hold(tmp_path: Path) -> None:
    from infra.config.errors import ConfigError
    from infra.config.stackfiles import set_stack_value

    path = tmp_path / "Pulumi.s.yaml"
    path.write_text(STACK)
    with pytest.raises(ConfigError, match="im-platform:dr.rol is not set: in .*Pulumi.s.yaml: expected the stack file to hold it"):
        set_stack_value(path, "im-platform:dr.rol", "standby")
    with pytest.raises(ConfigError, match="expected a single value to replace"):
        set_stack_value(path, "im-platform:dr", "standby")
    assert path.read_text() == STACK
