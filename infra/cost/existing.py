"""`cost` of a kubernetes stack (an existing cluster): nothing the program declares has a price.

The nodes, control plane and load balancers are the cluster's own, neither created nor sized by the
program, so there is no catalog to apply: every total is 0.00 and `notPriced` says why, item by
item. What the stack does know is what its workloads ask of the cluster: each tier's and capacity
buffer's requests (native sidecars included) at its fewest and most replicas, read from the plan.
The JSON keeps the cost contract's fields (pools and fixed are empty), so `--base` and the CI's
cost table read it like any other. Pure: no Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from components.spec import KUBERNETES, ClusterSpec
from infra.config.errors import ConfigError
from infra.cost import rightsize

ZERO_TOTALS = {"min": "0.00", "modeled": "0.00", "max": "0.00", "savingPercent": "0.0", "fixedCapacity": "0.00",
               "savingVsFixedCapacityPercent": "0.0"}
NOT_PRICED_NODES = ("the existing cluster's own (im-platform:cloud kubernetes): the program neither creates nor sizes "
                    "them, so no node price applies")


def not_priced(spec: ClusterSpec) -> list[dict[str, str]]:
    """Every charge the stack's cluster incurs, none of it the program's to price."""
    pools = ", ".join(p.name for p in spec.node_pools)
    items = [{"name": "nodes", "reason": NOT_PRICED_NODES + (f"; pools named: {pools}" if pools else "")},
             {"name": "control plane", "reason": "the existing cluster's own, not declared by this stack"}]
    if any(s.public for s in spec.services):
        items.append({"name": "load balancers", "reason": "the public tiers' LoadBalancer Services are served by the "
                                                          "cluster's own load balancer implementation"})
    return items


def _selects(pod: Mapping[str, Any], spec: ClusterSpec) -> str | None:
    """The pool whose labels the pod selects; None: any node."""
    selector = pod.get("nodeSelector") or {}
    return next((p.name for p in spec.node_pools if selector and p.node_selector == selector), None)


def requests(spec: ClusterSpec, resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per Deployment: its pool, replicas (HPA min..max, or the fixed count) and one pod's requests;
    and the sums at the fewest and the most replicas."""
    bounds = rightsize.autoscaler_bounds(resources)
    rows = []
    total = {"min": [Decimal(0), Decimal(0)], "max": [Decimal(0), Decimal(0)]}
    for r in resources:
        if r.get("type") != rightsize.DEPLOYMENT:
            continue
        inputs = r.get("inputs") or {}
        meta, deployment = inputs.get("metadata") or {}, inputs.get("spec") or {}
        pod = (deployment.get("template") or {}).get("spec") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        fixed = int(deployment.get("replicas") or 1)
        low, high = bounds.get(key, (fixed, fixed))
        cpu, memory = rightsize.pod_requests(pod)
        for which, count in (("min", low), ("max", high)):
            total[which][0] += cpu * count
            total[which][1] += memory * count
        rows.append({"name": f"{key[0]}/{key[1]}", "pool": _selects(pod, spec), "replicas": {"min": low, "max": high},
                     "cpu": _text(cpu), "memoryGiB": _text(memory)})
    return {"workloads": sorted(rows, key=lambda w: w["name"]),
            **{which: {"cpu": _text(c), "memoryGiB": _text(m)} for which, (c, m) in total.items()}}


def _text(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def to_json(spec: ClusterSpec, resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "stack": spec.stack, "cloud": spec.cloud, "region": spec.region, "currency": "USD",
        # No catalog is read: nothing here has a price.
        "catalog": {"as_of": None, "sources": []},
        "priced": False,
        "pools": [], "fixed": [], "totals": dict(ZERO_TOTALS),
        "notPriced": not_priced(spec),
        "requests": requests(spec, resources),
        "rightSizing": [],
    }


def render(doc: Mapping[str, Any]) -> str:
    """The text of an existing cluster's cost: not priced, why, and what its workloads request."""
    lines = [f"Stack {doc['stack']}: an existing Kubernetes cluster (im-platform:cloud kubernetes), not priced:",
             "  its nodes, control plane and load balancers are the cluster's own, not declared by this stack,",
             "  so no node price applies and every total is 0.00.", ""]
    req = doc["requests"]
    if req["workloads"]:
        lines.append("What its workloads request of the cluster (per pod, and in all at the fewest and most replicas):")
        header = ("workload", "pool", "replicas", "CPU", "memory GiB")
        rows = [header] + [(w["name"], w["pool"] or "any", f"{w['replicas']['min']}..{w['replicas']['max']}", w["cpu"],
                            w["memoryGiB"]) for w in req["workloads"]]
        rows += [("in all, at min", "", "", req["min"]["cpu"], req["min"]["memoryGiB"]),
                 ("in all, at max", "", "", req["max"]["cpu"], req["max"]["memoryGiB"])]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("  " + "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
        lines.append("")
    t = doc["totals"]
    lines.append(f"Total: min {t['min']}  modeled {t['modeled']}  max {t['max']}  fixed capacity {t['fixedCapacity']}")
    if "change" in doc:
        total = doc["change"]["totals"]
        lines.append("Change against base: " + "; ".join(f"{k} {total[k]['base']} -> {total[k]['current']}"
                                                         for k in ("min", "modeled", "max")))
    lines.append("")
    lines.append("Not priced: " + "; ".join(f"{n['name']} ({n['reason']})" for n in doc["notPriced"]))
    return "\n".join(lines)


def plan_base(plan: Mapping[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """A `plan --json` base of this existing cluster's stack, as the zero figure it costs."""
    kinds = {r.get("type") for r in plan.get("resources") or []}
    if "im-platform:kubernetes:ExistingCluster" not in kinds:
        raise ConfigError("--base", f"plan of {plan.get('stack')}", f"expected a plan of {spec.stack}, a {KUBERNETES} "
                                                                    "stack, not of another stack or cloud")
    return {"stack": plan.get("stack") or spec.stack, "cloud": spec.cloud, "pools": [], "fixed": [],
            "totals": {k: v for k, v in ZERO_TOTALS.items() if k in ("min", "modeled", "max")}}
