"""Raising a node pool's minimum above the count its autoscaler left: what the cloud's API refuses,
and the state edit that lets a promotion's `pulumi up` raise the count with the minimum.

A standby's pools idle at their standby minimums, and the program ignores the count the autoscaler
owns (pitfalls 1-3: `scalingConfig.desiredSize` on EKS, `count` on AKS), so Pulumi sends the count
from the stack's state with every update. A promotion raises the minimums; where the cloud's API
requires the count to lie within [minimum, maximum], that update is refused:

- EKS (UpdateNodegroupConfig, NodegroupScalingConfig): minSize <= desiredSize <= maxSize; the
  error reads "Minimum capacity N can't be greater than desired size M".
- AKS (agent pool PUT with enableAutoScaling): minCount <= count <= maxCount; the resource
  provider answers "agentPoolProfile.count was N. It must be greater or equal to minCount:M and
  less than or equal to maxCount:X" (quoted in kubernetes-sigs/cluster-api-provider-azure#5947).
- GKE (NodePoolAutoscaling): minNodeCount <= maxNodeCount only; the count is not part of the
  rule (raising the minimum does not scale the pool by itself, pitfall 6: the pending pods of the
  promoted tiers do), so nothing is raised there.

Pulumi keeps an ignored property at the value of the state's old inputs; raising that value in
the state (after a refresh has read the autoscaler's count into it) to the new minimum makes the
promotion's update send minimum and count together. Only counts below the new minimum are
touched: a pool the autoscaler already runs above it keeps its count. Plain data, no Pulumi import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PoolFields:
    """Dotted input paths of a pool resource's minimum, autoscaler-owned count and maximum."""

    minimum: str
    count: str
    maximum: str


# Pool resources whose API refuses a count outside [minimum, maximum] (the module's docstring).
POOLS: dict[str, PoolFields] = {
    "aws:eks/nodeGroup:NodeGroup": PoolFields("scalingConfig.minSize", "scalingConfig.desiredSize",
                                              "scalingConfig.maxSize"),
    "azure-native:containerservice:AgentPool": PoolFields("minCount", "count", "maxCount"),
}


@dataclass(frozen=True)
class Raise:
    urn: str
    path: str
    old: int
    new: int


def get_path(values: Mapping[str, Any] | None, path: str) -> Any:
    value: Any = values
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def set_path(values: MutableMapping[str, Any], path: str, new: Any) -> None:
    *parents, last = path.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = new


def pool_urns(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """The URNs of the state's pool resources whose count the cloud checks against the minimum."""
    return [str(r["urn"]) for r in resources if r.get("type") in POOLS and r.get("urn")]


def counts_to_raise(current: Sequence[Mapping[str, Any]], planned: Sequence[Mapping[str, Any]]) -> list[Raise]:
    """For every pool of the state (`current`: resources with `urn`, `type`, `inputs`) whose planned
    minimum (`planned`: the offline plan's resources) is above its count: the count to send instead."""
    state = {str(r.get("urn")): r for r in current}
    raises = []
    for resource in planned:
        fields = POOLS.get(str(resource.get("type")))
        old = state.get(str(resource.get("urn")))
        if fields is None or old is None:
            continue  # a pool the update creates is created within its bounds
        minimum = get_path(resource.get("inputs"), fields.minimum)
        maximum = get_path(resource.get("inputs"), fields.maximum)
        count = get_path(old.get("inputs"), fields.count)
        if not all(isinstance(v, int) for v in (minimum, maximum, count)):
            continue
        if count < minimum:
            raises.append(Raise(str(resource["urn"]), fields.count, count, min(minimum, maximum)))
    return raises


def apply_raises(resources: Sequence[MutableMapping[str, Any]], raises: Sequence[Raise]) -> None:
    """Edit the state's resources in place: each raised count in the old inputs, what Pulumi sends
    for an ignored property (the outputs stay as the cloud reported them)."""
    by_urn = {str(r.get("urn")): r for r in resources}
    for item in raises:
        set_path(by_urn[item.urn].setdefault("inputs", {}), item.path, item.new)
