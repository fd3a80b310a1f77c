"""What the real CLI reads from stacks/ (Pulumi.yaml: stackConfigDir) equals what the offline plan
reads (`infra.config.stackfiles.read_stack_config`), for every stack file there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config.stackfiles import STACKS_DIR, all_stacks, project_name, read_stack_config
from tests.engine.engine import cli, project_copy

pytestmark = pytest.mark.engine


def cli_config(tools: Path, env: dict[str, str], project: Path, stack: str) -> dict[str, Any]:
    cli(tools, env, "stack", "init", stack, "--secrets-provider", "passphrase", cwd=project)
    out = cli(tools, env, "config", "--json", "--stack", stack, cwd=project)
    config: dict[str, Any] = json.loads(out.stdout)
    return config


def as_offline(entry: dict[str, Any]) -> Any:
    """A `pulumi config --json` entry as the offline reader hands it to the program: structured
    values as their JSON, scalars as text."""
    if entry.get("secret"):
        return "[secret]"
    if "objectValue" in entry:
        return json.loads(json.dumps(entry["objectValue"]))
    return entry["value"]


def offline_value(value: str) -> Any:
    """The offline reader's string, with structured values parsed, to compare with the CLI's."""
    if value.startswith(("{", "[")):
        return json.loads(value)
    return value


@pytest.mark.parametrize("stack", all_stacks())
def test_the_cli_reads_the_stack_file_as_the_offline_plan_does(stack: str, tools: Path, env: dict[str, str],
                                                               tmp_path: Path) -> None:
    source = STACKS_DIR / f"Pulumi.{stack}.yaml"
    project = project_copy(tmp_path, {stack: source})
    from_cli = {key: as_offline(entry) for key, entry in cli_config(tools, env, project, stack).items()}
    values, secret_keys = read_stack_config(source, project_name())
    offline = {key: offline_value(value) for key, value in values.items()}
    assert from_cli == offline
    assert secret_keys == [k for k, e in from_cli.items() if e == "[secret]"]
