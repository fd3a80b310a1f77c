"""One behaviour across the commands, through the real CLI: --version, --json or readable text,
usage errors (the subcommand's own usage, exit 2, one line, no traceback), --stack and
--config-file that disagree, check's verdict on stdout, setup.sh's Python check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_cli import cli, cli_in_process, copy_stack

SUBCOMMANDS = ["plan", "check", "cost", "manifests", "failover", "stacks"]


def one_error_line(stderr: str) -> str:
    """The last line, after asserting there is no traceback and the error is said once."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Planning ")]
    assert lines, "an error is said"
    return lines[-1]


def test_version_is_the_projects() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"im-platform {version}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_an_unknown_flag_prints_that_subcommands_usage(command: str) -> None:
    required = {"failover": ["--to", "prod-azure"], "manifests": ["--stack", "dev-aws", "--out", "unused"]}
    result = cli_in_process(command, *required.get(command, []), "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: im-platform {command} "), result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"im-platform {command}: error: unrecognized arguments: --no-such-flag")
    assert not (ROOT / "unused").exists()


def test_a_command_without_its_stack_prints_its_own_usage() -> None:
    result = cli_in_process("cost")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: im-platform cost ")
    assert "cost needs --stack NAME or --config-file FILE" in result.stderr


@pytest.mark.parametrize("command", ["plan", "check", "cost"])
def test_json_or_readable_text(command: str) -> None:
    readable = cli_in_process(command, "--stack", "dev-aws")
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout.strip() and not readable.stdout.lstrip().startswith(("{", "["))
    as_json = cli_in_process(command, "--stack", "dev-aws", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)


def test_stacks_prints_a_table_and_json_on_request() -> None:
    files = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    table = cli("stacks")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["stack", "cloud", "environment", "wave", "runner"]
    assert [r.split()[0] for r in rows] == files
    listed = json.loads(cli_in_process("stacks", "--json").stdout)  # the session's plans
    assert [s["stack"] for s in listed] == files
    for row, entry in zip(rows, listed, strict=True):
        assert row.split()[:4] == [entry["stack"], entry["cloud"], entry["environment"], entry["wave"]]


def test_the_workflows_call_stacks_in_a_machine_format() -> None:
    """The workflows read `stacks` output with fromJSON: each call asks for a machine format, and
    that output is what they parse (the readable table is for people)."""
    calls = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in (yaml.safe_load(path.read_text()).get("jobs") or {}).values():
            for step in job.get("steps") or []:
                calls += re.findall(r"python -m infra\.cli stacks([^\n>|]*)", step.get("run", ""))
    assert calls, "the workflows list the stacks through the CLI"
    for flags in calls:
        args = flags.split()
        assert "--github-output" in args or "--json" in args, flags
        result = cli_in_process("stacks", *args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        if "--github-output" in args:
            values = dict(line.split("=", 1) for line in lines)
            assert "all" in values and all(isinstance(json.loads(v), list) for v in values.values())
        else:
            assert isinstance(json.loads(result.stdout), list)


def test_check_prints_its_verdict_on_stdout() -> None:
    result = cli_in_process("check", "--stack", "dev-aws")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"check dev-aws: \d+ rules passed over \d+ resources\n", result.stdout), result.stdout


def test_failover_json_prints_the_outcome(tmp_path: Path) -> None:
    from tests.test_failover_control import write_fixture

    stacks = write_fixture(tmp_path / "repo")
    result = cli("failover", "--to", "prod-azure", "--dry-run", "--json", "--stacks-dir", str(stacks),
                 "--journal", str(tmp_path / "j.json"))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["target"], doc["dryRun"], doc["trafficStack"]) == ("prod-azure", True, "prod-traffic")
    assert [s["name"] for s in doc["steps"]] == ["preflight", "promote", "health", "route", "demote"]
    serving = cli("failover", "--to", "prod-aws", "--json", "--stacks-dir", str(stacks))
    assert serving.returncode == 0 and json.loads(serving.stdout)["nothingToDo"] is True


# -- --stack and --config-file ---------------------------------------------------------------------

@pytest.mark.parametrize("command", ["plan", "check", "cost", "manifests"])
@pytest.mark.parametrize("given", ["Pulumi.dev-aws.yaml", "stacks/Pulumi.dev-aws.yaml", "dev-aws.yaml"])
def test_a_file_given_as_stack_says_to_use_config_file(command: str, given: str) -> None:
    extra = ["--out", "unused"] if command == "manifests" else []
    result = cli_in_process(command, "--stack", given, *extra)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith(f'config error: --stack is "{given}": a file name') and f"--config-file {given}" in line
    assert "Pulumi.Pulumi" not in line and "Planning" not in result.stderr and not (ROOT / "unused").exists()


