"""One spec, three clouds: the invariants every cloud's cluster must hold, read from what the
program registered (inputs and resource options)."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

from components.spec import SPOT_LABEL_KEY, SPOT_TAINT
from infra.offline.plan import Plan
from tests.conftest import CLUSTER, ROOT, plan_config, spec_plan
from tests.contract import (
    CLUSTER_TYPE,
    COMPONENT_TYPE,
    COUNT_FIELDS,
    ancestors,
    cluster_version,
    pools,
    walk,
)


def test_nothing_in_the_plan_is_unknown(contract_plan: Plan) -> None:
    document = json.dumps(contract_plan.to_json())
    assert "[unknown]" not in document
    assert len(contract_plan.resources) > 15


def test_one_component_with_the_cloud_type_token_parents_everything(contract_plan: Plan, cloud: str) -> None:
    component = contract_plan.one(COMPONENT_TYPE[cloud])
    assert component["name"] == f"im-prod-{cloud}"
    for r in contract_plan.resources:
        if r is not component:
            assert COMPONENT_TYPE[cloud] in ancestors(contract_plan, r), f"{r['urn']} is not under the component"


def test_every_configured_pool_is_declared_with_its_bounds(contract_plan: Plan, cloud: str) -> None:
    declared = pools(contract_plan, cloud)
    assert set(declared) == set(CLUSTER["nodePools"])
    for name, pool in CLUSTER["nodePools"].items():
        view = declared[name]
        assert (view.min_nodes, view.max_nodes) == (pool["minNodes"], pool["maxNodes"]), name
        assert view.spot == pool.get("spot", False), name


def test_autoscaler_owns_exactly_the_count(contract_plan: Plan, cloud: str) -> None:
    for view in pools(contract_plan, cloud).values():
        assert view.ignore_changes == sorted(COUNT_FIELDS[cloud]), view.name


def test_spot_pools_carry_the_common_label_and_taint(contract_plan: Plan, cloud: str) -> None:
    for view in pools(contract_plan, cloud).values():
        has_label = view.labels.get(SPOT_LABEL_KEY) == "spot"
        has_taint = SPOT_TAINT.render() in view.taints
        assert has_label == view.spot and has_taint == view.spot, view.name


def test_user_labels_and_taints_reach_the_nodes(contract_plan: Plan, cloud: str) -> None:
    gateway = pools(contract_plan, cloud)["gateway"]
    assert gateway.labels["im-platform/tier"] == "gateway"
    assert "im-platform/tier=gateway:NoSchedule" in gateway.taints


def test_kubernetes_version_is_pinned_on_cluster_and_pools(contract_plan: Plan, cloud: str) -> None:
    assert str(cluster_version(contract_plan, cloud)).startswith("1.33")
    for view in pools(contract_plan, cloud).values():
        assert str(view.version).startswith("1.33"), view.name


def test_kubeconfig_is_secret_and_uses_exec_authentication(contract_plan: Plan, cloud: str) -> None:
    assert contract_plan.outputs["kubeconfig"] == "[secret]"
    config = json.loads(contract_plan.revealed_outputs["kubeconfig"])
    user = config["users"][0]["user"]
    assert "token" not in user and "client-key-data" not in user
    assert user["exec"]["command"] == {"aws": "aws", "gcp": "gke-gcloud-auth-plugin", "azure": "kubelogin"}[cloud]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://")
    if cloud == "gcp":
        # GKE's DNS endpoint presents a publicly trusted certificate, not the cluster CA's.
        assert cluster["server"].endswith(".gke.goog") and "certificate-authority-data" not in cluster
    else:
        assert cluster["certificate-authority-data"]


def test_public_outputs_are_the_same_on_every_cloud(contract_plan: Plan) -> None:
    assert set(contract_plan.outputs) >= {"clusterName", "endpoint", "kubeconfig", "oidcIssuer", "nodePools"}
    summary = {p["name"]: p for p in contract_plan.outputs["nodePools"]}
    assert summary["worker"]["spot"] is True and summary["gateway"]["maxNodes"] == 40
    assert contract_plan.outputs["oidcIssuer"].startswith("https://")


def test_cluster_is_protected_in_prod_only(cloud: str, contract_plan: Plan) -> None:
    assert contract_plan.one(CLUSTER_TYPE[cloud])["options"]["protect"] is True
    dev = spec_plan(cloud, environment="dev")
    assert not any(r["options"]["protect"] for r in dev.resources)


def test_api_endpoint_follows_allowed_cidrs(contract_plan: Plan, cloud: str) -> None:
    cluster = contract_plan.one(CLUSTER_TYPE[cloud])
    leaves = set(walk(cluster["inputs"]))
    assert "203.0.113.0/24" in leaves
    assert "0.0.0.0/0" not in leaves


TAG_ARGUMENTS = {"aws": ("tags",), "azure-native": ("tags",), "gcp": ("labels", "resource_labels")}


def sdk_class(token: str) -> type:
    """The SDK class of a type token: aws:eks/nodeGroup:NodeGroup -> pulumi_aws.eks.NodeGroup."""
    package, module, name = token.split(":")
    sdk = importlib.import_module("pulumi_" + package.replace("-", "_"))
    return getattr(importlib.import_module(f"{sdk.__name__}.{module.split('/')[0]}"), name)


# Tags that sit below the top level: the VMs of a GKE node pool.
NESTED_TAGS = {"gcp:container/nodePool:NodePool": ("nodeConfig", "resourceLabels")}


def test_every_taggable_resource_carries_the_fixed_tags(contract_plan: Plan) -> None:
    checked = 0
    for r in contract_plan.resources:
        if r["type"] in NESTED_TAGS:
            outer, inner = NESTED_TAGS[r["type"]]
            tags = r["inputs"][outer][inner]
            assert tags.get("managed-by") == "im-platform" and tags.get("environment") == "prod", r["urn"]
            checked += 1
    for r in contract_plan.resources:
        if not r["custom"]:
            continue
        package = r["type"].split(":")[0]
        if package not in TAG_ARGUMENTS:  # Kubernetes objects carry labels, checked with the services
            continue
        accepted = inspect.signature(sdk_class(r["type"])._internal_init).parameters
        for argument in TAG_ARGUMENTS[package]:
            if argument not in accepted:
                continue
            key = "resourceLabels" if argument == "resource_labels" else argument
            tags = r["inputs"].get(key)
            assert isinstance(tags, dict), f"{r['urn']} takes {key} but has none"
            assert tags.get("managed-by") == "im-platform", r["urn"]
            assert tags.get("environment") == "prod" and tags.get("stack") == contract_plan.stack, r["urn"]
            checked += 1
    assert checked >= 5


def test_only_the_selected_cloud_sdk_is_imported(cloud: str) -> None:
    """In a fresh interpreter: the bare cluster, then the same cluster with service tiers and a
    capacity buffer (tests/test_services.py), import no other cloud's SDK. (A stack a traffic stack
    routes to also imports pulumi_aws: cert-manager solves its challenges in Route 53.)"""
    code = (
        "import gc, sys, json\n"
        "gc.disable()  # as the CLI runs a plan: faster, and it changes nothing that is imported\n"
        "from infra.offline.plan import run_program\n"
        "from tests.conftest import make_config\n"
        "from tests.test_services import BUFFER, SERVICES\n"
        f"run_program('solo-{cloud}', make_config('{cloud}'))\n"
        f"run_program('solo-{cloud}', make_config('{cloud}', extra={{'im-platform:services': SERVICES, "
        "'im-platform:capacityBuffer': BUFFER}))\n"
        "print(json.dumps(sorted(m for m in ('pulumi_aws', 'pulumi_gcp', 'pulumi_azure_native') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    expected = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure": "pulumi_azure_native"}[cloud]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [expected]


def test_two_components_never_collide(cloud: str) -> None:
    a = plan_config(cloud, stack=f"a-{cloud}")
    b = plan_config(cloud, stack=f"b-{cloud}")
    strip = lambda p: {r["name"] for r in p.resources}  # noqa: E731
    assert not strip(a) & strip(b), "logical names derive from the component name"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_plan_is_deterministic(cloud: str, environment: str) -> None:
    first = spec_plan(cloud, environment=environment).to_json()  # planned earlier, or now
    second = plan_config(cloud, environment=environment).to_json()
    # As text, key order included: a plan diffs cleanly from run to run.
    assert json.dumps(first, indent=2) == json.dumps(second, indent=2)


def test_kubernetes_objects_wait_for_the_node_pools(cloud: str) -> None:
    services = {"gateway": {"image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "pool": "gateway", "cpu": "1",
                            "memory": "2Gi", "replicas": {"min": 2, "max": 4}}}
    plan = spec_plan(cloud, extra={"im-platform:services": services})
    provider = plan.one("pulumi:providers:kubernetes")
    waits_for = set(provider["options"]["dependsOn"])
    pool_urns = {view.resource["urn"] for view in pools(plan, cloud).values()}
    cluster_urn = plan.one(CLUSTER_TYPE[cloud])["urn"]
    # The cluster is already an input of the provider (its kubeconfig); the pools must be waited for.
    assert pool_urns - {cluster_urn} <= waits_for
    assert pool_urns - {cluster_urn}, "at least one separate node pool resource"
