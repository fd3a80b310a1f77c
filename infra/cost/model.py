"""The cost model: monthly min, modeled and max of a stack, in `Decimal` throughout. Pure: no Pulumi.

- A month is 730 hours (Infracost's month). The modeled day is 24 hours of the load curve; a month
  of such days costs day x 730 / 24.
- A pool's node count at hour h is clamp(ceil(maxNodes x curve[h]), minNodes, maxNodes). On every
  step down (hour h below hour h-1; the day wraps, so hour 0 follows hour 23) the first 10 minutes
  of hour h still run hour h-1's count: the cluster autoscaler's scale-down delay.
- `min` is every pool at minNodes all month, `max` every pool at maxNodes all month (what the peak
  costs without autoscaling, and what `maxMonthlyCost` holds); fixed fees count in all three.
- A spot pool's node price is the mean of its instance types' spot prices.
- savingPercent = 100 x (max - modeled) / max, to one decimal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

HOURS_PER_MONTH = Decimal(730)
HOURS_PER_DAY = 24
SCALE_DOWN_DELAY_MINUTES = 10
CENT = Decimal("0.01")


class Prices(Protocol):
    """What the model needs of a catalog region (infra.cost.catalog.RegionPrices)."""

    def node_price(self, instance_type: str, spot: bool) -> Decimal: ...
    def fee(self, key: str) -> Decimal: ...
    def control_plane_hourly(self, tier: str) -> Decimal: ...


@dataclass(frozen=True)
class PoolCost:
    name: str
    instance_types: tuple[str, ...]
    spot: bool
    min_nodes: int
    max_nodes: int
    node_hourly: Decimal
    at_min: Decimal
    modeled: Decimal
    at_max: Decimal


@dataclass(frozen=True)
class FixedFee:
    name: str
    quantity: Decimal
    unit: str
    price: Decimal

    @property
    def monthly(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True)
class FixedCounts:
    """How many of each fixed-fee resource the stack declares (counted from its plan)."""

    clusters: int = 0
    control_plane_tier: str = "standard"
    nat_gateways: int = 0
    load_balancers: int = 0
    kms_keys: int = 0
    health_checks: int = 0


@dataclass(frozen=True)
class Estimate:
    pools: tuple[PoolCost, ...]
    fixed: tuple[FixedFee, ...]

    @property
    def fixed_monthly(self) -> Decimal:
        return sum((f.monthly for f in self.fixed), Decimal(0))

    @property
    def min(self) -> Decimal:
        return sum((p.at_min for p in self.pools), Decimal(0)) + self.fixed_monthly

    @property
    def modeled(self) -> Decimal:
        return sum((p.modeled for p in self.pools), Decimal(0)) + self.fixed_monthly

    @property
    def max(self) -> Decimal:
        return sum((p.at_max for p in self.pools), Decimal(0)) + self.fixed_monthly

    @property
    def saving_percent(self) -> Decimal:
        if not self.max:
            return Decimal(0)
        return (100 * (self.max - self.modeled) / self.max).quantize(Decimal("0.1"), ROUND_HALF_UP)


def hourly_nodes(min_nodes: int, max_nodes: int, curve: Sequence[Decimal]) -> list[int]:
    """clamp(ceil(maxNodes x load), minNodes, maxNodes) for each hour of the day."""
    return [min(max(math.ceil(max_nodes * load), min_nodes), max_nodes) for load in curve]


def day_node_minutes(counts: Sequence[int]) -> int:
    """Node-minutes of one day, each step down held SCALE_DOWN_DELAY_MINUTES longer (the day wraps).

    Whole minutes keep the arithmetic exact until the one division by the minutes of a month."""
    total = 0
    for h, n in enumerate(counts):
        before = counts[h - 1]  # counts[-1] is hour 23: yesterday's last hour
        total += 60 * n + (SCALE_DOWN_DELAY_MINUTES * (before - n) if before > n else 0)
    return total


def node_hourly(prices: Prices, instance_types: Sequence[str], spot: bool) -> Decimal:
    """One node's hourly price: the mean over a spot pool's types; the primary type on-demand."""
    if spot:
        return sum((prices.node_price(t, True) for t in instance_types), Decimal(0)) / len(instance_types)
    return prices.node_price(instance_types[0], False)


def pool_cost(name: str, instance_types: Sequence[str], spot: bool, min_nodes: int, max_nodes: int,
              curve: Sequence[Decimal], prices: Prices) -> PoolCost:
    price = node_hourly(prices, instance_types, spot)
    at_min, at_max = min_nodes * price * HOURS_PER_MONTH, max_nodes * price * HOURS_PER_MONTH
    # A month of modeled days: node-minutes a day x price x 730 / (24 x 60).
    exact = day_node_minutes(hourly_nodes(min_nodes, max_nodes, curve)) * price * HOURS_PER_MONTH / (HOURS_PER_DAY * 60)
    # Rounded to the cent, kept inside [at_min, at_max] where the exact figure lies (those two are exact).
    modeled = min(max(exact.quantize(CENT, ROUND_HALF_UP), at_min), at_max)
    return PoolCost(name=name, instance_types=tuple(instance_types), spot=spot, min_nodes=min_nodes,
                    max_nodes=max_nodes, node_hourly=price, at_min=at_min, modeled=modeled, at_max=at_max)


def fixed_fees(counts: FixedCounts, prices: Prices, egress_gib: Decimal) -> tuple[FixedFee, ...]:
    fees: list[FixedFee] = []
    if counts.clusters:
        fees.append(FixedFee(f"control plane ({counts.control_plane_tier})", counts.clusters * HOURS_PER_MONTH,
                             "hours", prices.control_plane_hourly(counts.control_plane_tier)))
    if counts.nat_gateways:
        fees.append(FixedFee("NAT gateway", counts.nat_gateways * HOURS_PER_MONTH, "hours",
                             prices.fee("natGatewayHourly")))
        fees.append(FixedFee("NAT data processed", egress_gib, "GB", prices.fee("natGatewayPerGiB")))
    if counts.load_balancers:
        fees.append(FixedFee("public load balancer", counts.load_balancers * HOURS_PER_MONTH, "hours",
                             prices.fee("loadBalancerHourly")))
    if counts.kms_keys:
        fees.append(FixedFee("KMS key", Decimal(counts.kms_keys), "months", prices.fee("kmsKeyMonthly")))
    if counts.health_checks:
        fees.append(FixedFee("health check", Decimal(counts.health_checks), "months", prices.fee("healthCheckMonthly")))
    return tuple(fees)


@dataclass(frozen=True)
class PoolInput:
    name: str
    instance_types: tuple[str, ...]
    spot: bool
    min_nodes: int
    max_nodes: int


def estimate(pools: Iterable[PoolInput], counts: FixedCounts, prices: Prices, curve: Sequence[Decimal],
             egress_gib: Decimal = Decimal(0)) -> Estimate:
    return Estimate(
        pools=tuple(pool_cost(p.name, p.instance_types, p.spot, p.min_nodes, p.max_nodes, curve, prices) for p in pools),
        fixed=fixed_fees(counts, prices, egress_gib),
    )


# -- fixed-fee resources, counted from the plan's (type, inputs) pairs --------------------------------

NAT_TYPES = ("aws:ec2/natGateway:NatGateway", "gcp:compute/routerNat:RouterNat", "azure-native:network:NatGateway")
KMS_TYPES = ("aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey", "azure-native:keyvault:Key")
HEALTH_CHECK_TYPES = ("aws:route53/healthCheck:HealthCheck",)
CLUSTER_TYPES = ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster",
                 "azure-native:containerservice:ManagedCluster")
LB_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "azure-native:network:LoadBalancer",
            "gcp:compute/forwardingRule:ForwardingRule")
K8S_SERVICE = "kubernetes:core/v1:Service"
# Annotations that make a LoadBalancer Service internal (no public load balancer is billed for it
# as one; its internal LB is outside this model).
_INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
}


def _public_lb(type_: str, props: Mapping[str, Any]) -> bool:
    if type_ == K8S_SERVICE:
        if (props.get("spec") or {}).get("type") != "LoadBalancer":
            return False
        annotations = (props.get("metadata") or {}).get("annotations") or {}
        return not any(annotations.get(k) == v for k, v in _INTERNAL.items())
    if type_ == "aws:lb/loadBalancer:LoadBalancer":
        return props.get("internal") is not True
    if type_ == "gcp:compute/forwardingRule:ForwardingRule":
        return str(props.get("loadBalancingScheme", "EXTERNAL")).startswith("EXTERNAL")
    return type_ in LB_TYPES


def count_fixed(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> FixedCounts:
    """The fixed-fee resources a plan (or the policy engine's resource list) really declares."""
    clusters = nat = lbs = keys = checks = 0
    tier = "standard"
    for type_, props in resources:
        if type_ in CLUSTER_TYPES:
            clusters += 1
            sku = props.get("sku") if type_ == CLUSTER_TYPES[2] else None
            if isinstance(sku, Mapping) and sku.get("tier"):
                tier = str(sku["tier"]).lower()
        nat += type_ in NAT_TYPES
        keys += type_ in KMS_TYPES
        checks += type_ in HEALTH_CHECK_TYPES
        lbs += (type_ == K8S_SERVICE or type_ in LB_TYPES) and _public_lb(type_, props)
    return FixedCounts(clusters=clusters, control_plane_tier=tier, nat_gateways=nat, load_balancers=lbs,
                       kms_keys=keys, health_checks=checks)


def money(amount: Decimal) -> str:
    """A decimal string with at least two places; exact (never rounded away) below the cent."""
    text = format(amount.normalize(), "f")
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"
