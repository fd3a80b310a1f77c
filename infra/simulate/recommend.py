"""`simulate --recommend`: per tier over target, the schedule window or the capacity buffer that
brings its seconds over target to 0 at the least added monthly cost. Pure: no Pulumi.

Two kinds of fix, each simulated with everything else unchanged, and the cheaper that reaches 0 is
proposed with its added cost (nodes a month, `simulate`'s pricing), the other kind's best beside it:

- a schedule window (im-platform:services.<tier>.scaling.schedule) over the tier's over-target span,
  started 0, 5, 10 or 15 minutes earlier (a pod needs readySeconds, a node its start-up), on the
  quarter hour, at the replicas its highest load in the window needs (ceil(load / targetPerPod),
  at most replicas.max). It lifts the HPA's floor: what a tier behind a rising load needs, since
  the HPA's 10% tolerance lets load per pod sit above target until it acts.
- a capacity buffer (im-platform:capacityBuffer.<pool>): placeholder pods the size of the tier's
  pod (or of the pool's buffer where it has one), the fewest that reach 0, found by doubling then
  halving. It hides the node start-up: what a tier whose new pods wait for nodes needs; it is tried
  only where every over-target step had pods not yet ready (else the HPA, not the nodes, held it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from components.spec import ClusterSpec
from infra.simulate import engine
from infra.simulate.pricing import cost_of

LEADS_MINUTES = (0, 5, 10, 15)
MAX_BUFFER_PODS = 64  # beyond this a buffer is a fleet, not a buffer


def _span(over: Sequence[bool]) -> tuple[int, int]:
    """The over-target steps' span (seconds), wrapping midnight where the longest gap says so."""
    idx = [i for i, o in enumerate(over) if o]
    n = len(over)
    gaps = [((idx[(k + 1) % len(idx)] - idx[k]) % n, k) for k in range(len(idx))]
    _, k = max(gaps)
    start, end = idx[(k + 1) % len(idx)], idx[k] + 1
    return start * engine.STEP, end * engine.STEP


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def cpu_text(cores: float) -> str:
    """A CPU quantity as Kubernetes writes it: whole cores, else millicores."""
    milli = math.ceil(cores * 1000 - 1e-6)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_text(gib: float) -> str:
    mib = math.ceil(gib * 1024 - 1e-6)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _window(spec: ClusterSpec, i: int, tiers: Sequence[engine.Tier], pools: Sequence[engine.Pool],
            result: engine.Result, added: Callable[[engine.Result], Decimal], curve: Sequence[float]
            ) -> tuple[Decimal, dict[str, Any]] | None:
    r, tier = result.tiers[i], result.tiers[i].tier
    start, end = _span([x > tier.target for x in r.load_per_ready])
    best: tuple[Decimal, dict[str, Any]] | None = None
    for lead in LEADS_MINUTES:
        a = (start - lead * 60) // 900 * 900 % engine.DAY  # on a quarter hour
        b = -(-end // 900) * 900 % engine.DAY
        window = engine.Window.between(a, b, 1)
        peak = max((load for k, load in enumerate(r.load) if window.active(k * engine.STEP)), default=0.0)
        replicas = min(max(math.ceil(peak / tier.target - 1e-9), tier.min_replicas), tier.max_replicas)
        window = dataclasses.replace(window, replicas=replicas)
        trial = [dataclasses.replace(t, windows=t.windows + (window,)) if k == i else t for k, t in enumerate(tiers)]
        out = engine.simulate(trial, pools, curve)
        if out.tiers[i].seconds_over_target:
            continue
        cost = added(out)
        row = {"start": _clock(a), "end": _clock(b), "replicas": replicas, "timezone": spec.cost.timezone}
        if best is None or cost < best[0]:
            best = (cost, row)
    return best


def _waiting(r: engine.TierResult) -> bool:
    """Whether every over-target step had pods not yet ready (created, waiting for room or starting)."""
    return all(r.ready[s] < r.replicas[s] for s, x in enumerate(r.load_per_ready) if x > r.tier.target)


def _buffer(spec: ClusterSpec, i: int, tiers: Sequence[engine.Tier], pools: Sequence[engine.Pool],
            result: engine.Result, added: Callable[[engine.Result], Decimal], curve: Sequence[float]
            ) -> tuple[Decimal, dict[str, Any]] | None:
    r, tier = result.tiers[i], result.tiers[i].tier
    k = next((n for n, p in enumerate(pools) if p.name == tier.pool), None)
    # Placeholders only make room sooner: where the tier ran over target with every pod ready, the
    # HPA (not the nodes) held it back, and no buffer reaches 0.
    if k is None or not _waiting(r):
        return None
    pool = pools[k]
    cpu, mem = (pool.buffer_cpu, pool.buffer_memory) if pool.buffer_pods else (tier.pod_cpu, tier.pod_memory)
    if cpu > pool.node_cpu or mem > pool.node_memory:
        return None
    outcomes: dict[int, engine.Result] = {}

    def reaches(extra: int) -> bool:
        trial = list(pools)
        trial[k] = dataclasses.replace(pool, buffer_pods=pool.buffer_pods + extra, buffer_cpu=cpu, buffer_memory=mem)
        outcomes[extra] = engine.simulate(tiers, trial, curve)
        return not outcomes[extra].tiers[i].seconds_over_target

    # Doubling, then halving between the last miss and the first hit: the fewest placeholders.
    low, high = 0, 1
    while not reaches(high):
        low, high = high, high * 2
        if high > MAX_BUFFER_PODS:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid
    row = {"pool": tier.pool, "pods": pool.buffer_pods + high, "cpu": cpu_text(cpu), "memory": memory_text(mem)}
    return added(outcomes[high]), row


def recommend(spec: ClusterSpec, tiers: Sequence[engine.Tier], pools: Sequence[engine.Pool],
              result: engine.Result) -> list[dict[str, Any]]:
    base = cost_of(spec, result)
    curve = [float(x) for x in spec.cost.curve]

    def added(out: engine.Result) -> Decimal:
        cost = cost_of(spec, out)
        return (Decimal(cost["month"]) - Decimal(base["month"])) if cost and base else Decimal(0)

    found: list[dict[str, Any]] = []
    for i, r in enumerate(result.tiers):
        if not r.seconds_over_target:
            continue
        tier = r.tier
        options: list[tuple[Decimal, str, dict[str, Any]]] = []
        if tier.metric != "cpu":
            w = _window(spec, i, tiers, pools, result, added, curve)
            if w:
                options.append((w[0], "window", w[1]))
        b = _buffer(spec, i, tiers, pools, result, added, curve)
        if b:
            options.append((b[0], "buffer", b[1]))
        if not options:
            window = ("a schedule window needs a scaling block (scaling.schedule)" if tier.metric == "cpu"
                      else "no single window over its over-target span reaches 0 (is replicas.max too low for its peak?)")
            buffer = (f"no capacity buffer of up to {MAX_BUFFER_PODS} pods does" if _waiting(r)
                      else "a capacity buffer cannot: it ran over target with every pod ready (the HPA held it back, "
                           "not the nodes)")
            why = f"{window}; {buffer}"
            found.append({"tier": tier.name, "secondsOverTarget": r.seconds_over_target, "reason": why})
            continue
        options.sort(key=lambda o: (o[0], o[1] != "window"))
        cost, kind, row = options[0]
        found.append({"tier": tier.name, "secondsOverTarget": r.seconds_over_target, "choice": kind, kind: row,
                      "monthlyCost": str(cost.quantize(Decimal("0.01"))),
                      "alternatives": [{"choice": k, k: other, "monthlyCost": str(c.quantize(Decimal("0.01")))}
                                       for c, k, other in options[1:]]})
    return found
