"""One simulation per spec and cloud, shared by `simulate` and `cost` (its `modeled`). Pure."""

from __future__ import annotations

import functools

from components.spec import ClusterSpec
from infra.simulate import engine, inputs


@functools.lru_cache(maxsize=32)
def simulated(spec: ClusterSpec, cloud: str) -> engine.Result:
    tiers, pools = inputs.tiers_and_pools(spec, cloud=cloud)
    return engine.simulate(tiers, pools, inputs.curve(spec))


def pool_steps(spec: ClusterSpec, cloud: str) -> dict[str, tuple[int, ...]]:
    return {r.pool.name: tuple(r.nodes) for r in simulated(spec, cloud).pools}
