"""The plan command as users and tools call it: its stdout, stderr and exit code.

`cli` runs a real process, for what only a process shows (the exit status, a clean stderr to the
end, imports from another directory); `cli_in_process` runs the same `infra.cli.run` in this
process, sharing the session's plans, for everything else."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import run
from infra.offline.plan import all_stacks
from tests.conftest import ROOT
from tests.plans import sharing_plans

BAD_VALUE = "config error: im-platform:cluster.nodePools.gateway.minNodes is 50, but maxNodes is 40: minNodes must be <= maxNodes"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


def cli_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`cli(*args)` without a new interpreter: `python -m infra.cli` is `sys.exit(run(argv))`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), sharing_plans():
        try:
            code = run(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["python", "-m", "infra.cli", *args], code, out.getvalue(), err.getvalue())


def copy_stack(tmp_path: Path, name: str, edit) -> Path:  # noqa: ANN001 - edit mutates the config map
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev-aws.yaml").read_text())
    edit(doc["config"])
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_json_plan_follows_the_contract() -> None:
    result = cli_in_process("plan", "--stack", "dev-aws", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # nothing but the document on stdout
    assert (doc["project"], doc["stack"]) == ("im-platform", "dev-aws")
    assert doc["outputs"]["kubeconfig"] == "[secret]"
    for r in doc["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "custom", "inputs", "options"}
        assert r["urn"].startswith("urn:pulumi:dev-aws::im-platform::")
        assert set(r["options"]) == {"protect", "ignoreChanges", "dependsOn", "deleteBeforeReplace", "retainOnDelete",
                                     "replaceOnChanges", "additionalSecretOutputs", "provider"}
    groups = [r for r in doc["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup"]
    assert groups and all(g["options"]["ignoreChanges"] == ["scalingConfig.desiredSize"] for g in groups)


def test_readable_plan_shows_tree_and_pools() -> None:
    result = cli_in_process("plan", "--stack", "dev-aws")
    assert result.returncode == 0, result.stderr
    assert "im-platform:aws:EksCluster  im-dev-aws" in result.stdout
    assert "    aws:eks/cluster:Cluster  im-dev-aws-eks" in result.stdout, "children are indented under the component"
    assert "Node pools:" in result.stdout
    assert "worker   m7i.xlarge, m6i.xlarge, m6a.xlarge, m7a.xlarge  0..4 nodes  spot" in result.stdout


def test_config_file_takes_the_stack_name_from_its_file_name(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "qa-aws", lambda c: None)
    result = cli_in_process("plan", "--config-file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "qa-aws"


def test_bad_value_gives_one_message_and_exit_2(tmp_path: Path) -> None:
    def edit(config: dict) -> None:
        config["im-platform:cluster"]["nodePools"]["gateway"].update(minNodes=50, maxNodes=40)
    result = cli("plan", "--config-file", str(copy_stack(tmp_path, "broken", edit)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == BAD_VALUE
    assert "Traceback" not in result.stderr
    assert result.stdout == "", "nothing is declared"


@pytest.mark.parametrize(("text", "expected"), [
    # PyYAML's own words and place (its MarkedYAMLError: problem, problem_mark, context).
    ("config: [unclosed", "Pulumi.x.yaml:1:18: YAML syntax error: expected ',' or ']', but got '<stream end>' "
                          "(while parsing a flow sequence at line 1)"),
    ("config:\n  im-platform:cloud: aws\n   aws:region: x\n",
     "Pulumi.x.yaml:3:14: YAML syntax error: mapping values are not allowed here"),
    ("config:\n  a:\n    b: 1\n   c: 2\n", "Pulumi.x.yaml:4:4: YAML syntax error: expected <block end>, but found "
                                            "'<block mapping start>' (while parsing a block mapping at line 2)"),
    ("- just\n- a list\n", "Pulumi.x.yaml is not a YAML map: expected a map with a top-level 'config' key"),
])
def test_unreadable_stack_file_is_a_config_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(text)
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("config error: ")]
    assert line.startswith(f"config error: {path}") and " is null" not in line, line


@pytest.mark.parametrize("command", [["plan"], ["check"], ["manifests", "--out", "unused"]])
def test_unknown_stack_says_so_and_lists_the_stacks(command: list[str]) -> None:
    result = cli_in_process(command[0], "--stack", "nope", *command[1:])
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith('config error: --stack is "nope": no such stack (no stacks/Pulumi.nope.yaml)')
    # Whatever stacks/ holds (a stack someone adds included), in order.
    assert f"the stacks are {', '.join(all_stacks())}; to add one" in message
    assert "Traceback" not in result.stderr and not (ROOT / "unused").exists()
    assert "Planning" not in result.stderr, "said before any work starts"


def test_a_near_miss_stack_name_gets_a_suggestion() -> None:
    result = cli_in_process("plan", "--stack", "dev-awz")
    assert result.returncode == 2
    assert "did you mean 'dev-aws'?" in result.stderr


def _stray_output(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith(("Exception ignored", "Traceback", "ValueError", "RuntimeWarning", "ResourceWarning"))
            or "Warning:" in line]


def test_no_stray_output_at_exit_over_many_runs(tmp_path: Path) -> None:
    """The interpreter's teardown must find no event loop left open: each run, in its own process,
    ends with a clean stderr (a loop left to the garbage collector printed `Exception ignored in:
    <function BaseEventLoop.__del__ ...>` once in about ten runs, so a few runs prove little on
    their own; the next test checks the cause in-process, where it is deterministic, so these runs
    are the end-to-end witness, not the proof)."""
    bad = copy_stack(tmp_path, "qa-aws", lambda c: c["im-platform:cluster"]["nodePools"]["system"].update(maxNodes=0))
    runs: list[tuple[list[str], int]] = [
        # Quick runs in which the program starts under the runtime, then stops on the error.
        *[(["plan", "--config-file", str(bad)], 2)] * 4,
        (["plan", "--stack", "nope"], 2),
        (["stacks"], 0),
        # A whole plan in its own process: test_plan_runs_from_any_directory (check and manifests plan
        # through the same function); the next test plans a pair stack in-process.
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda run: cli(*run[0]), runs))
    for (args, code), result in zip(runs, results, strict=True):
        assert result.returncode == code, (args, result.stderr)
        assert not _stray_output(result.stderr), (args, result.stderr)
        if "--json" in args:
            assert result.stderr == "", (args, result.stderr)


def test_a_plan_leaves_no_event_loop_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes the runs above clean, checked in-process where it is deterministic: fresh plans
    (every program run, a referenced stack's included, goes through `infra.offline.plan.run_recorded`)."""
    import infra.offline.plan
    from infra.offline.plan import plan_stack

    runs: list[str] = []
    real = infra.offline.plan.run_recorded
    monkeypatch.setattr(infra.offline.plan, "run_recorded",
                        lambda program, stack, *a, **k: runs.append(stack) or real(program, stack, *a, **k))

    def open_loops() -> set[int]:
        return {id(o) for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()}

    # The collector stays off until the count: a loop left open must still be there to be found
    # (collected, it would be closed by its finalizer, and missed).
    was = gc.isenabled()
    gc.disable()
    try:
        before = open_loops()
        plan_stack("dev-aws")
        left = open_loops() - before
    finally:
        if was:
            gc.enable()
    assert runs == ["dev-aws"], "planned now, not read from earlier tests"
    assert not left, f"{len(left)} event loop(s) left open for the interpreter's teardown"


