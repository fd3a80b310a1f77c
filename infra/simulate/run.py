"""One simulation per spec and cloud, shared by `simulate` and `cost` (its `modeled`). Pure.

The same tiers and pools are simulated once: `cost --compare` prices another cloud from the day
already simulated where that cloud's nodes offer the same room and its autoscaler the same delays."""

from __future__ import annotations

import functools

from components.spec import ClusterSpec
from infra.simulate import engine, inputs


@functools.lru_cache(maxsize=32)
def _simulate(tiers: tuple[engine.Tier, ...], pools: tuple[engine.Pool, ...],
              curve: tuple[float, ...]) -> engine.Result:
    return engine.simulate(tiers, pools, curve)


@functools.lru_cache(maxsize=32)
def simulated(spec: ClusterSpec, cloud: str) -> engine.Result:
    tiers, pools = inputs.tiers_and_pools(spec, cloud=cloud)
    return _simulate(tuple(tiers), tuple(pools), tuple(inputs.curve(spec)))


def pool_steps(spec: ClusterSpec, cloud: str) -> dict[str, tuple[int, ...]]:
    return {r.pool.name: tuple(r.nodes) for r in simulated(spec, cloud).pools}
