"""The cost model: monthly min, modeled and max of a stack, in `Decimal` throughout. Pure: no Pulumi.

- A month is 730 hours (Infracost's month). The modeled day is 24 hours of the load curve; a month
  of such days costs day x 730 / 24.
- A pool the simulated tiers run on (infra.simulate) is priced from the simulated day: its node
  count at every 15 s step, as the HPA and the node autoscaler would run it.
- Any other pool's node count at hour h is clamp(ceil(maxNodes x curve[h]), minNodes, maxNodes). On
  every step down (hour h below hour h-1; the day wraps, so hour 0 follows hour 23) the first 10
  minutes of hour h still run hour h-1's count: the cluster autoscaler's scale-down delay.
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


# GCP sustained use discounts: each quarter of the month a VM runs is billed at these fractions of
# the on-demand price (https://cloud.google.com/compute/docs/sustained-use-discounts): N1 up to 30%,
# N2, N2D and C2 up to 20%; other families (E2, C3, T2D, N4...) have none.
SUD_TIERS = {
    "n1": (Decimal(1), Decimal("0.8"), Decimal("0.6"), Decimal("0.4")),
    "n2": (Decimal(1), Decimal("0.8678"), Decimal("0.733"), Decimal("0.6")),
    "n2d": (Decimal(1), Decimal("0.8678"), Decimal("0.733"), Decimal("0.6")),
    "c2": (Decimal(1), Decimal("0.8678"), Decimal("0.733"), Decimal("0.6")),
}
QUARTER = Decimal("0.25")


def sud_tiers(cloud: str, instance_type: str) -> tuple[Decimal, ...] | None:
    return SUD_TIERS.get(instance_type.split("-")[0]) if cloud == "gcp" else None


def sud_factor(fraction: Decimal, tiers: tuple[Decimal, ...] | None) -> Decimal:
    """What a VM running `fraction` of the month pays, as a fraction of a full month on demand."""
    if tiers is None:
        return fraction
    paid = Decimal(0)
    for i, rate in enumerate(tiers):
        part = min(max(fraction - i * QUARTER, Decimal(0)), QUARTER)
        paid += part * rate
    return paid


@dataclass(frozen=True)
class PoolInput:
    name: str
    instance_types: tuple[str, ...]
    spot: bool
    min_nodes: int
    max_nodes: int
    disk_gib: int = 0           # each node's root disk, from the plan
    disk_type: str = ""         # the catalog's disk key (gp3, pd-balanced, managed-premium-ssd)
    steps: tuple[int, ...] | None = None  # the simulated day: nodes at each step (None: the curve model)


@dataclass(frozen=True)
class Commitment:
    """A term commitment on the always-on floor of the on-demand pools (lowers min, modeled, max)."""

    term: str
    coverage: Decimal
    discount: Decimal


@dataclass(frozen=True)
class PoolCost:
    name: str
    instance_types: tuple[str, ...]
    spot: bool
    min_nodes: int
    max_nodes: int
    node_hourly: Decimal           # compute, per node (a spot pool: its spot price)
    at_min: Decimal
    modeled: Decimal
    at_max: Decimal
    fixed_capacity: Decimal = Decimal(0)  # maxNodes on demand all month, disks included
    disk_hourly: Decimal = Decimal(0)     # the root disk, per node
    disk_gib: int = 0
    disk_type: str = ""
    on_demand_hourly: Decimal = Decimal(0)
    sustained_use: bool = False
    committed_nodes: Decimal = Decimal(0)
    floor_nodes: int = 0
    node_hours: Decimal = Decimal(0)      # modeled node-hours a month
    simulated: bool = False               # modeled from the simulated day (else the curve model)
    hourly_nodes: tuple[Decimal, ...] = ()  # mean nodes in each hour of the modeled day


@dataclass(frozen=True)
class FixedFee:
    name: str
    quantity: Decimal
    unit: str
    price: Decimal

    @property
    def monthly(self) -> Decimal:
        return (self.quantity * self.price).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class FixedCounts:
    """How many of each fixed-fee resource the stack declares (counted from its plan)."""

    clusters: int = 0
    control_plane_tier: str = "standard"
    nat_gateways: int = 0
    load_balancers: int = 0
    kms_keys: int = 0
    health_checks: int = 0
    # (AWS endpoint?, optional features) of each Route 53 health check: HTTPS, 10 s interval,
    # string matching, latency measurement are each an optional feature.
    health_check_kinds: tuple[tuple[bool, tuple[str, ...]], ...] = ()
    public_ipv4: int = 0
    disks: tuple[tuple[str, int, str], ...] = ()  # (pool, GiB, type) from the plan
    not_priced: tuple[tuple[str, str], ...] = ()  # (what, why)


@dataclass(frozen=True)
class Estimate:
    pools: tuple[PoolCost, ...]
    fixed: tuple[FixedFee, ...]
    not_priced: tuple[tuple[str, str], ...] = ()

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
    def fixed_capacity(self) -> Decimal:
        return sum((p.fixed_capacity for p in self.pools), Decimal(0)) + self.fixed_monthly

    @property
    def saving_percent(self) -> Decimal:
        return percent_below(self.max, self.modeled)

    @property
    def saving_vs_fixed_capacity_percent(self) -> Decimal:
        return percent_below(self.fixed_capacity, self.modeled)


def percent_below(base: Decimal, value: Decimal) -> Decimal:
    """100 x (base - value) / base, to one decimal (0 when base is 0)."""
    if not base:
        return Decimal(0)
    return (100 * (base - value) / base).quantize(Decimal("0.1"), ROUND_HALF_UP)


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


def rank_minutes(counts: Sequence[int]) -> list[int]:
    """Minutes a day the k-th node (k = 1..max) runs: node k runs while the count is at least k.
    Their sum is day_node_minutes; a node running all 1440 minutes is part of the always-on floor."""
    top = max(counts, default=0)
    minutes = [0] * top
    for h, n in enumerate(counts):
        before = counts[h - 1]
        for k in range(n):
            minutes[k] += 60
        for k in range(n, before):
            minutes[k] += SCALE_DOWN_DELAY_MINUTES
    return minutes


def step_rank_minutes(steps: Sequence[int]) -> list[Decimal]:
    """Minutes a day the k-th node runs in a simulated day of equal steps (node k runs while the
    count is at least k): rank_minutes for the simulation's series."""
    per_step = Decimal(HOURS_PER_DAY * 60) / len(steps)
    at_least = [0] * (max(steps, default=0) + 1)
    for n in steps:
        at_least[n] += 1
    minutes, running = [], 0
    for n in range(len(at_least) - 1, 0, -1):
        running += at_least[n]
        minutes.append(running * per_step)
    return minutes[::-1]


