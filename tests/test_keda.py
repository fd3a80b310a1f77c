"""KEDA and the metric stores, from the recorded registrations of real offline plans.

Every ScaledObject and TriggerAuthentication the example stacks declare is held to KEDA's own CRD
schema (v2.21.0, the chart's version), read from the Go module cache at test time
(`go mod download github.com/kedacore/keda/v2@v2.21.0`, which ./setup.sh runs), never committed.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.k8s.keda import KEDA_CHART_VERSION
from components.k8s.services import scaling_behavior
from infra.config.loader import load_spec
from infra.config.stackfiles import find_stack_file, read_stack_config
from infra.offline.plan import Plan
from tests.plans import spec_plan, stack_plan
from tests.test_services_config import SERVICES

KEDA_MODULE = f"github.com/kedacore/keda/v2@v{KEDA_CHART_VERSION}"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TRIGGER_AUTH = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
RELEASE = "kubernetes:helm.sh/v3:Release"
SCALED_STACKS = ("dev-aws", "prod-aws", "staging-gcp", "prod-azure", "dev-kubernetes")
GATEWAY_SCALING = {"metric": "im_gateway_connections", "targetPerPod": 20000, "metricsPort": 9102,
                   "schedule": [{"start": "0 19 * * *", "end": "0 23 * * *", "timezone": "Asia/Shanghai", "replicas": 30}]}


@functools.cache
def crd_schema(name: str) -> dict[str, Any]:
    """The openAPIV3Schema of a KEDA CRD from the module cache (skip outside CI when it is absent)."""
    try:
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cache = str(Path.home() / "go" / "pkg" / "mod")
    path = Path(cache) / KEDA_MODULE / "config" / "crd" / "bases" / f"keda.sh_{name}.yaml"
    if not path.is_file():
        message = f"{path} is missing: GOFLAGS=-mod=mod go mod download {KEDA_MODULE} (./setup.sh does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def manifest(resource: dict[str, Any]) -> dict[str, Any]:
    inputs = resource["inputs"]
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], "metadata": inputs["metadata"],
            "spec": inputs["spec"]}


def by_name(plan: Plan, type_: str) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["metadata"]["name"]: r for r in plan.of_type(type_)}


def spec_of(stack: str):  # noqa: ANN201
    path = find_stack_file(stack)
    assert path is not None
    values, _ = read_stack_config(path, "im-platform")
    return load_spec(values, project="im-platform", stack=stack)


# -- the CRD schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SCALED_STACKS)
def test_every_scaled_object_and_trigger_auth_is_admitted_by_kedas_crd_schema(stack: str) -> None:
    plan = stack_plan(stack)
    objects = plan.of_type(SCALED_OBJECT)
    assert {o["inputs"]["metadata"]["name"] for o in objects} == {s.name for s in spec_of(stack).scaled_services}
    for resource in objects:
        doc = manifest(resource)
        assert "[unknown]" not in json.dumps(doc)
        jsonschema.validate(doc, crd_schema("scaledobjects"))
    for resource in plan.of_type(TRIGGER_AUTH):
        jsonschema.validate(manifest(resource), crd_schema("triggerauthentications"))


def test_the_crd_schema_refuses_what_keda_refuses() -> None:
    """The check can fail: a fallback behaviour KEDA does not know, a trigger without a type."""
    doc = manifest(by_name(stack_plan("prod-aws"), SCALED_OBJECT)["gateway"])
    doc["spec"]["fallback"]["behavior"] = "zero"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, crd_schema("scaledobjects"))
    doc = manifest(by_name(stack_plan("prod-aws"), SCALED_OBJECT)["gateway"])
    del doc["spec"]["triggers"][0]["type"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, crd_schema("scaledobjects"))


# -- what a scaled tier gets ---------------------------------------------------------------------------


def test_a_scaled_tier_has_a_scaled_object_in_place_of_its_hpa() -> None:
    plan = stack_plan("prod-aws")
    spec = spec_of("prod-aws")
    gateway = next(s for s in spec.services if s.name == "gateway")
    assert set(by_name(plan, SCALED_OBJECT)) == {"gateway", "logic", "push"} and not plan.of_type(HPA)
    so = by_name(plan, SCALED_OBJECT)["gateway"]["inputs"]
    body = so["spec"]
    assert (body["minReplicaCount"], body["maxReplicaCount"]) == (gateway.min_replicas, gateway.max_replicas)
    assert body["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    # A metric outage holds the count: fallback to max(current, min), an empty result is an error.
    assert body["fallback"]["behavior"] == "currentReplicasIfHigher" and body["fallback"]["replicas"] == gateway.min_replicas
    load, cpu, *crons = body["triggers"]
    assert load["type"] == "prometheus" and load["metricType"] == "AverageValue"
    assert load["metadata"]["ignoreNullValues"] == "false" and load["metadata"]["threshold"] == "20000"
    assert load["metadata"]["query"].startswith("sum(im_gateway_connections{")
    assert load["metadata"]["serverAddress"].startswith("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-")
    assert load["metadata"]["awsRegion"] == "eu-west-1" and load["authenticationRef"] == {"name": "gateway-prometheus"}
    assert cpu == {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": str(gateway.target_cpu_percent)}}
    # One cron trigger per schedule window, in the stack file's order.
    assert gateway.scaling is not None and len(crons) == len(gateway.scaling.schedule) > 1
    for cron, window in zip(crons, gateway.scaling.schedule, strict=True):
        assert cron["type"] == "cron" and cron["metadata"]["timezone"] == "UTC"
        assert (cron["metadata"]["start"], cron["metadata"]["end"]) == (window.start, window.end)
        assert cron["metadata"]["desiredReplicas"] == str(window.replicas)
    assert crons[0]["metadata"]["start"] == "0 5 * * *"
    # The connection tier's slow, draining scale-down rides into the HPA KEDA makes.
    hpa_config = body["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["behavior"] == scaling_behavior(gateway)
    assert hpa_config["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert hpa_config["name"] == "gateway" and so["metadata"]["annotations"] == {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
    auth = by_name(plan, TRIGGER_AUTH)["gateway-prometheus"]["inputs"]
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}


def test_cpu_false_and_no_schedule_leave_only_the_load_trigger() -> None:
    scaling = {"metric": "im_gateway_connections", "targetPerPod": 1500.5, "cpu": False}
    plan = spec_plan("gcp", extra={"im-platform:services": {"gateway": {
        "image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "cpu": "1", "memory": "2Gi",
        "replicas": {"min": 2, "max": 10}, "scaling": scaling}}})
    (so,) = plan.of_type(SCALED_OBJECT)
    (trigger,) = so["inputs"]["spec"]["triggers"]
    assert trigger["metadata"]["threshold"] == "1500.5" and trigger["type"] == "prometheus"
    jsonschema.validate(manifest(so), crd_schema("scaledobjects"))
    # The scrape port is the tier's own when metricsPort is not given.
    (monitor,) = plan.of_type("kubernetes:monitoring.googleapis.com/v1:PodMonitoring")
    assert monitor["inputs"]["spec"]["endpoints"][0]["port"] == "app"


def test_a_stack_without_scaling_declares_no_keda_and_no_store() -> None:
    plan = spec_plan("aws", extra={"im-platform:services": SERVICES})
    assert not plan.of_type(SCALED_OBJECT) and len(plan.of_type(HPA)) == len(SERVICES)
    assert not [r for r in plan.resources if "keda" in r["name"] or r["type"].startswith("aws:amp")]


def test_keda_existing_declares_no_chart_but_the_scaled_objects() -> None:
    services = {**SERVICES, "gateway": {**SERVICES["gateway"], "scaling": GATEWAY_SCALING}}
    extra = {"im-platform:monitoring": {"keda": "existing"}, "im-platform:services": services}
    plan = spec_plan("azure", extra=extra)
    releases = [r for r in plan.of_type(RELEASE) if r["inputs"].get("chart") == "keda"]
    assert not releases and plan.of_type(SCALED_OBJECT)


# -- KEDA itself -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod-aws", "staging-gcp", "prod-azure", "dev-kubernetes"])
def test_keda_chart_is_pinned_on_the_system_pool_with_its_priority_budget_and_policies(stack: str) -> None:
    plan = stack_plan(stack)
    (release,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == "keda"]
    values = release["inputs"]["values"]
    assert release["inputs"]["version"] == "2.21.0" and release["inputs"]["namespace"] == "keda"
    assert values["priorityClassName"] == "im-platform-keda"
    if stack != "dev-kubernetes":
        assert values["nodeSelector"] == {"im-platform/pool": "system"}
    priorities = by_name(plan, "kubernetes:scheduling.k8s.io/v1:PriorityClass")
    assert priorities["im-platform-keda"]["inputs"]["value"] > priorities["im-platform-tier"]["inputs"]["value"]
    budgets = {r["inputs"]["metadata"]["name"] for r in plan.of_type("kubernetes:policy/v1:PodDisruptionBudget")
               if r["inputs"]["metadata"]["namespace"] == "keda"}
    assert budgets == {"keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks"}
    policies = {r["inputs"]["metadata"]["name"] for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if r["inputs"]["metadata"]["namespace"] == "keda"}
    assert {"default-deny", "keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks"} <= policies
    assert "secret" not in json.dumps(values).lower()


def test_the_chart_waits_for_its_identity_and_the_scraper_for_its_workspace() -> None:
    plan = stack_plan("prod-aws")
    urn = {r["name"]: r["urn"] for r in plan.resources}
    (release,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == "keda"]
    waits = plan.waits_for(release["urn"])
    assert urn["im-prod-aws-keda-keda"] in waits  # the role and its policy and association share the name
    assert {r["urn"] for r in plan.resources if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
            and r["name"] == "im-prod-aws-keda-keda"} <= waits
    assert {r["urn"] for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r["name"] == "im-prod-aws-keda-keda"} <= waits
    (scraper,) = plan.of_type("aws:amp/scraper:Scraper")
    (workspace,) = plan.of_type("aws:amp/workspace:Workspace")
    assert workspace["urn"] in plan.waits_for(scraper["urn"])
    gcp = stack_plan("staging-gcp")
    (binding,) = [r for r in gcp.of_type("gcp:serviceaccount/iAMMember:IAMMember") if "keda" in r["name"]]
    (cluster,) = gcp.of_type("gcp:container/cluster:Cluster")
    assert cluster["urn"] in gcp.waits_for(binding["urn"])
    (gcp_release,) = [r for r in gcp.of_type(RELEASE) if r["inputs"]["chart"] == "keda"]
    assert binding["urn"] in gcp.waits_for(gcp_release["urn"])


# -- the stores, per cloud -------------------------------------------------------------------------


def test_aws_store_workspace_scraper_and_a_query_only_role() -> None:
    plan = stack_plan("prod-aws")
    (workspace,) = plan.of_type("aws:amp/workspace:Workspace")
    (scraper,) = plan.of_type("aws:amp/scraper:Scraper")
    inputs = scraper["inputs"]
    assert inputs["destination"]["amp"]["workspaceArn"].startswith("arn:aws:aps:eu-west-1:")
    assert inputs["source"]["eks"]["clusterArn"].startswith("arn:aws:eks:eu-west-1:") and len(inputs["source"]["eks"]["subnetIds"]) == 3
    jobs = yaml.safe_load(inputs["scrapeConfiguration"])["scrape_configs"]
    assert {j["job_name"] for j in jobs} == {"gateway/gateway", "logic/logic", "push/push"} or len(jobs) == 3
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r["name"].endswith("-keda")]
    doc = json.loads(policy["inputs"]["policy"])
    (statement,) = doc["Statement"]
    assert statement["Action"] == ["aps:QueryMetrics"] and statement["Resource"] == inputs["destination"]["amp"]["workspaceArn"]
    (association,) = [r for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if r["name"].endswith("-keda")]
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == ("keda", "keda-operator")
    (entry,) = plan.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry["inputs"]["userName"] == "aps-collector-user"
    assert workspace["inputs"]["alias"]


def test_gcp_store_managed_collection_pod_monitorings_and_a_viewer() -> None:
    plan = stack_plan("staging-gcp")
    (cluster,) = plan.of_type("gcp:container/cluster:Cluster")
    assert cluster["inputs"]["monitoringConfig"]["managedPrometheus"]["enabled"] is True
    monitors = by_name(plan, "kubernetes:monitoring.googleapis.com/v1:PodMonitoring")
    assert set(monitors) == {s.name for s in spec_of("staging-gcp").scaled_services}
    assert monitors["gateway"]["inputs"]["spec"]["endpoints"][0] == {"port": "metrics", "path": "/metrics", "interval": "30s"}
    (viewer,) = [r for r in plan.of_type("gcp:projects/iAMMember:IAMMember") if "keda" in r["name"]]
    assert viewer["inputs"]["role"] == "roles/monitoring.viewer"
    (binding,) = [r for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember") if "keda" in r["name"]]
    assert binding["inputs"]["member"] == "serviceAccount:acme-im-staging.svc.id.goog[keda/keda-operator]"
    (release,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == "keda"]
    assert release["inputs"]["values"]["podIdentity"]["gcp"]["enabled"] is True


def test_azure_store_workspace_rule_association_and_a_federated_reader() -> None:
    plan = stack_plan("prod-azure")
    (cluster,) = plan.of_type("azure-native:containerservice:ManagedCluster")
    assert cluster["inputs"]["azureMonitorProfile"]["metrics"]["enabled"] is True
    (workspace,) = plan.of_type("azure-native:monitor:AzureMonitorWorkspace")
    (rule,) = plan.of_type("azure-native:monitor:DataCollectionRule")
    (association,) = plan.of_type("azure-native:monitor:DataCollectionRuleAssociation")
    assert plan.of_type("azure-native:monitor:DataCollectionEndpoint")
    assert association["inputs"]["resourceUri"].endswith("/providers/Microsoft.ContainerService/managedClusters/"
                                                         + cluster["inputs"]["resourceName"])
    assert rule["inputs"]["dataFlows"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    (federation,) = [r for r in plan.of_type("azure-native:managedidentity:FederatedIdentityCredential") if "keda" in r["name"]]
    assert federation["inputs"]["subject"] == "system:serviceaccount:keda:keda-operator"
    (reader,) = [r for r in plan.of_type("azure-native:authorization:RoleAssignment") if "monitoring-data-reader" in r["name"]]
    assert reader["inputs"]["roleDefinitionId"].endswith("/b0d8363b-8ddd-447d-831f-62ca05bff136")
    assert reader["inputs"]["scope"].endswith("/providers/Microsoft.Monitor/accounts/" + workspace["inputs"]["azureMonitorWorkspaceName"])
    so = by_name(plan, SCALED_OBJECT)["gateway"]["inputs"]
    assert so["spec"]["triggers"][0]["metadata"]["serverAddress"].endswith(".prometheus.monitor.azure.com")
    assert by_name(plan, TRIGGER_AUTH)["gateway-prometheus"]["inputs"]["spec"] == {"podIdentity": {"provider": "azure-workload"}}


def test_kubernetes_store_is_the_url_and_pods_carry_the_scrape_annotations() -> None:
    plan = stack_plan("dev-kubernetes")
    so = by_name(plan, SCALED_OBJECT)["gateway"]["inputs"]
    assert so["spec"]["triggers"][0]["metadata"]["serverAddress"] == "http://prometheus-server.monitoring.svc:9090"
    assert "authenticationRef" not in so["spec"]["triggers"][0] and not plan.of_type(TRIGGER_AUTH)
    deployments = by_name(plan, "kubernetes:apps/v1:Deployment")
    annotations = deployments["gateway"]["inputs"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9102" and annotations["prometheus.io/scrape"] == "true"


@pytest.mark.parametrize(("stack", "source"), [
    ("prod-aws", {"ipBlock": {"cidr": "10.20.0.0/16"}}),
    ("staging-gcp", {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}},
                     "podSelector": {"matchLabels": {"app.kubernetes.io/name": "collector"}}}),
    ("prod-azure", {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"rsName": "ama-metrics"}}}),
    ("dev-kubernetes", {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}),
])
def test_the_tier_admits_the_scraper_on_the_metrics_port_only(stack: str, source: dict[str, Any]) -> None:
    plan = stack_plan(stack)
    policy = by_name(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")["gateway"]["inputs"]
    rules = [r for r in policy["spec"]["ingress"] if {"protocol": "TCP", "port": 9102} in r.get("ports", [])]
    assert rules == [{"from": [source], "ports": [{"protocol": "TCP", "port": 9102}]}]
    deployment = by_name(plan, "kubernetes:apps/v1:Deployment")["gateway"]["inputs"]
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in ports
