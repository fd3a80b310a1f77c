"""The user's own path on the real engine: `pulumi stack init`, `pulumi config`, `pulumi preview`,
`pulumi up`, `pulumi refresh` and `pulumi destroy` in a copy of the project folder, as the README
tells users (the real Pulumi.yaml with `runtime: python` and its virtualenv, main: infra/, stacks/),
of the example `dev-kubernetes` stack pointed at a local API server.

The CLI runs the program through the Python language host `pulumi-language-python` (the stand-in
tools/engine/build.sh builds, which runs the SDK's own pulumi-language-python-exec with venv/bin/python),
not as an inline program. The tests run in order on one stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from infra.config.stackfiles import read_stack_config, set_stack_value
from tests.engine.cluster import Cluster
from tests.engine.engine import (
    ROOT,
    kubernetes_project,
    offline_plan,
    planned_objects,
    project_stack,
    user_project,
)
from tests.engine.test_engine_kubernetes import events, managed_objects, steps

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("keda_crds")]

STACK = "dev-kubernetes"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


@pytest.fixture(scope="module")
def project(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kubernetes_project(user_project(tmp_path_factory.mktemp("project")), cluster)


@pytest.fixture(scope="module")
def stack_file(project: Path) -> Path:
    return project / "stacks" / f"Pulumi.{STACK}.yaml"


@pytest.fixture(scope="module")
def stack(project: Path, env: dict[str, str], tools: Path) -> auto.Stack:
    return project_stack(STACK, project, env, tools)


@pytest.fixture(scope="module")
def plan(stack_file: Path) -> dict[str, Any]:
    return offline_plan(stack_file, STACK)


def parsed(value: str) -> Any:
    """Structured values as data (the CLI and the offline reader space their JSON differently)."""
    return json.loads(value) if value.startswith(("{", "[")) else value


def test_the_stack_reads_its_file_under_stacks(stack: auto.Stack, stack_file: Path) -> None:
    """`pulumi stack init` then `pulumi config`: the CLI reads stacks/Pulumi.dev-kubernetes.yaml."""
    config = {key: parsed(value.value) for key, value in stack.get_all_config().items()}
    values, _ = read_stack_config(stack_file, "im-platform")
    assert config == {key: parsed(value) for key, value in values.items()}
    assert stack.workspace.project_settings().runtime.name == "python"  # type: ignore[union-attr]


def test_preview_runs_the_program_through_the_python_host(stack: auto.Stack, plan: dict[str, Any]) -> None:
    seen: list[auto.EngineEvent] = []
    result = stack.preview(on_event=events(seen))
    creates = sorted(urn for urn in steps(seen, "create") if "::pulumi:pulumi:Stack::" not in urn)
    assert creates == sorted(r["urn"] for r in plan["resources"]), result.stdout
    assert result.change_summary.get("create") == len(plan["resources"]) + 1


def test_up_puts_exactly_the_planned_objects_on_the_api_server(stack: auto.Stack, plan: dict[str, Any],
                                                              cluster: Cluster) -> None:
    result = stack.up(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    expected = planned_objects(plan)
    assert expected
    assert managed_objects(cluster, {(a, k) for a, k, _, _ in expected}) == expected
    assert set(result.outputs) == set(plan["outputs"])
    assert result.outputs["services"].value == plan["outputs"]["services"]


def test_a_second_up_changes_nothing(stack: auto.Stack, plan: dict[str, Any]) -> None:
    result = stack.up(on_output=lambda line: None)
    assert result.summary.resource_changes == {"same": len(plan["resources"]) + 1}, result.stdout


def test_refresh_reports_an_object_removed_behind_the_program_and_up_puts_it_back(
        stack: auto.Stack, plan: dict[str, Any], cluster: Cluster) -> None:
    budget = next(r for r in plan["resources"] if r["type"] == PDB and r["inputs"]["metadata"]["name"] == "gateway")
    meta = budget["inputs"]["metadata"]
    path = cluster.object_path("policy/v1", "PodDisruptionBudget", meta["name"], meta["namespace"])
    cluster.request("DELETE", path)  # someone's kubectl delete: nothing on the cluster recreates it
    assert not cluster.exists("policy/v1", "PodDisruptionBudget", meta["name"], meta["namespace"])

    refreshed = stack.refresh(on_output=lambda line: None)
    assert refreshed.summary.resource_changes.get("delete") == 1, refreshed.stdout
    assert budget["name"] in refreshed.stdout, refreshed.stdout
    state = {r["urn"] for r in stack.export_stack().deployment["resources"]}
    assert budget["urn"] not in state and len(state) == len(plan["resources"])  # the stack knows it is gone

    seen: list[auto.EngineEvent] = []
    result = stack.up(on_output=lambda line: None, on_event=events(seen))
    assert steps(seen, "create") == [budget["urn"]], result.stdout
    assert result.summary.resource_changes == {"create": 1, "same": len(plan["resources"])}
    live = cluster.read("policy/v1", "PodDisruptionBudget", meta["name"], meta["namespace"])
    assert live is not None and live["spec"]["maxUnavailable"] == budget["inputs"]["spec"]["maxUnavailable"]


def test_destroy_leaves_no_object_of_the_stack(stack: auto.Stack, plan: dict[str, Any], cluster: Cluster) -> None:
    result = stack.destroy(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    expected = planned_objects(plan)
    deadline = time.monotonic() + 60
    left = managed_objects(cluster, {(a, k) for a, k, _, _ in expected})
    while left and time.monotonic() < deadline:  # a namespace goes once its controller has emptied it
        time.sleep(1)
        left = managed_objects(cluster, {(a, k) for a, k, _, _ in expected})
    assert left == set()
    assert stack.export_stack().deployment.get("resources") in (None, [])


def test_a_configuration_error_is_the_offline_plans_one_line(cluster: Cluster, env: dict[str, str], tools: Path,
                                                             tmp_path: Path) -> None:
    project = kubernetes_project(user_project(tmp_path / "project"), cluster)
    path = project / "stacks" / f"Pulumi.{STACK}.yaml"
    set_stack_value(path, "im-platform:environment", "Dev_Env")
    offline = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--config-file", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert offline.returncode == 2, offline.stderr
    errors = [line for line in offline.stderr.splitlines() if line.startswith("config error:")]
    assert len(errors) == 1 and errors[0].startswith("config error: im-platform:environment"), offline.stderr
    line = errors[0]

    stack = project_stack(STACK, project, env, tools)
    with pytest.raises(auto.CommandError) as failed:
        stack.preview()
    message = str(failed.value)
    assert line in message, message
    assert "Traceback" not in message, message