def step_hourly_nodes(steps: Sequence[int]) -> tuple[Decimal, ...]:
    """The mean node count of each hour of a simulated day."""
    size = len(steps) // HOURS_PER_DAY
    return tuple(Decimal(sum(steps[h * size:(h + 1) * size])) / size for h in range(HOURS_PER_DAY))


def node_hourly(prices: Prices, instance_types: Sequence[str], spot: bool) -> Decimal:
    """One node's hourly price: the mean over a spot pool's types; the primary type on-demand."""
    if spot:
        return sum((prices.node_price(t, True) for t in instance_types), Decimal(0)) / len(instance_types)
    return prices.node_price(instance_types[0], False)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


def _month(counts_minutes: Sequence[int | Decimal], price: Decimal, tiers: tuple[Decimal, ...] | None,
           committed: Decimal, commit_price: Decimal) -> Decimal:
    """A month of nodes whose ranks run these minutes a day: the committed part of the always-on
    ranks at the commitment's price, the rest on demand (less GCP's sustained use where it applies)."""
    total = Decimal(0)
    left = committed
    for minutes in counts_minutes:
        fraction = Decimal(minutes) / (HOURS_PER_DAY * 60)
        share = Decimal(0)
        if minutes == HOURS_PER_DAY * 60 and left > 0:
            share = min(left, Decimal(1))
            left -= share
        total += share * commit_price * HOURS_PER_MONTH
        total += (1 - share) * sud_factor(fraction, tiers) * price * HOURS_PER_MONTH
    return total


