"""`venv/bin/im-platform simulate`: the stack's day replayed through its scaling policy.

    venv/bin/im-platform simulate --stack NAME [--config-file FILE] [--json] [--chart FILE.png|.svg]
                                 [--recommend]

Reads the validated spec (no plan: nothing is declared), simulates the day (infra.simulate.engine)
and prices the simulated pools' node-hours from the stack's catalog. Exit 0; 2 on a configuration
error (a traffic stack has nothing to simulate); 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.spec import ClusterSpec
from infra.config.errors import ConfigError
from infra.simulate import engine, inputs
from infra.simulate.pricing import cost_of

CHART_SUFFIXES = (".png", ".svg")


def load(stack: str | None, config_file: Path | None) -> ClusterSpec:
    from infra.config.loader import load_spec
    from infra.config.stackfiles import searching_beside
    from infra.offline.plan import project_name, read_stack_config, stack_file, stack_name_from_file
    from infra.traffic.config import is_traffic

    if not stack and not config_file:
        raise ConfigError("--stack", None, "expected a stack name (stacks/Pulumi.<NAME>.yaml) or --config-file")
    path = config_file or stack_file(stack or "")
    project = project_name()
    values, _ = read_stack_config(path, project)
    name = stack or stack_name_from_file(path) or ""
    if is_traffic(values):
        raise ConfigError("--stack", name, "a traffic stack (no cluster, no tiers): there is nothing to simulate; "
                                           "simulate the stacks of its pair")
    with searching_beside(config_file):
        return load_spec(values, project=project, stack=name)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 2)


def to_json(spec: ClusterSpec, result: engine.Result, *, series: bool = True) -> dict[str, Any]:
    t = [i * engine.STEP for i in range(engine.STEPS)]
    tiers = []
    for r in result.tiers:
        row: dict[str, Any] = {
            "name": r.tier.name, "pool": r.tier.pool, "metric": r.tier.metric, "targetPerPod": _num(r.tier.target),
            "peakLoad": _num(r.tier.peak), "replicas": {"min": min(r.replicas), "peak": max(r.replicas)},
            "maxLoadPerReadyPod": round(r.max_load_per_ready, 2) if r.max_load_per_ready != float("inf") else None,
            "secondsOverTarget": r.seconds_over_target,
            "windows": [{"start": _clock(w.start), "end": _clock(w.end), "replicas": w.replicas} for w in r.tier.windows]}
        if series:
            row["series"] = {"t": t, "load": [_num(x) for x in r.load], "replicas": r.replicas, "ready": r.ready}
        tiers.append(row)
    pools = []
    for p in result.pools:
        row = {"name": p.pool.name, "nodes": {"min": min(p.nodes), "peak": max(p.nodes)},
               "nodeHours": round(p.node_hours, 2)}
        if series:
            row["series"] = {"t": t, "nodes": p.nodes}
        pools.append(row)
    doc: dict[str, Any] = {"stack": spec.stack, "stepSeconds": engine.STEP, "timezone": spec.cost.timezone,
                           "tiers": tiers, "pools": pools}
    cost = cost_of(spec, result)
    if cost is not None:
        doc["cost"] = cost
    if spec.dr is not None and spec.dr.is_standby:
        doc["standby"] = True
    return doc


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def render(doc: Mapping[str, Any]) -> str:
    lines = [f"Stack {doc['stack']}: the day simulated at {doc['stepSeconds']} s steps ({doc['timezone']})"
             + (", as the DR standby (no load, its floors)" if doc.get("standby") else "")]
    lines.append("")
    lines.append("Tiers (load per ready pod against targetPerPod):")
    for t in doc["tiers"]:
        per = t["maxLoadPerReadyPod"]
        lines.append(f"  {t['name']:<12} {t['metric']} peak {t['peakLoad']:,}  replicas {t['replicas']['min']}..{t['replicas']['peak']}  "
                     f"max per ready pod {'no ready pod' if per is None else f'{per:,}'} (target {t['targetPerPod']:,})  "
                     f"over target {t['secondsOverTarget']:,} s")
    lines.append("")
    lines.append("Pools:")
    for p in doc["pools"]:
        lines.append(f"  {p['name']:<12} nodes {p['nodes']['min']}..{p['nodes']['peak']}  {p['nodeHours']:,} node-hours a day")
    if "cost" in doc:
        c = doc["cost"]
        lines.append("")
        lines.append(f"Nodes: {c['day']} a day, {c['month']} a month (730 hours); fixed capacity {c['fixedCapacity']}: "
                     f"saving {c['savingVsFixedCapacityPercent']}% (USD; fees are in `cost`)")
    if "recommendations" in doc:
        lines.append("")
        lines.append("Recommended (per tier over target: the cheaper fix that brings its seconds over target to 0):")
        if not doc["recommendations"]:
            lines.append("  nothing: no tier runs over its target")
    for r in doc.get("recommendations") or []:
        if "choice" in r:
            alt = "; ".join(f"{_fix(a)} +{a['monthlyCost']}" for a in r["alternatives"])
            lines.append(f"  {r['tier']}: {_fix(r)} (+{r['monthlyCost']} a month)" + (f"; rather than {alt}" if alt else ""))
        else:
            lines.append(f"  {r['tier']}: {r['reason']}")
    return "\n".join(lines)


def _fix(r: Mapping[str, Any]) -> str:
    if r["choice"] == "window":
        w = r["window"]
        return f"a schedule window {w['start']}-{w['end']} ({w['timezone']}) at {w['replicas']} replicas"
    b = r["buffer"]
    return f"a capacity buffer of {b['pods']} pods x {b['cpu']} CPU, {b['memory']} on pool {b['pool']}"


def draw(doc: Mapping[str, Any], path: Path) -> None:
    """Load, replicas and nodes over the day: a panel per tier and per pool (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(doc["tiers"]) + len(doc["pools"])
    fig, axes = plt.subplots(max(panels, 1), 1, figsize=(9, 2.2 * max(panels, 1)), sharex=True, squeeze=False)
    k = 0
    for t in doc["tiers"]:
        ax = axes[k][0]
        hours = [x / 3600 for x in t["series"]["t"]]
        need = [x / t["targetPerPod"] for x in t["series"]["load"]]
        ax.plot(hours, need, label="load / targetPerPod", color="tab:gray")
        ax.plot(hours, t["series"]["replicas"], label="replicas", color="tab:blue")
        ax.plot(hours, t["series"]["ready"], label="ready", color="tab:green", linestyle="--")
        ax.set_title(f"{t['name']}: {t['secondsOverTarget']} s over target", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        k += 1
    for p in doc["pools"]:
        ax = axes[k][0]
        ax.step([x / 3600 for x in p["series"]["t"]], p["series"]["nodes"], where="post", color="tab:orange")
        ax.set_title(f"pool {p['name']}: nodes", fontsize=9)
        k += 1
    axes[-1][0].set_xlabel(f"hour of the day ({doc['timezone']})")
    fig.suptitle(f"{doc['stack']}: the simulated day", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format=path.suffix.lstrip("."))
    plt.close(fig)


def simulate_stack(stack: str | None, config_file: Path | None, *, recommend: bool = False) -> dict[str, Any]:
    spec = load(stack, config_file)
    from infra.simulate.run import simulated

    tiers, pools = inputs.tiers_and_pools(spec)
    result = simulated(spec, spec.cloud)
    doc = to_json(spec, result)
    if recommend:
        from infra.simulate.recommend import recommend as propose

        doc["recommendations"] = propose(spec, tiers, pools, result)
    return doc


def cmd_simulate(args: argparse.Namespace) -> int:
    chart = Path(args.chart) if args.chart else None
    if chart is not None and chart.suffix.lower() not in CHART_SUFFIXES:
        raise ConfigError("--chart", args.chart, "expected a file name ending in .png or .svg")
    doc = simulate_stack(args.stack, Path(args.config_file) if args.config_file else None, recommend=args.recommend)
    if chart is not None:
        draw(doc, chart)
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(render(doc))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("simulate", help="the stack's day replayed through its scaling policy and the node autoscaler")
    p.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    p.add_argument("--config-file", help="read this stack file instead")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--chart", help="draw load, replicas and nodes over the day into FILE.png or FILE.svg")
    p.add_argument("--recommend", action="store_true",
                   help="per tier over target: the schedule window or capacity buffer that brings it to 0 at the least cost")
    p.set_defaults(func=cmd_simulate)


__all__: Sequence[str] = ("simulate_stack", "register")
