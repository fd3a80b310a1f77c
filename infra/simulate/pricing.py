"""The simulated day's nodes priced from the stack's catalog (infra.cost). Pure: no Pulumi."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from components.spec import KUBERNETES, ClusterSpec
from infra.simulate import engine

HOURS_PER_MONTH = Decimal(730)


def _money(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01"), ROUND_HALF_UP))


def cost_of(spec: ClusterSpec, result: engine.Result) -> dict[str, str] | None:
    """Nodes only (fees and commitments are `cost`'s): the simulated pools by their node-hours, the
    others by the curve model of infra.cost.model; fixed capacity every pool at maxNodes on demand."""
    if spec.cloud == KUBERNETES or not spec.node_pools:
        return None
    from infra.cost import catalog, model

    prices = catalog.region_prices(spec.cloud, spec.region, spec.cost.catalog)
    simulated = {r.pool.name: r for r in result.pools}
    day = fixed = Decimal(0)
    for p in spec.node_pools:
        price = model.node_hourly(prices, p.machine_types, p.spot)
        fixed += p.max_nodes * prices.node_price(p.machine_types[0], False) * HOURS_PER_MONTH
        if p.name in simulated:
            day += Decimal(sum(simulated[p.name].nodes) * engine.STEP) / 3600 * price
        else:
            minutes = model.day_node_minutes(model.hourly_nodes(p.min_nodes, p.max_nodes, spec.cost.curve))
            day += Decimal(minutes) / 60 * price
    month = day * HOURS_PER_MONTH / 24
    return {"day": _money(day), "month": _money(month), "fixedCapacity": _money(fixed),
            "savingVsFixedCapacityPercent": str(model.percent_below(fixed, month)), "basis": "nodes"}
