"""`simulate --recommend`: per tier over target, the schedule window that brings its seconds over
target to 0 at the least added monthly cost. Pure: no Pulumi.

Candidates: one window over the tier's over-target span, started 0, 5, 10 or 15 minutes earlier (a
pod needs readySeconds, a node its start-up), at the replicas its highest load in the window needs
(ceil(load / targetPerPod), at most replicas.max). Each is simulated with the tier's other
triggers unchanged; the cheapest that reaches 0 is proposed, with its added cost (nodes a month).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from components.spec import ClusterSpec
from infra.simulate import engine
from infra.simulate.pricing import cost_of

LEADS_MINUTES = (0, 5, 10, 15)


def _span(over: Sequence[bool]) -> tuple[int, int]:
    """The over-target steps' span (seconds), wrapping midnight where the longest gap says so."""
    idx = [i for i, o in enumerate(over) if o]
    n = len(over)
    gaps = [((idx[(k + 1) % len(idx)] - idx[k]) % n, k) for k in range(len(idx))]
    _, k = max(gaps)
    start, end = idx[(k + 1) % len(idx)], idx[k] + 1
    return start * engine.STEP, end * engine.STEP


def recommend(spec: ClusterSpec, tiers: Sequence[engine.Tier], pools: Sequence[engine.Pool],
              result: engine.Result) -> list[dict[str, Any]]:
    base = cost_of(spec, result)
    curve = [float(x) for x in spec.cost.curve]
    found = []
    for i, r in enumerate(result.tiers):
        if not r.seconds_over_target:
            continue
        tier = r.tier
        if tier.metric == "cpu":
            found.append({"tier": tier.name, "reason": "a schedule window needs a scaling block (scaling.schedule); "
                                                       "none is proposed for a tier on CPU alone"})
            continue
        over = [x > tier.target for x in r.load_per_ready]
        start, end = _span(over)
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
            cost = cost_of(spec, out)
            added = Decimal(cost["month"]) - Decimal(base["month"]) if cost and base else Decimal(0)
            row = {"tier": tier.name, "window": {"start": f"{a // 3600:02d}:{a % 3600 // 60:02d}",
                                                 "end": f"{b // 3600:02d}:{b % 3600 // 60:02d}", "replicas": replicas,
                                                 "timezone": spec.cost.timezone},
                   "monthlyCost": str(added.quantize(Decimal("0.01")))}
            if best is None or added < best[0]:
                best = (added, row)
        found.append(best[1] if best else {"tier": tier.name, "reason": "no single window over its span reaches 0 "
                                                                       "(replicas.max is too low for its peak)"})
    return found
