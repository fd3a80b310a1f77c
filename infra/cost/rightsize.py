"""Right-sizing: how many nodes of each pool its tiers can ever request, from the planned workloads.

Pure: no Pulumi. Reads the plan's Deployments (their containers and native sidecars, the
initContainers with `restartPolicy: Always`, which run beside the app for the pod's whole life and
count in its requests), the HorizontalPodAutoscalers' `maxReplicas` and the pool each pod is pinned
to by its `im-platform/pool` node selector. A node offers its allocatable share (the GKE reservation
formula, the largest of the three clouds') less a per-node allowance for the cloud's own daemonsets
(CNI, kube-proxy, CSI, log agent); pods are packed whole, tier by tier.

A pool whose `maxNodes` exceeds what fits by more than MARGIN is named, with the `maxNodes` that would fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

POOL_LABEL = "im-platform/pool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
# A tier scaled on its load: KEDA makes its HPA from these bounds (minReplicaCount, maxReplicaCount).
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def autoscaler_bounds(resources: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(namespace, Deployment) -> (fewest, most) replicas, from its HPA or its ScaledObject."""
    bounds: dict[tuple[str, str], tuple[int, int]] = {}
    for r in resources:
        inputs = r.get("inputs") or {}
        spec = inputs.get("spec") or {}
        if r.get("type") == HPA:
            low, high = spec.get("minReplicas") or 1, spec.get("maxReplicas") or 0
        elif r.get("type") == SCALED_OBJECT:
            low, high = spec.get("minReplicaCount") or 1, spec.get("maxReplicaCount") or 0
        else:
            continue
        ref = spec.get("scaleTargetRef") or {}
        ns = (inputs.get("metadata") or {}).get("namespace") or ""
        bounds[(str(ns), str(ref.get("name")))] = (int(low), int(high))
    return bounds
# A pool may be this much wider than its tiers' peak (bin-packing slack, a zone lost) before a warning.
MARGIN = Decimal("0.25")
# The cloud's own daemonsets on every node (aws-node/azure-cni/gke netd, kube-proxy, CSI node, logs).
DAEMONSET_CPU = Decimal("0.25")
DAEMONSET_MEMORY_GIB = Decimal("0.5")
EVICTION_GIB = Decimal("0.1")

_QUANTITY = re.compile(r"^(?P<n>[0-9.]+)(?P<unit>m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {None: Decimal(1), "m": Decimal("0.001"), "k": Decimal(1000), "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
          "T": Decimal(10) ** 12, "Ki": Decimal(1024), "Mi": Decimal(1024) ** 2, "Gi": Decimal(1024) ** 3,
          "Ti": Decimal(1024) ** 4}


def quantity(text: Any) -> Decimal:
    """A Kubernetes quantity ("500m", "2Gi", "1") as a Decimal of base units (cores, bytes)."""
    match = _QUANTITY.match(str(text or "0").strip())
    if not match:
        return Decimal(0)
    return Decimal(match["n"]) * _UNITS[match["unit"]]


def allocatable(vcpu: int, memory_gib: int) -> tuple[Decimal, Decimal]:
    """CPU (cores) and memory (GiB) a node offers pods: GKE's kube-reserved formula, less eviction
    headroom and the cloud's daemonsets (https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes)."""
    cpu_steps = ((1, Decimal("0.06")), (1, Decimal("0.01")), (2, Decimal("0.005")), (10**6, Decimal("0.0025")))
    mem_steps = ((4, Decimal("0.25")), (4, Decimal("0.20")), (8, Decimal("0.10")), (112, Decimal("0.06")), (10**6, Decimal("0.02")))

    def reserved(total: Decimal, steps: Sequence[tuple[int, Decimal]]) -> Decimal:
        left, out = total, Decimal(0)
        for size, rate in steps:
            take = min(left, Decimal(size))
            out += take * rate
            left -= take
            if left <= 0:
                break
        return out

    cpu = Decimal(vcpu) - reserved(Decimal(vcpu), cpu_steps) - DAEMONSET_CPU
    mem = Decimal(memory_gib) - reserved(Decimal(memory_gib), mem_steps) - EVICTION_GIB - DAEMONSET_MEMORY_GIB
    return cpu, mem


