"""Computed outputs of the Kubernetes objects the program declares: what the API server adds
(uid, resourceVersion, ...), a load balancer's address for a public Service, a Helm release's status.
Inputs are echoed by PlanMocks, so `metadata.name` and the rest read as declared."""

from __future__ import annotations

from typing import Any

from pulumi.runtime.mocks import MockResourceArgs

from infra.offline.mocks.common import config_value, digest

CREATED = "2025-01-01T00:00:00Z"


def _uid(args: MockResourceArgs) -> str:
    d = digest("uid", args.typ, args.name, length=32)
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"


def _object(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    """Id `namespace/name` (or `name` for cluster-scoped objects), metadata as the API server returns it."""
    metadata = dict(args.inputs.get("metadata") or {})
    name = metadata.get("name") or f"{args.name}-{digest('k8sname', args.name, length=8)}"
    metadata.update({"name": name, "uid": _uid(args), "resourceVersion": str(int(digest("rv", args.name, length=6), 16)),
                     "creationTimestamp": CREATED, "generation": 1})
    namespace = metadata.get("namespace")
    return (f"{namespace}/{name}" if namespace else name), {"metadata": metadata}


def _load_balancer_ingress(args: MockResourceArgs) -> dict[str, str]:
    cloud = config_value("im-platform:cloud", "aws")
    n = int(digest("lb", args.name, length=4), 16)
    if cloud == "aws":
        region = config_value("aws:region", "eu-west-1")
        return {"hostname": f"a{digest('elb', args.name, length=31)}-{n % 10**9}.{region}.elb.amazonaws.com"}
    # Documentation range addresses: clearly not real.
    return {"ip": f"203.0.113.{n % 250 + 1}"}


def _service(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid, out = _object(args)
    spec = dict(args.inputs.get("spec") or {})
    n = int(digest("clusterip", args.name, length=4), 16)
    spec.setdefault("clusterIP", f"172.20.{n // 256 % 16}.{n % 254 + 1}")
    status: dict[str, Any] = {"loadBalancer": {}}
    # An existing cluster's load balancer implementation (MetalLB, kube-vip, a cloud's own) picks the
    # address from its own pool at deploy time: offline there is none to show, so none is made up.
    if spec.get("type") == "LoadBalancer" and config_value("im-platform:cloud", "aws") != "kubernetes":
        status["loadBalancer"] = {"ingress": [_load_balancer_ingress(args)]}
        spec.setdefault("healthCheckNodePort", 30000 + n % 2767)
    out.update({"spec": spec, "status": status})
    return rid, out


def _deployment(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid, out = _object(args)
    replicas = (args.inputs.get("spec") or {}).get("replicas", 1)
    out["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                     "availableReplicas": replicas, "updatedReplicas": replicas}
    return rid, out


def _release(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    namespace, name = args.inputs.get("namespace") or "default", args.inputs.get("name") or args.name
    return f"{namespace}/{name}", {"status": {
        "name": name, "namespace": namespace, "chart": args.inputs.get("chart"), "version": args.inputs.get("version"),
        "status": "deployed", "revision": 1,
    }}


RESOURCES = {
    "kubernetes:core/v1:Namespace": _object,
    "kubernetes:core/v1:ServiceAccount": _object,
    "kubernetes:core/v1:Service": _service,
    "kubernetes:apps/v1:Deployment": _deployment,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": _object,
    "kubernetes:policy/v1:PodDisruptionBudget": _object,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": _object,
    "kubernetes:scheduling.k8s.io/v1:PriorityClass": _object,
    "kubernetes:helm.sh/v3:Release": _release,
    "kubernetes:batch/v1:CronJob": _object,
    "kubernetes:core/v1:ConfigMap": _object,
}

CALLS: dict[str, Any] = {}
