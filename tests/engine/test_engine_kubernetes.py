"""The real program, engine, provider and API server: `pulumi preview`, `up`, a second `up`, a
changed replica range and `destroy` of the example `kubernetes` stack (stacks/Pulumi.dev-kubernetes.yaml,
pointed at a local control plane where KEDA's CRDs are installed, with `monitoring.keda: existing`).
The tests run in order on one stack."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tests.engine.cluster import Cluster
from tests.engine.engine import inline_stack, kubernetes_project, offline_plan, planned_objects

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("keda_crds")]
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"

STACK = "dev-kubernetes"


@pytest.fixture(scope="module")
def project(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kubernetes_project(tmp_path_factory.mktemp("project"), cluster)


@pytest.fixture(scope="module")
def stack_file(project: Path) -> Path:
    return project / "stacks" / f"Pulumi.{STACK}.yaml"


@pytest.fixture(scope="module")
def stack(project: Path, env: dict[str, str], tools: Path) -> auto.Stack:
    return inline_stack(STACK, project, env, tools)


@pytest.fixture(scope="module")
def plan(stack_file: Path) -> dict[str, Any]:
    return offline_plan(stack_file, STACK)


def managed_objects(cluster: Cluster, kinds: set[tuple[str, str]]) -> set[tuple[str, str, str, str | None]]:
    """Every object of these kinds on the API server that the Pulumi provider applied (its field
    manager), wherever it is: what the stack put there, and nothing it left out."""
    found = set()
    paths = cluster.api_paths()
    for api_version, kind in kinds:
        prefix, _ = paths[(api_version, kind)]
        for item in cluster.get(prefix)["items"]:
            meta = item["metadata"]
            managers = {m.get("manager", "") for m in meta.get("managedFields") or []}
            if any(m.startswith("pulumi") for m in managers):
                found.add((api_version, kind, meta["name"], meta.get("namespace")))
    return found


def events(into: list[auto.EngineEvent]) -> Any:
    return into.append


def steps(collected: list[auto.EngineEvent], op: str) -> list[str]:
    """The URNs of the resource steps of kind `op` (create, update, same, ...) the engine reported."""
    return [e.resource_pre_event.metadata.urn for e in collected
            if e.resource_pre_event is not None and e.resource_pre_event.metadata.op.value == op]


def test_preview_declares_what_the_offline_plan_lists(stack: auto.Stack, plan: dict[str, Any]) -> None:
    seen: list[auto.EngineEvent] = []
    result = stack.preview(on_event=events(seen))
    creates = sorted(urn for urn in steps(seen, "create") if "::pulumi:pulumi:Stack::" not in urn)
    assert creates == sorted(r["urn"] for r in plan["resources"]), result.stdout
    assert result.change_summary.get("create") == len(plan["resources"]) + 1  # and the Stack itself


def test_up_puts_exactly_the_planned_objects_on_the_api_server(stack: auto.Stack, plan: dict[str, Any],
                                                              cluster: Cluster) -> None:
    result = stack.up(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    expected = planned_objects(plan)
    assert expected, "the example kubernetes stack declares Kubernetes objects"
    assert managed_objects(cluster, {(a, k) for a, k, _, _ in expected}) == expected
    assert set(result.outputs) == set(plan["outputs"])
    assert result.outputs["services"].value == plan["outputs"]["services"]


def test_admission_ran_the_pods_under_pod_security_restricted(plan: dict[str, Any], cluster: Cluster) -> None:
    namespaces = {ns for _, kind, ns, _ in planned_objects(plan) if kind == "Namespace"}
    for ns in namespaces:
        labels = cluster.get(f"/api/v1/namespaces/{ns}")["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    # The controllers created the tiers' pods and admission let them in, under `restricted`.
    for api_version, kind, name, ns in planned_objects(plan):
        if kind == "Deployment":
            deployment = cluster.read(api_version, kind, name, ns)
            assert deployment is not None
            assert deployment["status"].get("availableReplicas", 0) >= 1, deployment["status"]
    # And it is enforced: a pod that `restricted` forbids is refused in the same namespace.
    ns = sorted(namespaces)[0]
    status, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", {
        # No security context at all: root allowed, privilege escalation, all capabilities, no
        # seccomp profile. The API server itself accepts it (a privileged container it would refuse
        # before admission, with a 422 that proves nothing about Pod Security).
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unrestricted-probe"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]}}, ok=(201, 403))
    assert status == 403 and "PodSecurity" in str(body) and "restricted" in str(body), body


def test_a_second_up_changes_nothing(stack: auto.Stack, plan: dict[str, Any]) -> None:
    result = stack.up(on_output=lambda line: None)
    assert result.summary.resource_changes == {"same": len(plan["resources"]) + 1}, result.stdout
    stack.preview(expect_no_changes=True)


def test_a_changed_replica_range_updates_only_the_tiers_scaled_object(stack: auto.Stack, stack_file: Path,
                                                                       plan: dict[str, Any], cluster: Cluster) -> None:
    """The gateway scales on load: its bounds live in its ScaledObject (KEDA's HPA follows it), so a
    new `replicas.max` updates that object alone, and the API server holds the new bound."""
    # A number, as a user edits it (set_stack_value writes the failover's strings, so not here).
    text = stack_file.read_text(encoding="utf-8")
    gateway = text.index("    gateway:\n      image:")
    at = text.index("replicas: {min: 1, max: 4}", gateway)
    stack_file.write_text(text[:at] + "replicas: {min: 1, max: 6}" + text[at + len("replicas: {min: 1, max: 4}"):],
                          encoding="utf-8")
    seen: list[auto.EngineEvent] = []
    result = stack.up(on_output=lambda line: None, on_event=events(seen))
    scaled = next(r for r in plan["resources"] if r["type"] == SCALED_OBJECT
                  and r["inputs"]["spec"]["scaleTargetRef"]["name"] == "gateway")
    assert scaled["inputs"]["spec"]["maxReplicaCount"] == 4
    assert steps(seen, "update") == [scaled["urn"]], result.stdout
    assert result.summary.resource_changes == {"update": 1, "same": len(plan["resources"])}
    meta = scaled["inputs"]["metadata"]
    live = cluster.read("keda.sh/v1alpha1", "ScaledObject", meta["name"], meta["namespace"])
    assert live is not None and live["spec"]["maxReplicaCount"] == 6, live
    assert live["spec"]["minReplicaCount"] == 1


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