def pool_cost(name: str, instance_types: Sequence[str], spot: bool, min_nodes: int, max_nodes: int,
              curve: Sequence[Decimal], prices: Prices, *, cloud: str = "", disk_gib: int = 0,
              disk_type: str = "", commitment: Commitment | None = None,
              steps: Sequence[int] | None = None) -> PoolCost:
    price = node_hourly(prices, instance_types, spot)
    on_demand = prices.node_price(instance_types[0], False)
    disk_hourly = (Decimal(disk_gib) * prices.fee(f"disk.{disk_type}") / HOURS_PER_MONTH) if disk_gib else Decimal(0)
    tiers = None if spot else sud_tiers(cloud, instance_types[0])
    # min and max (what the guardrail holds) stay the curve model's, commitment included: the
    # commitment they assume covers the curve's always-on floor, whatever the simulated day runs.
    counts = hourly_nodes(min_nodes, max_nodes, curve)
    ranks: Sequence[int | Decimal] = rank_minutes(counts)
    node_minutes: int | Decimal = day_node_minutes(counts)
    by_hour = tuple(Decimal(n) for n in counts)
    bound_floor = floor = sum(1 for m in ranks if m == HOURS_PER_DAY * 60)
    if steps:
        ranks = step_rank_minutes(steps)
        node_minutes = Decimal(sum(steps)) * HOURS_PER_DAY * 60 / len(steps)
        by_hour = step_hourly_nodes(steps)
        floor = sum(1 for m in ranks if m == HOURS_PER_DAY * 60)
    committed = bound_committed = Decimal(0)
    commit_price = price
    if commitment is not None and not spot:
        committed = commitment.coverage * floor
        bound_committed = commitment.coverage * bound_floor
        commit_price = on_demand * (1 - commitment.discount)
    full = [HOURS_PER_DAY * 60]
    at_min = _month(full * min_nodes, price, tiers, min(bound_committed, Decimal(min_nodes)), commit_price)
    at_max = _month(full * max_nodes, price, tiers, bound_committed, commit_price)
    exact = _month(ranks, price, tiers, committed, commit_price)
    disks = Decimal(node_minutes) * disk_hourly * HOURS_PER_MONTH / (HOURS_PER_DAY * 60)
    at_min += min_nodes * disk_hourly * HOURS_PER_MONTH
    at_max += max_nodes * disk_hourly * HOURS_PER_MONTH
    exact += disks
    fixed = max_nodes * (sud_factor(Decimal(1), sud_tiers(cloud, instance_types[0])) * on_demand + disk_hourly) * HOURS_PER_MONTH
    # Each figure to the cent; modeled kept inside [min, max], where the exact figure lies.
    at_min, at_max, fixed = _cents(at_min), _cents(at_max), _cents(fixed)
    modeled = min(max(_cents(exact), at_min), at_max)
    return PoolCost(name=name, instance_types=tuple(instance_types), spot=spot, min_nodes=min_nodes,
                    max_nodes=max_nodes, node_hourly=price, at_min=at_min, modeled=modeled, at_max=at_max,
                    fixed_capacity=fixed, disk_hourly=disk_hourly, disk_gib=disk_gib, disk_type=disk_type,
                    on_demand_hourly=on_demand, sustained_use=tiers is not None, committed_nodes=committed,
                    floor_nodes=floor,
                    node_hours=Decimal(node_minutes) * HOURS_PER_MONTH / (HOURS_PER_DAY * 60),
                    simulated=bool(steps), hourly_nodes=by_hour)


# AWS Route 53 health checks (https://aws.amazon.com/route53/pricing/): a basic check a month, and
# each optional feature (HTTPS, string matching, a 10-second interval, latency measurement) on top;
# both dearer for an endpoint outside AWS.
HEALTH_CHECK_FEATURES = {"https": "HTTPS", "fast": "10 s interval", "match": "string matching", "latency": "latency"}


def internet_egress_fees(gib: Decimal, tiers: Sequence[tuple[Decimal | None, Decimal]]) -> list[FixedFee]:
    """Internet egress by tier of monthly volume: (tier size in GB or None for the rest, price per GB)."""
    fees = []
    left, start = gib, Decimal(0)
    for size, price in tiers:
        if left <= 0:
            break
        take = left if size is None else min(left, size)
        label = (f"internet egress, over {money_short(start)} GB" if size is None
                 else f"internet egress, {money_short(start)} to {money_short(start + size)} GB")
        fees.append(FixedFee(label, take, "GB", price))
        left -= take
        start += size or Decimal(0)
    return fees


def money_short(amount: Decimal) -> str:
    return f"{amount.normalize():,f}"