def test_plan_runs_from_any_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--stack", "dev-aws", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "dev-aws"
    # A whole plan in its own process ends with nothing on stderr (test_no_stray_output_at_exit_over_many_runs).
    assert result.stderr == "", result.stderr


@pytest.mark.parametrize(("argv", "collector"), [(["plan", "--stack", "dev-aws"], False), (["stacks"], False),
                                                 (["failover", "--to", "prod-azure"], True)])
def test_a_process_pauses_the_collector_for_offline_commands_only(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                                   collector: bool) -> None:
    import infra.cli

    seen: list[bool] = []
    monkeypatch.setattr(infra.cli, "run", lambda args: seen.append(gc.isenabled()) or 0)
    monkeypatch.setattr(sys, "argv", ["infra.cli", *argv])
    was = gc.isenabled()
    gc.enable()
    try:
        with pytest.raises(SystemExit) as done:
            infra.cli.main()
    finally:
        gc.enable() if was else gc.disable()
    assert done.value.code == 0 and seen == [collector]


def test_every_independent_mistake_is_its_own_config_error_line(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        pools = config["im-platform:cluster"]["nodePools"]
        pools["gateway"]["minNodes"] = 50
        pools["worker"]["vcpu"] = "eight"
        config["im-platform:services"]["logic"]["image"] = "ghcr.io/acme/im-logic:latest"
        config["im-platform:services"]["push"]["replicas"]["max"] = 0
        config["im-platform:guardrails"] = {"maxNodesPerPool": "many"}

    path = copy_stack(tmp_path, "broken", edit)
    for command in ("plan", "check"):
        result = cli_in_process(command, "--config-file", str(path))
        lines = [line for line in result.stderr.splitlines() if not line.startswith("Planning ")]
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert all(line.startswith("config error: im-platform:") for line in lines), lines
        keys = [line.split()[2] for line in lines]
        assert keys == ["im-platform:cluster.nodePools.gateway.minNodes", "im-platform:cluster.nodePools.worker.vcpu",
                        "im-platform:guardrails.maxNodesPerPool"], lines
    # Services are read once the pools they name are: with the pools fixed, their mistakes show.
    def services_only(config: dict[str, Any]) -> None:
        config["im-platform:services"]["logic"]["image"] = "ghcr.io/acme/im-logic:latest"
        config["im-platform:services"]["push"]["replicas"]["max"] = 0
        config["im-platform:guardrails"] = {"maxNodesPerPool": "many"}

    result = cli_in_process("check", "--config-file", str(copy_stack(tmp_path, "broken", services_only)))
    keys = [line.split()[2] for line in result.stderr.splitlines()]
    assert keys == ["im-platform:guardrails.maxNodesPerPool", "im-platform:services.logic.image",
                    "im-platform:services.push.replicas.min"], result.stderr
