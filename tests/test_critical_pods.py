"""GKE admits a pod at a critical priority class only in a namespace whose ResourceQuota selects
that class: every GKE plan's pod templates and Helm releases (their values over the chart's
defaults) at such a class run in a namespace with that quota."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.config.stackfiles import all_stacks, read_stack_config, stack_file
from infra.offline.plan import Plan
from tests.conftest import spec_plan, stack_plan
from tests.test_services_config import SERVICES

# GKE runs the ResourceQuota admission plugin with `limitedResources` matching
# PriorityClass In [system-node-critical, system-cluster-critical] (the kube-up addon
# admission-resource-quota-critical-pods): "pods that request a matching priority class can only be
# created in namespaces that have a matching quota"
# (https://kubernetes.io/docs/concepts/policy/resource-quotas/#limit-priority-class-consumption-by-default;
# reported on GKE in fluxcd/flux2#3879 and NVIDIA/aicr#921). kube-system is exempt: GKE ships the quota there.
CRITICAL_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")
EXEMPT_NAMESPACES = {"kube-system"}
POD_TEMPLATES = {
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
    "kubernetes:core/v1:Pod": "spec",
}
RELEASES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
# What each chart the program installs does with priority classes when its values say nothing:
# the value paths its pod templates read, and their defaults. A chart missing here fails the test
# until its defaults are read and added.
# cert-manager (deploy/charts/cert-manager/values.yaml, templates/deployment.yaml,
# webhook-deployment.yaml, cainjector-deployment.yaml, startupapicheck-job.yaml): every pod reads
# `global.priorityClassName`, default "".
CHART_PRIORITY_PATHS: dict[str, dict[str, str]] = {
    "cert-manager": {"global.priorityClassName": ""},
    # eks-charts aws-load-balancer-controller values.yaml: `priorityClassName: system-cluster-critical` (EKS only).
    "aws-load-balancer-controller": {"priorityClassName": "system-cluster-critical"},
    # kubernetes/autoscaler charts/cluster-autoscaler values.yaml: `priorityClassName: "system-cluster-critical"` (EKS only).
    "cluster-autoscaler": {"priorityClassName": "system-cluster-critical"},
    # kubernetes-sigs/metrics-server charts/metrics-server values.yaml: `priorityClassName: system-cluster-critical` (EKS only).
    "metrics-server": {"priorityClassName": "system-cluster-critical"},
    # kedacore/charts keda values.yaml (2.21.0): `priorityClassName: ""` for the operator, metrics server and webhooks;
    # the program sets its own class (components/k8s/keda.py, KEDA_PRIORITY_CLASS).
    "keda": {"priorityClassName": ""},
}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _walk_priority(values: Any) -> Iterator[str]:
    """Every priorityClassName a release's values set, at any depth (per component or global)."""
    if isinstance(values, dict):
        for key, value in values.items():
            if key == "priorityClassName" and isinstance(value, str):
                yield value
            else:
                yield from _walk_priority(value)
    elif isinstance(values, list):
        for item in values:
            yield from _walk_priority(item)


def critical_workloads(plan: Plan) -> list[tuple[str, str, str]]:
    """(what, namespace, class) of every pod template and Helm release at a critical class."""
    found = []
    for r in plan.resources:
        inputs = r["inputs"]
        if r["type"] in POD_TEMPLATES:
            pod = _get(inputs, POD_TEMPLATES[r["type"]]) or {}
            cls = pod.get("priorityClassName")
            if cls in CRITICAL_PRIORITY_CLASSES:
                found.append((r["name"], inputs["metadata"].get("namespace") or "default", cls))
        elif r["type"] in RELEASES:
            chart = inputs["chart"]
            assert chart in CHART_PRIORITY_PATHS, f"read the priority defaults of chart {chart} and list them here"
            values = inputs.get("values") or {}
            classes = set(_walk_priority(values))
            classes |= {default for path, default in CHART_PRIORITY_PATHS[chart].items() if _get(values, path) is None}
            for cls in classes & set(CRITICAL_PRIORITY_CLASSES):
                found.append((r["name"], inputs.get("namespace") or "default", cls))
    return found


def quota_classes(plan: Plan) -> dict[str, set[str]]:
    """namespace -> the priority classes a ResourceQuota there selects (operator In)."""
    out: dict[str, set[str]] = {}
    for q in plan.of_type("kubernetes:core/v1:ResourceQuota"):
        for expr in _get(q["inputs"], "spec.scopeSelector.matchExpressions") or []:
            if expr.get("scopeName") == "PriorityClass" and expr.get("operator") == "In":
                out.setdefault(q["inputs"]["metadata"]["namespace"], set()).update(expr.get("values") or [])
    return out


def gke_plans() -> list[tuple[str, Plan]]:
    plans = []
    for stack in all_stacks():
        values, _ = read_stack_config(stack_file(stack), "im-platform")
        if values.get("im-platform:cloud") == "gcp":
            plans.append((stack, stack_plan(stack)))
    # The shared test spec with TLS (the plan tests/test_tls.py makes too, shared by the session).
    tls = {"hosts": ["chat-test.example.com"], "zone": "example.com"}
    plans.append(("tls-gcp", spec_plan("gcp", stack="tls-gcp", extra={"im-platform:services": SERVICES, "im-platform:tls": tls})))
    return plans


def test_every_gke_workload_at_a_critical_class_runs_where_a_quota_selects_it() -> None:
    checked = 0
    for stack, plan in gke_plans():
        quotas = quota_classes(plan)
        for what, namespace, cls in critical_workloads(plan):
            if namespace in EXEMPT_NAMESPACES:
                continue
            checked += 1
            assert cls in quotas.get(namespace, set()), (
                f"{stack}: {what} runs at {cls} in namespace {namespace}, which has no ResourceQuota selecting it "
                f"(GKE refuses its pods): {json.dumps({k: sorted(v) for k, v in quotas.items()})}")
    assert checked >= 2, "cert-manager's release on the GKE plans"


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_only_gke_gets_the_quota(cloud: str) -> None:
    plan = spec_plan(cloud, stack=f"tls-{cloud}", extra={"im-platform:services": SERVICES,
                                                         "im-platform:tls": {"hosts": ["chat-test.example.com"],
                                                                             "zone": "example.com"}})
    assert critical_workloads(plan) and not quota_classes(plan)