@pytest.mark.parametrize("command", ["plan", "check", "cost", "manifests"])
def test_a_missing_config_file_says_it_does_not_exist(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    extra = ["--out", str(tmp_path / "out")] if command == "manifests" else []
    result = cli_in_process(command, "--config-file", str(missing), *extra)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f'config error: --config-file is "{missing}": no such file'


def test_a_stack_name_that_disagrees_with_the_files_name_names_both(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "qa-aws", lambda c: None)
    result = cli_in_process("plan", "--stack", "dev-aws", "--config-file", str(path))
    assert result.returncode == 2 and result.stdout == ""
    line = one_error_line(result.stderr)
    assert '--stack is "dev-aws"' in line and "'qa-aws'" in line and str(path) in line


def gcp_file(tmp_path: Path, name: str) -> Path:
    """A copy of dev-aws moved to GCP, under a file name that names no stack."""
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev-aws.yaml").read_text())
    config = doc["config"]
    config.pop("aws:region")
    config.update({"im-platform:cloud": "gcp", "gcp:project": "im-test-123", "gcp:region": "europe-west1"})
    for pool in config["im-platform:cluster"]["nodePools"].values():
        pool.pop("instanceType", None)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("command", ["plan", "check", "cost"])
def test_a_stack_on_another_cloud_than_the_file_is_an_error_naming_both(command: str, tmp_path: Path) -> None:
    path = gcp_file(tmp_path, "cluster.yaml")  # no stack name in the file's name: --stack names it
    result = cli_in_process(command, "--stack", "dev-aws", "--config-file", str(path))
    assert result.returncode == 2 and result.stdout == ""
    line = one_error_line(result.stderr)
    assert '--stack is "dev-aws"' in line and "on aws" in line and "im-platform:cloud gcp" in line and str(path) in line


def test_a_new_stack_name_for_a_file_still_works(tmp_path: Path) -> None:
    """--stack names a stack for a file not named after one, on the file's own cloud."""
    path = gcp_file(tmp_path, "cluster.yaml")
    result = cli_in_process("plan", "--stack", "qa-gcp", "--config-file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "qa-gcp"


# -- manifests: usage errors exit 2, one line ------------------------------------------------------

def test_manifests_index_inside_out_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = cli_in_process("manifests", "--stack", "dev-aws", "--out", str(out), "--index", str(out / "meta"))
    assert result.returncode == 2
    assert "is inside" in one_error_line(result.stderr) and "Planning" not in result.stderr
    assert not out.exists()


def test_manifests_of_a_traffic_stack_is_a_usage_error(tmp_path: Path) -> None:
    traffic = next((p for p in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")) if "im-platform:traffic" in p.read_text()),
                   None)
    if traffic is None:
        pytest.skip("no traffic stack in stacks/")
    out = tmp_path / "k8s"
    result = cli_in_process("manifests", "--config-file", str(traffic), "--out", str(out))
    assert result.returncode == 2
    assert "is a traffic stack" in one_error_line(result.stderr) and "Planning" not in result.stderr
    assert not out.exists()


def test_manifests_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("manifests", "--stack", "dev-aws", "--out", str(blocker / "k8s"))
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (f"manifests dev-aws: cannot write to {blocker / 'k8s'}: "
                                             f"{blocker} is a file, not a directory")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no folder can be made")
def test_manifests_into_a_folder_that_cannot_be_made_is_a_usage_error() -> None:
    result = cli("manifests", "--stack", "dev-aws", "--out", "/proc/im-platform/k8s")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("manifests dev-aws: cannot write to /proc/im-platform") and "FileNotFoundError" not in line


# -- setup.sh --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "expected"), [
    ("3.10.12", "setup: Python 3.11 or newer is needed; {python} is 3.10.12"),
    (None, "setup: {python} not found: install Python 3.11 or newer"),
])
def test_setup_checks_the_python_version_before_anything(tmp_path: Path, version: str | None, expected: str) -> None:
    """An old or missing Python is refused first, with one line, and nothing is made: the copy of
    setup.sh runs in an empty folder, so any environment it made would show there."""
    work = tmp_path / "clone"
    work.mkdir()
    shutil.copy(ROOT / "setup.sh", work / "setup.sh")
    python = tmp_path / "python3"
    if version:
        python.write_text(f"#!/bin/sh\necho {version}\n")
        python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python)}
    result = subprocess.run(["bash", str(work / "setup.sh")], cwd=work, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected.format(python=python)), result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["setup.sh"]