def fixed_fees(counts: FixedCounts, prices: Prices, egress_gib: Decimal, *, internet_gib: Decimal | None = None,
               egress_tiers: Sequence[tuple[Decimal | None, Decimal]] = (), lb_capacity_units: Decimal = Decimal(0),
               control_plane_label: str = "") -> tuple[FixedFee, ...]:
    fees: list[FixedFee] = []
    if counts.clusters:
        label = control_plane_label or f"control plane ({counts.control_plane_tier})"
        fees.append(FixedFee(label, counts.clusters * HOURS_PER_MONTH,
                             "hours", prices.control_plane_hourly(counts.control_plane_tier)))
    if counts.nat_gateways:
        fees.append(FixedFee("NAT gateway", counts.nat_gateways * HOURS_PER_MONTH, "hours",
                             prices.fee("natGatewayHourly")))
        fees.append(FixedFee("NAT data processed", egress_gib, "GB", prices.fee("natGatewayPerGiB")))
    if counts.load_balancers:
        fees.append(FixedFee("public load balancer", counts.load_balancers * HOURS_PER_MONTH, "hours",
                             prices.fee("loadBalancerHourly")))
        if lb_capacity_units:
            fees.append(FixedFee("load balancer capacity units", lb_capacity_units, "LCU-hours",
                                 prices.fee("loadBalancerCapacityUnitHourly")))
    if counts.public_ipv4:
        fees.append(FixedFee("public IPv4 address", counts.public_ipv4 * HOURS_PER_MONTH, "hours",
                             prices.fee("publicIpv4Hourly")))
    if counts.kms_keys:
        fees.append(FixedFee("KMS key", Decimal(counts.kms_keys), "months", prices.fee("kmsKeyMonthly")))
    if counts.health_check_kinds:
        grouped: dict[tuple[bool, tuple[str, ...]], int] = {}
        for kind in counts.health_check_kinds:
            grouped[kind] = grouped.get(kind, 0) + 1
        for (aws_endpoint, features), n in grouped.items():
            where = "AWS endpoint" if aws_endpoint else "non-AWS endpoint"
            base = prices.fee("healthCheckAwsMonthly" if aws_endpoint else "healthCheckNonAwsMonthly")
            extra = prices.fee("healthCheckFeatureAwsMonthly" if aws_endpoint else "healthCheckFeatureNonAwsMonthly")
            named = " + ".join(HEALTH_CHECK_FEATURES[f] for f in features) or "basic"
            fees.append(FixedFee(f"health check ({where}, {named})", Decimal(n), "months", base + len(features) * extra))
    elif counts.health_checks:
        fees.append(FixedFee("health check", Decimal(counts.health_checks), "months", prices.fee("healthCheckMonthly")))
    if internet_gib and egress_tiers:
        fees.extend(internet_egress_fees(internet_gib, egress_tiers))
    return tuple(fees)