@dataclass(frozen=True)
class Workload:
    name: str
    pool: str
    replicas: int        # the most it can run: HPA maxReplicas, else spec.replicas
    cpu: Decimal         # one pod's request, cores
    memory_gib: Decimal  # one pod's request, GiB


def pod_requests(pod: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """A pod's scheduling requests: its containers plus its native sidecars (restartPolicy Always);
    a plain init container runs before them, so only the largest of those, if larger, counts."""
    def req(c: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
        r = (c.get("resources") or {}).get("requests") or {}
        return quantity(r.get("cpu")), quantity(r.get("memory")) / _UNITS["Gi"]

    cpu = mem = Decimal(0)
    for c in pod.get("containers") or []:
        a, b = req(c)
        cpu, mem = cpu + a, mem + b
    init_cpu = init_mem = Decimal(0)
    for c in pod.get("initContainers") or []:
        a, b = req(c)
        if c.get("restartPolicy") == "Always":
            cpu, mem = cpu + a, mem + b
        else:
            init_cpu, init_mem = max(init_cpu, a), max(init_mem, b)
    return max(cpu, init_cpu), max(mem, init_mem)


def workloads(resources: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """The planned Deployments pinned to a pool, at the most replicas they can run."""
    items = list(resources)
    hpa_max = {key: high for key, (_, high) in autoscaler_bounds(items).items()}
    found = []
    for r in items:
        if r.get("type") != DEPLOYMENT:
            continue
        inputs = r.get("inputs") or {}
        meta = inputs.get("metadata") or {}
        spec = inputs.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        pool = (pod.get("nodeSelector") or {}).get(POOL_LABEL)
        if not pool:
            continue
        key = (meta.get("namespace") or "", str(meta.get("name")))
        replicas = hpa_max.get(key) or int(spec.get("replicas") or 1)
        cpu, mem = pod_requests(pod)
        found.append(Workload(f"{key[0]}/{key[1]}", str(pool), replicas, cpu, mem))
    return found


@dataclass(frozen=True)
class Fit:
    pool: str
    max_nodes: int
    nodes_needed: int
    tiers: tuple[str, ...]

    @property
    def oversized(self) -> bool:
        return self.max_nodes > math.ceil(self.nodes_needed * (1 + MARGIN))

    def warning(self, stack: str) -> str:
        return (f"{stack}: im-platform:cluster.nodePools.{self.pool}.maxNodes is {self.max_nodes}, but its "
                f"tiers ({', '.join(self.tiers)}) at replicas.max, with the capacity buffer, fill {self.nodes_needed} "
                f"nodes: maxNodes {self.nodes_needed} would fit (the rest is capacity no workload can request)")


def fits(pools: Iterable[tuple[str, int, int, int]], resources: Iterable[Mapping[str, Any]]) -> list[Fit]:
    """For each (pool, vCPU, GiB, maxNodes) with workloads: the nodes its workloads fill at their peak."""
    loads = workloads(resources)
    out = []
    for name, vcpu, memory_gib, max_nodes in pools:
        mine = [w for w in loads if w.pool == name]
        if not mine:
            continue
        cpu, mem = allocatable(vcpu, memory_gib)
        nodes = 0
        for w in mine:
            per_node = min(math.floor(cpu / w.cpu) if w.cpu else 10**6, math.floor(mem / w.memory_gib) if w.memory_gib else 10**6)
            nodes += math.ceil(w.replicas / per_node) if per_node > 0 else w.replicas
        out.append(Fit(name, max_nodes, nodes, tuple(w.name for w in mine)))
    return out


def warnings(stack: str, pools: Iterable[tuple[str, int, int, int]], resources: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f.warning(stack) for f in fits(pools, resources) if f.oversized]
