"""`python -m infra.cli failover`: the pair found from stacks/, one clear line for bad input, the
confirmation, each step printed with its duration, the summary and the exit status."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra import cli
from infra.failover.command import cmd_failover, find_pair, github_outputs
from infra.failover.orchestrator import lock_path
from tests.conftest import ROOT
from tests.test_failover import FakeControl
from tests.test_failover_control import FakePulumi, write_fixture


@pytest.fixture()
def stacks(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "repo")


def args(stacks: Path, *extra: str) -> argparse.Namespace:
    parser = cli.build_parser()
    return parser.parse_args(["failover", "--stacks-dir", str(stacks), *extra])


def test_the_dry_run_prints_the_steps_and_changes_nothing(stacks: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    before = {p.name: p.read_bytes() for p in stacks.iterdir()}
    run = subprocess.run([sys.executable, "-m", "infra.cli", "failover", "--to", "prod-azure", "--dry-run",
                          "--stacks-dir", str(stacks), "--journal", str(journal)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "from prod-aws to prod-azure" in out and "Nothing is changed" in out
    for step in ("preflight", "promote", "health", "route", "demote"):
        assert f"  {step}" in out
    assert "prod-azure: im-platform:dr.role = primary" in out
    assert "prod-traffic: im-platform:traffic.active = prod-azure" in out
    assert not journal.exists() and not lock_path(journal).exists()
    assert {p.name: p.read_bytes() for p in stacks.iterdir()} == before


@pytest.mark.parametrize("target, message", [
    ("prod-gcp", "unknown stack prod-gcp"),
    ("prod-traffic", "prod-traffic is a traffic stack"),
    ("lonely", "lonely is in no DR pair"),
])
def test_bad_targets_get_one_line_and_exit_2(stacks: Path, target: str, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (stacks / "Pulumi.lonely.yaml").write_text("config:\n  im-platform:cloud: gcp\n")
    assert cli.run(["failover", "--to", target, "--dry-run", "--stacks-dir", str(stacks)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_pair_whose_peers_disagree_is_refused(stacks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stacks / "Pulumi.prod-azure.yaml").write_text("config:\n  im-platform:dr:\n    peer: prod-gcp\n    role: standby\n")
    assert cli.run(["failover", "--to", "prod-azure", "--dry-run", "--stacks-dir", str(stacks)]) == 2
    assert "im-platform:dr.peer of prod-azure is 'prod-gcp': prod-aws expected" in capsys.readouterr().err


def test_the_target_already_serving_is_one_line(stacks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["failover", "--to", "prod-aws", "--yes", "--stacks-dir", str(stacks)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["failover: prod-aws already serves chat.example.com (traffic stack prod-traffic): nothing to do"]


def test_without_a_terminal_it_needs_yes(stacks: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert cli.run(["failover", "--to", "prod-azure", "--stacks-dir", str(stacks)]) == 2
    assert "pass --yes" in capsys.readouterr().err


def test_a_wrong_confirmation_changes_nothing(stacks: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    control = FakeControl()
    assert cmd_failover(args(stacks, "--to", "prod-azure", "--journal", str(tmp_path / "j.json")), control) == 2
    assert control.calls == []


def test_a_run_prints_each_step_and_a_summary(stacks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("infra.failover.orchestrator.time.sleep", lambda s: None)
    control = FakeControl()
    journal = tmp_path / "j.json"
    assert cmd_failover(args(stacks, "--to", "prod-azure", "--yes", "--journal", str(journal)), control) == 0
    out = capsys.readouterr().out
    for step in ("preflight", "promote", "health", "route", "demote"):
        assert f"==> {step} ..." in out and f"<== {step}: done in " in out
    assert "Serving: prod-azure" in out and "Time to serve: " in out
    assert json.loads(journal.read_text())["target"] == "prod-azure"


def test_a_failed_route_exits_1_naming_the_step(stacks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("infra.failover.orchestrator.time.sleep", lambda s: None)
    control = FakeControl()
    control.faults["route"] = [RuntimeError("route53 denied")] * 3
    assert cmd_failover(args(stacks, "--to", "prod-azure", "--yes", "--journal", str(tmp_path / "j.json")), control) == 1
    out = capsys.readouterr().out
    assert "FAILED at route" in out and "route53 denied" in out and "Serving: prod-aws" in out
    assert "Pending: route, demote" in out


def test_a_held_journal_exits_2_naming_the_holder(stacks: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.json"
    lock_path(journal).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "user": "oncall",
                                              "started_at": "2026-01-01T03:00:00+00:00"}))
    control = FakeControl()
    assert cmd_failover(args(stacks, "--to", "prod-azure", "--yes", "--journal", str(journal)), control) == 2
    assert "user oncall" in capsys.readouterr().err and control.calls == []


def test_the_pair_is_found_from_the_traffic_stack(stacks: Path) -> None:
    pair = find_pair("prod-azure", stacks)
    assert (pair.traffic_stack, pair.stacks, pair.active, pair.name) == (
        "prod-traffic", ("prod-aws", "prod-azure"), "prod-aws", "chat.example.com")


def test_other_commands_still_need_a_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run(["plan"])
    assert exc.value.code == 2 and "plan needs --stack NAME" in capsys.readouterr().err


def test_the_workflow_learns_the_pair_and_its_environment(stacks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clouds each job signs in to come from the stacks' offline plans (tests/test_workflows.py
    # plans real ones); these fixture files are too short to plan.
    import infra.policy.check
    monkeypatch.setattr(infra.policy.check, "stack_clouds", lambda path: [path.name.split(".")[1].split("-")[1]])
    assert github_outputs("prod-azure", stacks) == {"traffic-stack": "prod-traffic", "environment": "prod",
                                                    "cloud": "azure", "peer": "prod-aws", "peer-cloud": "aws",
                                                    "clouds": '["azure","traffic"]', "peer-clouds": '["aws"]'}
    (stacks / "Pulumi.prod-azure.yaml").write_text(
        "config:\n  im-platform:environment: 'prod\\nx=y'\n  im-platform:dr:\n    peer: prod-aws\n    role: standby\n")
    with pytest.raises(Exception, match="im-platform:environment of prod-azure"):
        github_outputs("prod-azure", stacks)


def test_the_readme_dry_run_example_runs(stacks: Path, tmp_path: Path) -> None:
    """`python -m infra.cli failover --to prod-azure --dry-run`, as the README writes it: on the
    repository's stacks/ once it holds the example pair's traffic stack, on the fixture until then."""
    readme = (ROOT / "README.md").read_text()
    assert "venv/bin/im-platform failover --to prod-azure --dry-run" in readme
    has_pair = any("im-platform:traffic" in p.read_text() for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    extra = [] if has_pair else ["--stacks-dir", str(stacks)]
    journal = tmp_path / "never.json"
    run = subprocess.run([sys.executable, "-m", "infra.cli", "failover", "--to", "prod-azure", "--dry-run",
                          "--journal", str(journal), *extra], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "to prod-azure" in run.stdout and "promote   would run: prod-azure" in run.stdout
    assert not journal.exists()


# ---------------------------------------------------------------------------------------------
# Preflight: what a real run needs, checked before anything changes (tests/fake_pulumi.py as the CLI).


def _untouched(stacks: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in stacks.iterdir()}


def test_without_a_pulumi_cli_it_stops_at_preflight_with_one_line(stacks: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    before = _untouched(stacks)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "PULUMI_HOME": str(tmp_path / "no-pulumi-home")}
    run = subprocess.run([sys.executable, "-m", "infra.cli", "failover", "--to", "prod-azure", "--yes",
                          "--stacks-dir", str(stacks), "--journal", str(journal)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"failover: preflight: no Pulumi CLI: `pulumi` is not on PATH and not in {tmp_path / 'no-pulumi-home' / 'bin'} "
        "(install version 3.1.0 or newer: https://www.pulumi.com/docs/install/)"]
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not journal.exists() and not lock_path(journal).exists()
    assert _untouched(stacks) == before


def _fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **state: object) -> FakePulumi:
    """The fake CLI in <PULUMI_HOME>/bin, not on PATH: found where the installer puts it."""
    home = tmp_path / "pulumi-home"
    fake = FakePulumi(home, monkeypatch, {"prod-azure": {"gateway": {"service": "gateway", "address": "127.0.0.1",
                                                                    "port": 1, "healthPath": "/healthz"}}})
    fake.state.write_text(json.dumps({**json.loads(fake.state.read_text()), **state}))
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PULUMI_HOME", str(home))
    return fake


def test_each_stack_that_cannot_be_selected_is_one_line_and_nothing_changes(
        stacks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = _fake_home(tmp_path, monkeypatch, missing=["prod-azure"], denied=["prod-traffic"])
    before = _untouched(stacks)
    journal = tmp_path / "j.json"
    code = cli.run(["failover", "--to", "prod-azure", "--yes", "--stacks-dir", str(stacks), "--journal", str(journal)])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "failover: preflight: stack prod-azure cannot be selected: the backend you are logged in to has no such "
        "stack (pulumi login to the right one; pulumi stack ls)",
        "failover: preflight: stack prod-traffic cannot be selected: error: [403] Forbidden: you are not a member "
        "of this organization",
    ]
    assert fake.mutating() == [] and not journal.exists() and _untouched(stacks) == before


def test_a_pulumi_cli_older_than_the_sdk_needs_is_one_line(stacks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _fake_home(tmp_path, monkeypatch, version="v3.0.5")
    before = _untouched(stacks)
    assert cli.run(["failover", "--to", "prod-azure", "--yes", "--stacks-dir", str(stacks),
                    "--journal", str(tmp_path / "j.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("failover: preflight: the Pulumi CLI ") and "too old" in err[0], err
    assert "3.0.5" in err[0] and "3.1.0" in err[0]
    assert _untouched(stacks) == before


def test_with_the_cli_in_pulumi_home_the_run_passes_preflight_and_uses_it(
        stacks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Found in $PULUMI_HOME/bin: the run selects every stack, promotes, and stops at the health gate
    (nothing listens on the gateway), so nothing is routed."""
    fake = _fake_home(tmp_path, monkeypatch)
    code = cli.run(["failover", "--to", "prod-azure", "--yes", "--health-timeout", "0", "--stacks-dir", str(stacks),
                    "--journal", str(tmp_path / "j.json")])
    assert code == 1, capsys.readouterr()
    selected = {a[a.index("--stack") + 1] for a in fake.calls() if "select" in a}
    assert selected == {"prod-aws", "prod-azure", "prod-traffic"}
    assert fake.mutating() == [("up", "prod-azure", "failover: promote prod-azure to primary")]
    assert "role: primary" in (stacks / "Pulumi.prod-azure.yaml").read_text()
    assert "active: prod-aws" in (stacks / "Pulumi.prod-traffic.yaml").read_text()
