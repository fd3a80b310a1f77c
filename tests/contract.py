"""A cloud-neutral view of a plan: what each cloud declared for the cluster and its node pools,
read from the recorded registrations, so one contract test can hold all three clouds to the spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.spec import POOL_LABEL_KEY
from infra.offline.plan import UNKNOWN, Plan

COMPONENT_TYPE = {"aws": "im-platform:aws:EksCluster", "gcp": "im-platform:gcp:GkeCluster",
                  "azure": "im-platform:azure:AksCluster"}
CLUSTER_TYPE = {"aws": "aws:eks/cluster:Cluster", "gcp": "gcp:container/cluster:Cluster",
                "azure": "azure-native:containerservice:ManagedCluster"}
POOL_TYPE = {"aws": "aws:eks/nodeGroup:NodeGroup", "gcp": "gcp:container/nodePool:NodePool",
             "azure": "azure-native:containerservice:AgentPool"}
# The one field the autoscaler owns on each cloud, as ignoreChanges names it.
COUNT_FIELDS = {"aws": ["scalingConfig.desiredSize"], "gcp": ["initialNodeCount", "nodeCount"], "azure": ["count"]}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


@dataclass
class PoolView:
    name: str
    min_nodes: int
    max_nodes: int
    machine_types: list[str]
    spot: bool
    labels: dict[str, str]
    taints: set[str]
    ignore_changes: list[str]
    version: Any
    resource: dict[str, Any]


def _taints_from_objects(items: list[dict[str, Any]] | None) -> set[str]:
    return {f"{t['key']}={t.get('value', '')}:{_EFFECTS.get(t['effect'], t['effect'])}" for t in items or []}


def pools(plan: Plan, cloud: str) -> dict[str, PoolView]:
    views: list[PoolView] = []
    for r in plan.of_type(POOL_TYPE[cloud]):
        i, ignore = r["inputs"], sorted(r["options"]["ignoreChanges"])
        if cloud == "aws":
            s = i["scalingConfig"]
            views.append(PoolView(i["labels"][POOL_LABEL_KEY], s["minSize"], s["maxSize"], i["instanceTypes"],
                                  i["capacityType"] == "SPOT", i["labels"], _taints_from_objects(i.get("taints")),
                                  ignore, i.get("version"), r))
        elif cloud == "gcp":
            a, n = i["autoscaling"], i["nodeConfig"]
            views.append(PoolView(n["labels"][POOL_LABEL_KEY], a["totalMinNodeCount"], a["totalMaxNodeCount"],
                                  [n["machineType"]], bool(n.get("spot")), n["labels"],
                                  _taints_from_objects(n.get("taints")), ignore, i.get("version"), r))
        else:
            views.append(_azure_view(i, ignore, r))
    if cloud == "azure":
        managed = plan.one(CLUSTER_TYPE["azure"])
        prefix = "agentPoolProfiles[0]."
        ignore = sorted(c[len(prefix):] for c in managed["options"]["ignoreChanges"] if c.startswith(prefix))
        for profile in managed["inputs"].get("agentPoolProfiles", []):
            views.append(_azure_view(profile, ignore, managed))
    return {v.name: v for v in views}


def _azure_view(i: dict[str, Any], ignore: list[str], r: dict[str, Any]) -> PoolView:
    return PoolView(i["nodeLabels"][POOL_LABEL_KEY], i["minCount"], i["maxCount"], [i["vmSize"]],
                    i.get("scaleSetPriority") == "Spot", i["nodeLabels"], set(i.get("nodeTaints") or []),
                    ignore, i.get("orchestratorVersion"), r)


def cluster_version(plan: Plan, cloud: str) -> Any:
    i = plan.one(CLUSTER_TYPE[cloud])["inputs"]
    return {"aws": i.get("version"), "gcp": i.get("minMasterVersion"), "azure": i.get("kubernetesVersion")}[cloud]


def ancestors(plan: Plan, resource: dict[str, Any]) -> list[str]:
    by_urn = {r["urn"]: r for r in plan.resources}
    chain, parent = [], resource["parent"]
    while parent in by_urn:
        chain.append(by_urn[parent]["type"])
        parent = by_urn[parent]["parent"]
    return chain


def walk(value: Any):  # noqa: ANN201 - yields every leaf
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
    else:
        yield value


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` holds the plan's "[unknown]" marker, as `.key[index]` paths ("<root>" for itself)."""
    if value == UNKNOWN:
        return [path or "<root>"]
    if isinstance(value, dict):
        return [q for k, v in value.items() for q in unknown_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [q for i, v in enumerate(value) for q in unknown_paths(v, f"{path}[{i}]")]
    return []
