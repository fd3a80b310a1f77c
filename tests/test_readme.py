"""The README's examples are code too: its configuration example plans, its commands are CI's."""

from __future__ import annotations

import re

import yaml

from infra.config.loader import load_spec
from infra.offline.plan import ROOT, run_program

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_configuration_example_is_a_valid_stack() -> None:
    example = next(b for b in blocks("yaml") if "im-platform:cloud" in b)
    config = yaml.safe_load(example)["config"]
    values = {k: v if isinstance(v, str) else __import__("json").dumps(v) for k, v in config.items()}
    spec = load_spec(values, project="im-platform", stack="readme-aws")
    assert [p.name for p in spec.node_pools] == ["system", "worker"]
    assert spec.node_pools[1].machine_types == ("m7g.2xlarge",)
    plan = run_program("readme-aws", values)
    assert len(plan.of_type("aws:eks/nodeGroup:NodeGroup")) == 2


def test_quick_start_commands_are_what_ci_runs() -> None:
    commands = [line for line in blocks("bash")[0].splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    flat_ci = re.sub(r"\\\n\s*", "", ci)
    for command in commands:
        assert command in flat_ci.splitlines(), command


def test_documented_error_is_the_real_one() -> None:
    documented = next(line for line in README.splitlines() if line.startswith("config error: im-platform:cluster."))
    assert "minNodes is 50, but maxNodes is 40" in documented
    from tests.test_cli import BAD_VALUE
    assert documented == BAD_VALUE


def test_sample_plan_output_is_real() -> None:
    from tests.test_cli import cli_in_process  # the command's own output (CI runs it as a process too)

    sample = next(b for b in blocks("text") if b.startswith("Stack im-platform/dev-aws"))
    result = cli_in_process("plan", "--stack", "dev-aws")
    assert result.returncode == 0, result.stderr
    for line in sample.splitlines():
        if line.strip() != "...":
            assert line in result.stdout.splitlines(), line