def estimate(pools: Iterable[PoolInput], counts: FixedCounts, prices: Prices, curve: Sequence[Decimal],
             egress_gib: Decimal = Decimal(0), *, cloud: str = "", commitment: Commitment | None = None,
             **fees: Any) -> Estimate:
    return Estimate(
        pools=tuple(pool_cost(p.name, p.instance_types, p.spot, p.min_nodes, p.max_nodes, curve, prices, cloud=cloud,
                              disk_gib=p.disk_gib, disk_type=p.disk_type, commitment=commitment,
                              steps=p.steps) for p in pools),
        fixed=fixed_fees(counts, prices, egress_gib, **fees),
        not_priced=counts.not_priced,
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


DISK_DEFAULTS = {  # the root disk each cloud gives a node when the plan sets none
    "aws:ec2/launchTemplate:LaunchTemplate": (20, "gp3"),
    "gcp:container/nodePool:NodePool": (100, "pd-balanced"),
    "azure-native:containerservice:AgentPool": (128, "managed-premium-ssd"),
}
PUBLIC_IP_TYPES = ("aws:ec2/eip:Eip", "azure-native:network:PublicIPAddress", "gcp:compute/address:Address")
# Billed, but by use the plan cannot know: named in `notPriced`, never silently zero.
NOT_PRICED_TYPES = {
    "aws:s3/bucket:Bucket": "object storage: by GB stored and requests (the DR copy's size is not in the plan)",
    "azure-native:storage:StorageAccount": "object storage: by GB stored and requests (the DR copy's size is not in the plan)",
    "gcp:storage/bucket:Bucket": "object storage: by GB stored and requests (the DR copy's size is not in the plan)",
    "aws:cloudwatch/logGroup:LogGroup": "log ingestion and storage: by GB logged",
    "azure-native:operationalinsights:Workspace": "log ingestion and storage: by GB logged",
    "aws:route53/record:Record": "DNS queries: by million queries (hosted zone outside this stack)",
}


def _disk(type_: str, props: Mapping[str, Any]) -> tuple[int, str]:
    size, kind = DISK_DEFAULTS[type_]
    if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
        for mapping in props.get("blockDeviceMappings") or []:
            ebs = mapping.get("ebs") or {}
            size, kind = int(ebs.get("volumeSize") or size), str(ebs.get("volumeType") or kind)
    elif type_ == "gcp:container/nodePool:NodePool":
        config = props.get("nodeConfig") or {}
        size, kind = int(config.get("diskSizeGb") or size), str(config.get("diskType") or kind)
    else:
        if str(props.get("osDiskType") or "Managed") == "Ephemeral":
            return 0, "ephemeral"
        size = int(props.get("osDiskSizeGB") or size)
    return size, kind


def _health_check_kind(props: Mapping[str, Any], aliases: Mapping[str, tuple[str, ...]] = {}) -> tuple[bool, tuple[str, ...]]:  # noqa: B006 - read only
    kind = str(props.get("type") or "HTTP")
    features = []
    if kind.startswith("HTTPS"):
        features.append("https")
    if kind.endswith("STR_MATCH"):
        features.append("match")
    if int(props.get("requestInterval") or 30) == 10:
        features.append("fast")
    if props.get("measureLatency"):
        features.append("latency")
    fqdn = str(props.get("fqdn") or "").rstrip(".")
    # An AWS endpoint is one inside AWS (a load balancer, an instance), checked at its AWS name or
    # through a record of the plan's own that points there (a per-stack name CNAMEd to an NLB).
    targets = (fqdn, *aliases.get(fqdn, ()))
    aws_endpoint = kind in ("CALCULATED", "CLOUDWATCH_METRIC") or (
        not props.get("ipAddress") and any(t.endswith(".amazonaws.com") for t in targets))
    return aws_endpoint, tuple(features)


def count_fixed(resources: Iterable[tuple[str, Mapping[str, Any]]], names: Sequence[str] = ()) -> FixedCounts:
    """The fixed-fee resources a plan (or the policy engine's resource list) really declares.
    `names` (the plan's logical names, in the same order) tie each node disk to its pool."""
    clusters = nat = lbs = keys = checks = ips = 0
    tier = "standard"
    kinds: list[tuple[bool, tuple[str, ...]]] = []
    disks: list[tuple[str, int, str]] = []
    not_priced: dict[str, str] = {}
    resources = list(resources)
    aliases = {str(props.get("name") or "").rstrip("."): tuple(str(r).rstrip(".") for r in props.get("records") or [])
               for type_, props in resources if type_ == "aws:route53/record:Record"}
    for i, (type_, props) in enumerate(resources):
        if type_ in CLUSTER_TYPES:
            clusters += 1
            sku = props.get("sku") if type_ == CLUSTER_TYPES[2] else None
            if isinstance(sku, Mapping) and sku.get("tier"):
                tier = str(sku["tier"]).lower()
        nat += type_ in NAT_TYPES
        keys += type_ in KMS_TYPES
        if type_ in HEALTH_CHECK_TYPES:
            checks += 1
            kinds.append(_health_check_kind(props, aliases))
        ips += type_ in PUBLIC_IP_TYPES
        public = (type_ == K8S_SERVICE or type_ in LB_TYPES) and _public_lb(type_, props)
        lbs += public
        if type_ in DISK_DEFAULTS:
            size, kind = _disk(type_, props)
            name = names[i] if i < len(names) else ""
            pool = (props.get("agentPoolName") or (props.get("tags") or {}).get("im-platform-pool")
                    or ((props.get("nodeConfig") or {}).get("labels") or {}).get("im-platform/pool")
                    or name.rsplit("-", 1)[-1])
            disks.append((str(pool), size, kind))
        if type_ == CLUSTER_TYPES[2]:
            for profile in props.get("agentPoolProfiles") or []:
                size, kind = _disk("azure-native:containerservice:AgentPool", profile)
                disks.append((str(profile.get("name") or "system"), size, kind))
        if type_ in NOT_PRICED_TYPES:
            not_priced.setdefault(type_.rsplit(":", 1)[-1], NOT_PRICED_TYPES[type_])
    return FixedCounts(clusters=clusters, control_plane_tier=tier, nat_gateways=nat, load_balancers=lbs,
                       kms_keys=keys, health_checks=checks, health_check_kinds=tuple(kinds), public_ipv4=ips,
                       disks=tuple(disks), not_priced=tuple(sorted(not_priced.items())))


def money(amount: Decimal) -> str:
    """A decimal string with at least two places; exact (never rounded away) below the cent."""
    text = format(amount.normalize(), "f")
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"
