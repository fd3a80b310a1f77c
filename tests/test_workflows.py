"""The GitHub Actions workflows: they parse, cover every stack in stacks/ through the stack list
the CI derives from the folder, deploy in the order dev -> staging -> prod with prod behind its
environment, keep one concurrency group per stack for updates, authenticate only through OIDC,
pin every action to a commit, grant each job only what it uses, never expand an expression inside
a shell script, and lint clean with actionlint and zizmor."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import cli
from infra.config.errors import ConfigError
from infra.offline.plan import Plan, plan_stack
from infra.policy.check import WAVES, github_outputs, list_stacks
from tests.conftest import ROOT
from tests.plans import sharing_plans, stack_plan
from tests.test_stacks import REQUIRED

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
REUSABLE = "./.github/workflows/stack.yml"
OIDC_ACTIONS = {
    "aws": "aws-actions/configure-aws-credentials",
    "gcp": "google-github-actions/auth",
    "azure": "azure/login",
}


def load(name: str) -> dict[str, Any]:
    """A workflow file, parsed once per session; each call returns a copy the caller owns."""
    return copy.deepcopy(_parsed(name))


@functools.cache
def _parsed(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", ""))


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(f.name, name, job) for f in FILES for name, job in load(f.name)["jobs"].items()]


def stack_files() -> set[str]:
    return {p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml")}


# ---------------------------------------------------------------------------------------------
# Structure and hygiene.


def test_the_five_workflows_parse() -> None:
    assert [f.name for f in FILES] == ["deploy.yml", "drift.yml", "failover.yml", "preview.yml", "stack.yml"]
    for f in FILES:
        doc = load(f.name)
        assert doc["name"] and doc["on"] and doc["jobs"], f.name


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    pinned = 0
    for f in FILES:
        for line in f.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not match:
                continue
            ref, comment = match.groups()
            if ref == REUSABLE:
                continue
            assert SHA_PIN.match(ref), f"{f.name}: {ref} is not pinned to a commit"
            assert re.search(r"#\s*v\d+\.\d+\.\d+", comment), f"{f.name}: {ref} has no version comment"
            pinned += 1
    assert pinned >= 15


# What GitHub accepts in `uses:` (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax,
# "jobs.<job_id>.uses" and "jobs.<job_id>.steps[*].uses"; calling a reusable workflow:
# https://docs.github.com/en/actions/how-tos/reuse-automations/reuse-workflows). Anything else is
# refused when the workflow loads ("references to workflows must be prefixed with format
# 'owner/repository/' or './' for local workflows"), and actionlint does not catch every case.
# GitHub.com also takes `$/...` (self-repository, since 2026-07-30:
# https://github.blog/changelog/2026-07-30-reference-same-repository-actions-with-self-repository-syntax/),
# but only with Actions runner 2.336.0+ and not on GitHub Enterprise Server: this repository's
# self-hosted runners may be older, so it keeps `./`, which every GitHub accepts (.github/zizmor.yml).
LOCAL_WORKFLOW = re.compile(r"^\./\.github/workflows/(?P<file>[^/@]+\.ya?ml)$")
REMOTE_WORKFLOW = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/\.github/workflows/[^/@]+\.ya?ml@[0-9a-f]{40}$")
STEP_ACTION = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
LOCAL_ACTION = re.compile(r"^\./[^@\s]*$")
DOCKER_ACTION = re.compile(r"^docker://\S+$")


def uses_problems(workflows: Path) -> list[str]:
    """Every `uses:` of every job and step under `workflows` held to GitHub's forms: a local reusable
    workflow exists, is `on: workflow_call`, gets only inputs it declares and every required one
    without a default, and secrets it declares (or `inherit`); a remote one and every step's action
    are pinned to a full commit SHA (a local action's folder exists, with an action.yml)."""
    problems: list[str] = []
    repo = workflows.parent.parent
    for path in sorted(workflows.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, job in (doc.get("jobs") or {}).items():
            where = f"{path.name}:{name}"
            if "uses" in job:
                problems += _workflow_call_problems(where, str(job["uses"]), job, workflows)
            for i, step in enumerate(job.get("steps") or []):
                ref = step.get("uses")
                if ref is None:
                    continue
                ref = str(ref)
                if LOCAL_ACTION.match(ref):
                    folder = repo / ref
                    if not any((folder / f).is_file() for f in ("action.yml", "action.yaml", "Dockerfile")):
                        problems.append(f"{where} step {i}: {ref}: no action.yml in {folder}")
                elif not (STEP_ACTION.match(ref) or DOCKER_ACTION.match(ref)):
                    problems.append(f"{where} step {i}: uses {ref!r}: expected owner/repo[/path]@<40-hex sha>, "
                                    "./path or docker://image")
    return problems


def _workflow_call_problems(where: str, ref: str, job: dict[str, Any], workflows: Path) -> list[str]:
    if REMOTE_WORKFLOW.match(ref):
        return []
    local = LOCAL_WORKFLOW.match(ref)
    if not local:
        return [f"{where}: uses {ref!r}: expected ./.github/workflows/<file> or "
                "owner/repo/.github/workflows/<file>@<40-hex sha>"]
    called = workflows / local["file"]
    if not called.is_file():
        return [f"{where}: uses {ref}: no such file"]
    doc = yaml.safe_load(called.read_text(encoding="utf-8"))
    on = doc.get("on", doc.get(True))
    if not (isinstance(on, dict) and "workflow_call" in on) and on != "workflow_call" and "workflow_call" not in (on or []):
        return [f"{where}: {called.name} is not on: workflow_call"]
    call = (on.get("workflow_call") if isinstance(on, dict) else None) or {}
    inputs, secrets = call.get("inputs") or {}, call.get("secrets") or {}
    given = job.get("with") or {}
    problems = [f"{where}: with.{key} is not an input of {called.name}" for key in given if key not in inputs]
    problems += [f"{where}: {called.name} requires input {key}" for key, spec in inputs.items()
                 if (spec or {}).get("required") and "default" not in (spec or {}) and key not in given]
    passed = job.get("secrets")
    if passed is not None and passed != "inherit":
        problems += [f"{where}: secrets.{key} is not a secret of {called.name}" for key in passed if key not in secrets]
    problems += [f"{where}: {called.name} requires secret {key}" for key, spec in secrets.items()
                 if (spec or {}).get("required") and passed != "inherit" and key not in (passed or {})]
    return problems


def test_every_uses_is_a_form_github_accepts() -> None:
    calls = [(f, n) for f, n, job in all_jobs() if "uses" in job]
    assert len(calls) >= 6, calls
    assert uses_problems(WORKFLOWS) == []


def test_the_uses_check_refuses_what_github_refuses(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(WORKFLOWS / "stack.yml", workflows / "stack.yml")
    (workflows / "plain.yml").write_text("on: push\njobs: {a: {runs-on: x, steps: [{run: 'true'}]}}\n")
    with_ = {"stack": "s", "cloud": "aws", "clouds": "[]", "command": "up", "runner": "[]", "github-environment": "e"}
    jobs = {
        "dollar": {"uses": "$/.github/workflows/stack.yml", "with": with_},
        "missing": {"uses": "./.github/workflows/nothing.yml"},
        "not-callable": {"uses": "./.github/workflows/plain.yml"},
        "unknown-input": {"uses": "./.github/workflows/stack.yml", "with": {**with_, "stak": "s"}},
        "required-input": {"uses": "./.github/workflows/stack.yml", "with": {k: v for k, v in with_.items() if k != "cloud"}},
        "undeclared-secret": {"uses": "./.github/workflows/stack.yml", "with": with_, "secrets": {"token": "x"}},
        "remote-by-tag": {"uses": "acme/ci/.github/workflows/stack.yml@v1"},
        "good": {"uses": "./.github/workflows/stack.yml", "with": with_, "secrets": "inherit"},
        "remote": {"uses": f"acme/ci/.github/workflows/stack.yml@{'a' * 40}"},
        "steps": {"runs-on": "x", "steps": [{"uses": "actions/checkout@v4"}, {"uses": f"actions/checkout@{'b' * 40}"},
                                            {"uses": "docker://alpine:3.20"}, {"uses": "./no-action"}]},
    }
    (workflows / "caller.yml").write_text(yaml.safe_dump({"on": "push", "jobs": jobs}))
    found = uses_problems(workflows)
    for expected in ("caller.yml:dollar: uses '$/.github/workflows/stack.yml'",
                     "caller.yml:missing: uses ./.github/workflows/nothing.yml: no such file",
                     "caller.yml:not-callable: plain.yml is not on: workflow_call",
                     "caller.yml:unknown-input: with.stak is not an input of stack.yml",
                     "caller.yml:required-input: stack.yml requires input cloud",
                     "caller.yml:undeclared-secret: secrets.token is not a secret of stack.yml",
                     "caller.yml:remote-by-tag: uses 'acme/ci/.github/workflows/stack.yml@v1'",
                     "caller.yml:steps step 0: uses 'actions/checkout@v4'",
                     "caller.yml:steps step 3: ./no-action: no action.yml"):
        assert sum(p.startswith(expected) for p in found) == 1, (expected, found)
    assert len(found) == 9, found


def test_permissions_are_empty_by_default_and_granted_per_job() -> None:
    for f in FILES:
        assert load(f.name)["permissions"] == {}, f"{f.name}: the workflow must grant nothing by default"
    for file, name, job in all_jobs():
        perms = job.get("permissions")
        assert isinstance(perms, dict) and perms, f"{file}:{name} declares no permissions"
        assert "write-all" not in str(perms) and "read-all" not in str(perms)
        writes = {k for k, v in perms.items() if v == "write"}
        # id-token (OIDC) goes only with cloud work; writes to GitHub only to the jobs that post.
        # The failover's stack files go back to main with a GitHub App's token, not this one.
        allowed = {"id-token", "pull-requests", "issues"}
        assert writes <= allowed, f"{file}:{name}: {writes}"
        assert not ({"pull-requests", "issues", "contents"} & writes and "id-token" in writes), \
            f"{file}:{name}: a job that posts to GitHub must not also hold cloud credentials"


def test_no_expression_is_expanded_inside_a_shell_script() -> None:
    """Untrusted data (PR titles, branch names, stack names from a PR) reaches scripts only
    through environment variables, never through ${{ }} inside `run:`."""
    scripts = 0
    for file, name, job in all_jobs():
        for step in steps(job):
            if "run" in step:
                scripts += 1
                assert "${{" not in step["run"], f"{file}:{name}: {step['run'][:60]!r}"
    assert scripts >= 10


def test_checkouts_do_not_persist_the_token() -> None:
    checkouts = [step for _, _, job in all_jobs() for step in steps(job) if uses(step).startswith("actions/checkout@")]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_no_long_lived_secret_is_used() -> None:
    """Clouds and Pulumi Cloud are reached through OIDC; the one secret read is the GitHub App key
    that opens the failover's pull request (GitHub runs no checks on GITHUB_TOKEN's), by that job
    alone, from its own environment."""
    for f in FILES:
        text = f.read_text(encoding="utf-8")
        assert re.findall(r"secrets\.[\w-]+", text) == (["secrets.FAILOVER_APP_PRIVATE_KEY"] if f.name == "failover.yml" else []), f.name
        assert "pull_request_target" not in text and "workflow_run" not in text, f.name


# ---------------------------------------------------------------------------------------------
# The stack list: derived from stacks/, so a new stack file needs no workflow edit.


def test_the_stack_list_covers_every_stack_file() -> None:
    listed = list_stacks()
    assert {s["stack"] for s in listed} == stack_files()
    outputs = github_outputs(listed)
    assert {s["stack"] for s in json.loads(outputs["all"])} == stack_files()
    by_wave = [s["stack"] for wave in WAVES for s in json.loads(outputs[wave])]
    assert sorted(by_wave) == sorted(stack_files()), "every stack is in exactly one deployment wave"


def test_the_stack_command_prints_github_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    with sharing_plans():  # it plans every stack (the clouds each one signs in to): the session's plans
        assert cli.run(["stacks", "--github-output"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["all", *WAVES]
    assert {s["stack"] for s in json.loads(lines[0].split("=", 1)[1])} == stack_files()


def test_a_new_stack_file_joins_the_matrix_and_its_wave(tmp_path: Path) -> None:
    for name, cloud, env in (("qa-gcp", "gcp", "qa"), ("prod-azure", "azure", "prod"), ("staging-aws", "aws", "staging")):
        (tmp_path / f"Pulumi.{name}.yaml").write_text(
            f"config:\n  im-platform:cloud: {cloud}\n  im-platform:environment: {env}\n")
    listed = {s["stack"]: s for s in list_stacks(tmp_path)}
    # No cluster in these files: nothing reaches a Kubernetes API, so hosted runners do.
    assert listed["qa-gcp"] == {"stack": "qa-gcp", "cloud": "gcp", "environment": "qa", "wave": "dev",
                                "runner": ["ubuntu-24.04"]}
    assert listed["staging-aws"]["wave"] == "staging"
    assert listed["prod-azure"]["wave"] == "prod"


def test_a_stack_name_unfit_for_ci_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev aws;x.yaml").write_text("config:\n  im-platform:cloud: aws\n  im-platform:environment: dev\n")
    with pytest.raises(ConfigError, match="expected a stack name"):
        list_stacks(tmp_path)


@pytest.mark.parametrize("name, output", [("preview.yml", "all"), ("drift.yml", "all"), ("deploy.yml", None)])
def test_the_stacks_job_lists_the_folder(name: str, output: str | None) -> None:
    job = load(name)["jobs"]["stacks"]
    runs = [step["run"] for step in steps(job) if "run" in step]
    assert 'venv/bin/python -m infra.cli stacks --github-output >> "$GITHUB_OUTPUT"' in runs
    expected = {"all"} if output else set(WAVES)
    assert set(job["outputs"]) == expected


def _matrix_source(job: dict[str, Any]) -> str:
    return str(job["strategy"]["matrix"]["include"])


# ---------------------------------------------------------------------------------------------
# preview.yml


def test_preview_runs_tests_plans_and_policy_checks_before_previewing_every_stack() -> None:
    doc = load("preview.yml")
    assert "pull_request" in doc["on"]
    jobs = doc["jobs"]
    test_runs = "\n".join(step.get("run", "") for step in steps(jobs["test"]))
    assert "venv/bin/python -m pytest" in test_runs
    assert "for file in stacks/Pulumi.*.yaml" in test_runs and "infra.cli plan --config-file" in test_runs
    assert "actionlint" in test_runs and "zizmor --offline" in test_runs

    policy = jobs["policy"]
    assert _matrix_source(policy) == "${{ fromJSON(needs.stacks.outputs.all) }}"
    assert any('infra.cli check --stack "$STACK"' in step.get("run", "") for step in steps(policy))

    preview = jobs["preview"]
    assert set(preview["needs"]) == {"stacks", "test", "policy"}, "the offline gates come first"
    assert _matrix_source(preview) == "${{ fromJSON(needs.stacks.outputs.all) }}"
    assert preview["uses"] == REUSABLE
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["github-environment"] == "${{ matrix.environment }}-preview"
    assert "head.repo.full_name == github.repository" in preview["if"], "forks get no OIDC token"

    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}
    assert "gh pr comment" in steps(comment)[-1]["run"]


def test_the_pr_comment_carries_each_stacks_monthly_cost_and_its_change_offline() -> None:
    jobs = load("preview.yml")["jobs"]
    cost = jobs["cost"]
    assert cost["permissions"] == {"contents": "read"}, "offline: no cloud identity, no write access"
    assert cost["needs"] == "stacks" and "secrets" not in str(cost)
    checkouts = [s for s in steps(cost) if uses(s).startswith("actions/checkout@")]
    assert [c.get("with", {}).get("path") for c in checkouts] == [None, "base"]
    assert checkouts[1]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    script = "\n".join(s.get("run", "") for s in steps(cost))
    assert "infra.cli cost --stack \"$stack\" --json \"${base_args[@]}\"" in script
    assert "--base \"cost/$stack.base.json\"" in script and "cd base" in script
    for column in ("min", "modeled", "max", "modeled vs base", "max vs base"):
        assert f" {column} |" in script
    comment = jobs["comment"]
    assert "cost" in comment["needs"]
    assert "cat cost/summary.md" in steps(comment)[-1]["run"]


# ---------------------------------------------------------------------------------------------
# deploy.yml


def test_deploy_goes_dev_then_staging_then_prod() -> None:
    doc = load("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert jobs["dev"]["needs"] == "stacks"
    assert set(jobs["staging"]["needs"]) == {"stacks", "dev"}
    assert set(jobs["prod"]["needs"]) == {"stacks", "dev", "staging"}
    for wave in WAVES:
        job = jobs[wave]
        assert job["uses"] == REUSABLE
        assert job["with"]["command"] == "up"
        assert _matrix_source(job) == f"${{{{ fromJSON(needs.stacks.outputs.{wave}) }}}}"
        assert job["strategy"]["fail-fast"] is False, "a failing stack must never cancel another's update half-way"
    for wave in ("staging", "prod"):
        # A wave runs only when the previous one succeeded (or had no stack).
        assert "!failure()" in jobs[wave]["if"] and "!cancelled()" in jobs[wave]["if"]
    assert doc["concurrency"] == {"group": "deploy", "cancel-in-progress": False}


def test_prod_stacks_deploy_in_the_prod_environment() -> None:
    job = load("deploy.yml")["jobs"]["prod"]
    assert job["with"]["github-environment"] == "${{ matrix.environment }}"
    prod = json.loads(github_outputs(list_stacks())["prod"])
    assert prod, "stacks/ has prod stacks"
    assert {s["environment"] for s in prod} == {"prod"}, "the prod wave runs in the GitHub environment `prod`"


# ---------------------------------------------------------------------------------------------
# stack.yml (the reusable job) and drift.yml


def test_the_stack_job_checks_offline_then_runs_pulumi_with_the_policy_pack() -> None:
    doc = load("stack.yml")
    assert set(doc["on"]["workflow_call"]["inputs"]) == {"stack", "cloud", "clouds", "command", "runner", "github-environment"}
    job = doc["jobs"]["pulumi"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"] == "${{ inputs.github-environment }}"
    names = [uses(step).split("@")[0] or step.get("name", "") for step in steps(job)]
    check = names.index("Policy check (offline)")
    pulumi = names.index("pulumi/actions")
    assert check < pulumi
    for cloud, action in OIDC_ACTIONS.items():
        step = steps(job)[names.index(action)]
        # What the stack's plan declares, not its cloud's name alone (tests/test_ci_clouds.py).
        assert step["if"] == f"contains(fromJSON(inputs.clouds), '{cloud}')"
        assert check < names.index(action) < pulumi, "no credential exists while the offline check runs"
    action = steps(job)[pulumi]["with"]
    assert action["policyPacks"] == "policy"
    assert action["stack-name"] == "${{ inputs.stack }}"
    assert action["command"] == "${{ inputs.command == 'up' && 'up' || 'preview' }}"
    assert action["refresh"] == action["expect-no-changes"] == "${{ inputs.command == 'drift' }}"


def test_updates_of_one_stack_share_one_concurrency_group() -> None:
    concurrency = load("stack.yml")["jobs"]["pulumi"]["concurrency"]
    assert concurrency["cancel-in-progress"] is False, "a running update is never cancelled"
    group = concurrency["group"]
    assert "inputs.command == 'up' && format('pulumi-state-{0}', inputs.stack)" in group
    # Read-only runs get a group of their own run, so they never queue behind (or cancel) an update.
    assert "github.run_id" in group.split("||", 1)[1]


def test_drift_runs_nightly_on_every_stack_and_reports() -> None:
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"]
    jobs = doc["jobs"]
    assert jobs["drift"]["uses"] == REUSABLE
    assert jobs["drift"]["with"]["command"] == "drift"
    assert jobs["drift"]["with"]["github-environment"] == "${{ matrix.environment }}-preview"
    assert _matrix_source(jobs["drift"]) == "${{ fromJSON(needs.stacks.outputs.all) }}"
    report = jobs["report"]
    assert report["if"] == "${{ failure() }}" and report["permissions"] == {"issues": "write"}
    assert "gh issue create" in steps(report)[-1]["run"]


# ---------------------------------------------------------------------------------------------
# failover.yml


def test_failover_is_dispatched_by_hand_validated_and_approved_in_the_pairs_environment() -> None:
    doc = load("failover.yml")
    assert set(doc["on"]) == {"workflow_dispatch"}
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"to", "health-timeout", "resume-run-id"}
    jobs = doc["jobs"]
    runs = [step.get("run", "") for step in steps(jobs["pair"])]
    assert 'venv/bin/python -m infra.failover.command --github-output "$TO" >> "$GITHUB_OUTPUT"' in runs
    job = jobs["failover"]
    assert job["needs"] == "pair"
    # The pair's GitHub environment: `prod` requires a reviewer (docs/ci.md).
    assert job["environment"] == "${{ needs.pair.outputs.environment }}"
    assert job["concurrency"] == {"group": "failover-${{ needs.pair.outputs.traffic-stack }}",
                                  "cancel-in-progress": False}
    assert doc["concurrency"]["cancel-in-progress"] is False
    assert job["permissions"] == {"contents": "read", "actions": "read", "id-token": "write"}


def test_failover_authenticates_to_both_clouds_and_the_dns_then_runs_the_command() -> None:
    job = load("failover.yml")["jobs"]["failover"]
    names = [uses(step).split("@")[0] or step.get("name", "") for step in steps(job)]
    run = names.index("Fail over")
    for action in OIDC_ACTIONS.values():
        assert names.index(action) < run, f"{action} signs in before the failover"
    script = steps(job)[run]["run"]
    assert 'infra.cli failover --to "$TO" --yes --no-demote --journal "$JOURNAL"' in script
    assert job["runs-on"] == ["self-hosted", "im-platform", "${{ inputs.to }}"], "the target's own runner"
    # The old primary's runner resumes the same journal: it only demotes.
    demote = load("failover.yml")["jobs"]["demote"]
    assert demote["runs-on"] == ["self-hosted", "im-platform", "${{ needs.pair.outputs.peer }}"]
    assert set(demote["needs"]) == {"pair", "failover"}
    names = [uses(step).split("@")[0] or step.get("name", "") for step in steps(demote)]
    script = steps(demote)[names.index("Demote the old primary")]["run"]
    assert 'infra.cli failover --to "$TO" --yes --journal "$JOURNAL"' in script and "--no-demote" not in script
    restored = [step["with"]["name"] for step in steps(demote) if uses(step).startswith("actions/download-artifact@")]
    assert restored == ["failover-stacks", "failover-journal"]


def test_failover_keeps_the_journal_so_a_rerun_resumes_and_returns_the_stack_files() -> None:
    doc = load("failover.yml")
    job = doc["jobs"]["failover"]
    names = [uses(step).split("@")[0] or step.get("name", "") for step in steps(job)]
    run = names.index("Fail over")
    restores = [i for i, step in enumerate(steps(job)) if uses(step).startswith("actions/download-artifact@")]
    assert restores and all(i < run for i in restores)
    assert all(steps(job)[i]["with"]["name"] == "failover-journal" for i in restores)
    uploads = {step["with"]["name"]: step for step in steps(job) if uses(step).startswith("actions/upload-artifact@")}
    assert uploads["failover-journal"]["if"] == "always()" and uploads["failover-journal"]["with"]["overwrite"] is True
    assert job["env"]["JOURNAL"].startswith("failover-journal/")
    assert uploads["failover-stacks"]["with"]["path"] == "stacks/"
    back = doc["jobs"]["stack-files"]
    assert "id-token" not in back["permissions"]
    assert "gh pr create" in steps(back)[-1]["run"]


# What pushes or opens a pull request in a run script (git, the gh CLI, the REST API through gh).
WRITES_TO_GITHUB = re.compile(r"\bgit push\b|\bgh pr (create|merge)\b|\bgh api\b.*pulls")
GITHUB_TOKEN = re.compile(r"github\.token|secrets\.GITHUB_TOKEN")
APP_TOKEN_ACTION = "actions/create-github-app-token"


def test_a_pull_request_a_workflow_opens_can_pass_its_required_checks() -> None:
    """GitHub's rule (docs.github.com, "Triggering a workflow from a workflow" / GITHUB_TOKEN):
    "events triggered by the GITHUB_TOKEN ... will not create a new workflow run", except
    workflow_dispatch and repository_dispatch. A branch pushed or a pull request opened with it
    starts no `pull_request` run, so the required checks (preview.yml: test, policy, preview) never
    report and the pull request cannot be merged. Every step that pushes or opens a pull request
    takes its token from a GitHub App token step of its own job (actions/create-github-app-token),
    asked for exactly contents and pull-requests write."""
    assert "pull_request" in load("preview.yml")["on"], "the required checks run on pull requests"
    found = 0
    for file, name, job in all_jobs():
        job_steps = steps(job)
        for step in job_steps:
            script = str(step.get("run", ""))
            if not WRITES_TO_GITHUB.search(script):
                continue
            found += 1
            env = {k: str(v) for k, v in (step.get("env") or {}).items()}
            tokens = [v for k, v in env.items() if k in ("GH_TOKEN", "GITHUB_TOKEN")]
            assert tokens, f"{file}:{name}: {step.get('name')} pushes with no token in GH_TOKEN"
            for token in tokens:
                assert not GITHUB_TOKEN.search(token), \
                    f"{file}:{name}: {step.get('name')} pushes with GITHUB_TOKEN: no check would run on it"
                match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.token \}\}", token)
                assert match, f"{file}:{name}: {token} is not a token step's output"
                source = next(s for s in job_steps if s.get("id") == match.group(1))
                assert uses(source).split("@")[0] == APP_TOKEN_ACTION
                assert job_steps.index(source) < job_steps.index(step)
                wants = {k: v for k, v in source["with"].items() if k.startswith("permission-")}
                assert wants == {"permission-contents": "write", "permission-pull-requests": "write"}
                # One repository, and the key comes from a secret, never the file.
                assert source["with"]["repositories"] == "${{ github.event.repository.name }}"
                assert str(source["with"]["private-key"]).startswith("${{ secrets.")
            # The job's own token writes nothing to GitHub.
            assert {k for k, v in job["permissions"].items() if v == "write"} == set(), f"{file}:{name}"
    assert found, "the failover's pull request step was not found"


# ---------------------------------------------------------------------------------------------
# The linters .ci/run runs (installed from requirements-dev.txt).


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if which is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements-dev.txt)")
    return which


def test_actionlint_reports_nothing() -> None:
    run = subprocess.run([_tool("actionlint"), "-shellcheck", _tool("shellcheck"), *map(str, FILES)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_reports_nothing() -> None:
    run = subprocess.run([_tool("zizmor"), "--offline", "--persona", "auditor", ".github/workflows"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout


# ---------------------------------------------------------------------------------------------
# Where each job runs: a job that talks to a cluster's Kubernetes API runs on a runner that can
# reach it (the stack's own self-hosted runner); the rest may run on hosted runners.

# What in a step reaches a cluster's API: a Pulumi operation on a stack (the program declares
# Kubernetes objects through the cluster's provider; preview dry-runs and refresh read them, up
# writes them), the failover command (it runs `pulumi up` through the Automation API), or a
# Kubernetes client.
# Only in command position (a line's start, after ; & | ( or $( ), never inside a message text.
CLUSTER_API_RUN = re.compile(r"(?:^|[;&|(]|\$\()\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:\S*/)?"
                             r"(?:python3?\s+-m\s+infra\.cli\s+failover|pulumi\s+(?:up|preview|refresh|destroy|import)"
                             r"|kubectl|helm|kubelogin\s+get-token)\b", re.MULTILINE)
STACK_RUNNER = "${{ fromJSON(inputs.runner) }}"
MATRIX_RUNNER = "${{ toJSON(matrix.runner) }}"


def reaches_a_cluster(job: dict[str, Any]) -> bool:
    return any(uses(step).startswith("pulumi/actions@") or CLUSTER_API_RUN.search(str(step.get("run", "")))
               for step in steps(job))


def test_jobs_that_reach_a_cluster_are_recognised() -> None:
    """The rule below sees the Pulumi job (and would see a kubectl or failover step anywhere)."""
    assert reaches_a_cluster(load("stack.yml")["jobs"]["pulumi"])
    assert not reaches_a_cluster(load("preview.yml")["jobs"]["policy"]), "the offline check reaches nothing"
    assert reaches_a_cluster({"steps": [{"run": "venv/bin/python -m infra.cli failover --to prod-azure --yes"}]})
    assert reaches_a_cluster({"steps": [{"run": "kubectl get nodes"}]})
    assert reaches_a_cluster({"steps": [{"run": "set -e\nSTACK=x pulumi up --yes --stack \"$STACK\""}]})
    assert not reaches_a_cluster(load("drift.yml")["jobs"]["report"]), "it only names `pulumi preview` in its text"


def test_every_job_that_reaches_a_cluster_runs_on_the_stacks_own_runner() -> None:
    reaching = []
    for file, name, job in all_jobs():
        if not reaches_a_cluster(job):
            continue
        reaching.append(f"{file}:{name}")
        runs_on = job.get("runs-on")
        if runs_on == STACK_RUNNER:
            # The reusable job: the caller hands it the stack's labels from `infra.cli stacks`.
            assert "runner" in load(file)["on"]["workflow_call"]["inputs"], f"{file}:{name}"
            continue
        labels = runs_on if isinstance(runs_on, list) else [runs_on]
        assert labels[:2] == ["self-hosted", "im-platform"] and len(labels) == 3, (
            f"{file}:{name} reaches a cluster's API from {runs_on!r}, not from the stack's own runner")
    assert "stack.yml:pulumi" in reaching
    # Every caller of the reusable job passes the labels of the matrix leg's own stack.
    callers = [(f, n, j) for f, n, j in all_jobs() if j.get("uses") == REUSABLE]
    assert len(callers) >= 5
    for file, name, job in callers:
        assert job["with"]["runner"] == MATRIX_RUNNER, f"{file}:{name}"
        assert _matrix_source(job).startswith("${{ fromJSON(needs.stacks.outputs."), f"{file}:{name}"


def test_hosted_runners_run_only_jobs_that_reach_no_cluster() -> None:
    hosted = [(f, n) for f, n, j in all_jobs() if str(j.get("runs-on", "")).startswith("ubuntu-")]
    assert ("preview.yml", "test") in hosted and ("preview.yml", "policy") in hosted
    for file, name in hosted:
        assert not reaches_a_cluster(load(file)["jobs"][name]), f"{file}:{name}"


def _planned(stack_file: Path) -> Plan:
    with sharing_plans():
        return plan_stack(config_file=stack_file)


def test_stacks_with_kubernetes_objects_get_their_own_runner_and_the_rest_hosted(tmp_path: Path) -> None:
    """The labels come from the stack file alone (the matrix job installs only PyYAML); the offline
    plan of the same file says whether the program really declares Kubernetes objects."""
    gcp = (ROOT / "stacks" / "Pulumi.staging-gcp.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(gcp)
    bare = dict(doc, config={k: v for k, v in doc["config"].items()
                             if k not in ("im-platform:services", "im-platform:capacityBuffer")})
    (tmp_path / "Pulumi.qa-gcp.yaml").write_text(yaml.safe_dump(bare), encoding="utf-8")
    for path in (*sorted((ROOT / "stacks").glob("Pulumi.*.yaml")), tmp_path / "Pulumi.qa-gcp.yaml"):
        (entry,) = [s for s in list_stacks(path.parent) if s["stack"] == path.name[len("Pulumi."):-len(".yaml")]]
        plan = _planned(path)
        kubernetes = any(r["type"].startswith("kubernetes:") for r in plan.resources)
        expected = ["self-hosted", "im-platform", entry["stack"]] if kubernetes else ["ubuntu-24.04"]
        assert entry["runner"] == expected, entry["stack"]
    assert list_stacks(tmp_path)[0]["runner"] == ["ubuntu-24.04"], "a GKE cluster with nothing on it: cloud APIs only"
    assert all(s["runner"][0] == "self-hosted" for s in list_stacks() if s.get("kind") != "traffic"
               and s["stack"] in {*REQUIRED, "dev-kubernetes"}), "every example cluster stack deploys services"
    assert all(s["runner"] == ["ubuntu-24.04"] for s in list_stacks() if s.get("kind") == "traffic"), \
        "a traffic stack talks to DNS APIs only"


def test_the_matrix_rule_knows_every_cloud_that_gets_add_ons() -> None:
    from components.k8s.cloud_addons import CLOUD_ADDON_MODULES
    from infra.policy.check import CLOUDS_WITH_ADDONS
    assert set(CLOUDS_WITH_ADDONS) == set(CLOUD_ADDON_MODULES)


# ---------------------------------------------------------------------------------------------
# The exec plugins the kubeconfigs call are installed, pinned, before Pulumi runs.


def _installs(step: dict[str, Any], command: str) -> bool:
    """Whether a step installs `command` at a pinned version."""
    action, with_ = uses(step).split("@")[0], step.get("with") or {}
    if command == "gke-gcloud-auth-plugin":
        return (action == "google-github-actions/setup-gcloud" and command in str(with_.get("install_components"))
                and re.fullmatch(r"\d+\.\d+\.\d+", str(with_.get("version", ""))) is not None)
    if command == "kubelogin":
        return action == "azure/use-kubelogin" and re.fullmatch(r"v\d+\.\d+\.\d+", str(with_.get("kubelogin-version", ""))) is not None
    if command == "aws":
        version = str((step.get("env") or {}).get("AWSCLI_VERSION", ""))
        return ('"awscli==$AWSCLI_VERSION"' in str(step.get("run", ""))
                and re.fullmatch(r"\d+\.\d+\.\d+", version) is not None)
    return False


def test_every_stack_job_installs_the_exec_plugin_its_kubeconfig_calls() -> None:
    job = load("stack.yml")["jobs"]["pulumi"]
    job_steps = steps(job)
    pulumi_at = next(i for i, s in enumerate(job_steps) if uses(s).startswith("pulumi/actions@"))
    on_path = next(s for s in job_steps if s.get("name") == "The kubeconfig's exec plugin is on PATH")
    for entry in list_stacks():
        if entry.get("kind") == "traffic":  # no cluster, no kubeconfig
            continue
        if entry["cloud"] == "kubernetes":
            # An existing cluster: the kubeconfig, and any plugin it calls, are the stack's own
            # runner's (docs/ci.md); the check step knows the kind rather than failing on it.
            assert re.search(r"^\s*kubernetes\)", on_path["run"], re.MULTILINE), on_path["run"]
            continue
        plan = stack_plan(entry["stack"])
        kubeconfig = json.loads(plan.revealed_outputs["kubeconfig"])
        command = kubeconfig["users"][0]["user"]["exec"]["command"]
        installers = [i for i, s in enumerate(job_steps) if _installs(s, command)]
        assert installers, f"{entry['stack']}: nothing installs {command}, which its kubeconfig calls"
        for i in installers:
            assert i < pulumi_at, f"{command} is installed after Pulumi runs"
            assert job_steps[i]["if"] == f"inputs.cloud == '{entry['cloud']}'", (
                f"{entry['stack']}: the step installing {command} does not run for cloud {entry['cloud']}")
