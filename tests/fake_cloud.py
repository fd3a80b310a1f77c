"""A fake of the three clouds' node pool APIs for the failover drill: every pool state a `pulumi up`
sends is checked against the cloud's documented rule, and between updates the autoscaler idles
each pool at its minimum (a standby's pools sit there; a primary's may, at night).

Each rule, with its source (written from the vendors' documents, not from the program's code):

- EKS, `aws:eks/nodeGroup:NodeGroup`: minSize <= desiredSize <= maxSize, minSize >= 0, maxSize >= 1.
  Amazon EKS API Reference, NodegroupScalingConfig and UpdateNodegroupConfig; refused with
  InvalidParameterException "Minimum capacity N can't be greater than desired size M".
- AKS, `azure-native:containerservice:AgentPool` with enableAutoScaling: minCount <= count <=
  maxCount. The resource provider's answer, quoted in kubernetes-sigs/cluster-api-provider-azure
  #5947: "agentPoolProfile.count was 0. It must be greater or equal to minCount:1 and less than or
  equal to maxCount:1000".
- GKE, `gcp:container/nodePool:NodePool`: autoscaling minNodeCount >= 0 and <= maxNodeCount
  (Kubernetes Engine API, NodePoolAutoscaling: "Must be >= 0 and <= max_node_count"); the node
  count is not part of the rule.

Pulumi's side, emulated as the engine does it: on an update, a property in the resource's
ignoreChanges keeps the value of the state's old inputs; a refresh reads the cloud's values back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

EKS, AKS, GKE = "aws:eks/nodeGroup:NodeGroup", "azure-native:containerservice:AgentPool", "gcp:container/nodePool:NodePool"


class CloudRefused(RuntimeError):
    """The cloud's API refused an update of a pool."""


def _get(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, dict) else None  # type: ignore[assignment]
    return values


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value


def _eks(inputs: dict[str, Any]) -> str | None:
    low, want, high = (_get(inputs, f"scalingConfig.{k}") for k in ("minSize", "desiredSize", "maxSize"))
    if low > want:
        return f"InvalidParameterException: Minimum capacity {low} can't be greater than desired size {want}"
    if want > high:
        return f"InvalidParameterException: Desired capacity {want} can't be greater than max size {high}"
    return None


def _aks(inputs: dict[str, Any]) -> str | None:
    if not inputs.get("enableAutoScaling"):
        return None
    low, count, high = inputs["minCount"], inputs["count"], inputs["maxCount"]
    if not low <= count <= high:
        return (f"InvalidParameter: agentPoolProfile.count was {count}. It must be greater or equal to "
                f"minCount:{low} and less than or equal to maxCount:{high}")
    return None


def _gke(inputs: dict[str, Any]) -> str | None:
    auto = inputs.get("autoscaling") or {}
    low, high = auto.get("minNodeCount", 0), auto.get("maxNodeCount", 0)
    if not 0 <= low <= high:
        return f"INVALID_ARGUMENT: minNodeCount {low} must be >= 0 and <= maxNodeCount {high}"
    return None


# type -> (rule, the count the autoscaler owns, where its minimum is)
RULES: dict[str, tuple[Callable[[dict[str, Any]], str | None], str, str]] = {
    EKS: (_eks, "scalingConfig.desiredSize", "scalingConfig.minSize"),
    AKS: (_aks, "count", "minCount"),
    GKE: (_gke, "nodeCount", "autoscaling.minNodeCount"),
}


@dataclass
class FakeCloud:
    # urn -> the state's inputs (after a refresh, also the cloud's values)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    # every update the cloud accepted: (stack, urn, minimum, count)
    accepted: list[tuple[str, str, Any, Any]] = field(default_factory=list)

    def up(self, stack: str, resources: Sequence[dict[str, Any]]) -> None:
        """One `pulumi up` of the stack's pools: create or update each, as Pulumi sends it."""
        for resource in resources:
            if resource["type"] not in RULES:
                continue
            rule, count_path, min_path = RULES[resource["type"]]
            request = copy.deepcopy(resource["inputs"])
            old = self.pools.get(resource["urn"])
            if old is not None:
                for path in resource["options"]["ignoreChanges"]:
                    kept = _get(old, path)
                    if kept is not None:
                        _set(request, path, kept)
            error = rule(request)
            if error:
                raise CloudRefused(f"{resource['name']}: {error}")
            self.pools[resource["urn"]] = request
            self.accepted.append((stack, resource["urn"], _get(request, min_path), _get(request, count_path)))

    def idle(self) -> None:
        """The autoscaler, with nothing to run: every pool down to its minimum (and the state's
        next refresh reads that count)."""
        for inputs in self.pools.values():
            for _rule, count_path, min_path in RULES.values():
                if _get(inputs, min_path) is not None and _get(inputs, count_path) is not None:
                    _set(inputs, count_path, _get(inputs, min_path))
                    break

    def state(self) -> list[dict[str, Any]]:
        """The pools as a refreshed Pulumi state lists them."""
        return [{"urn": urn, "type": next(t for t in RULES if urn.split("::")[-2].endswith(t)),
                 "inputs": copy.deepcopy(inputs)} for urn, inputs in self.pools.items()]

    def edit_state(self, urn: str, path: str, value: Any) -> None:
        _set(self.pools[urn], path, value)
