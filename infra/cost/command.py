"""`venv/bin/im-platform cost`: what a stack costs a month, on its cloud or on all three.

    venv/bin/im-platform cost --stack NAME [--config-file FILE] [--json] [--compare]
                             [--regions aws=R,gcp=R,azure=R] [--base FILE]

`--base` takes an earlier `cost --json`, or a `plan --json` (priced with this stack's curve and catalog).

Plans the stack offline once (the fixed fees are counted from the resources it really declares),
then prices its validated spec with `infra.cost.model`. `--compare` prices the same spec on the
other clouds without planning them again: each cloud's shape lookup picks the types, the region
is the nearest one (infra/cost/locations.py, or --regions), and the fixed-fee counts follow OTHER_CLOUD_FEES.
Exit status: 0; 2 on a configuration error or a missing price; 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from components import shapes
from components.spec import CLOUDS, KUBERNETES, ClusterSpec
from infra.config import versions
from infra.config.errors import ConfigError
from infra.cost import catalog, existing, locations, metrics, model, rightsize

EXIT_OK = 0

def equivalent_region(cloud: str, region: str, other: str, *, regions_given: str | None = None) -> str:
    """The region of `other` nearest to `region` (infra/cost/regions.yaml: the vendors' region locations)."""
    found = locations.nearest(cloud, region, other, catalog.regions(other))
    if found is None:
        key, value = ("--regions", regions_given) if regions_given else (f"region {region}", f"{cloud}")
        raise catalog.PriceError(key, value, f"no location is known for {cloud} region {region}, so no equivalent "
                                             f"{other} region; pass --regions {other}=REGION")
    return found[0]


LB_PUBLIC_IPS = {"aws": 3, "gcp": 0, "azure": 1}
"""Public IPv4 addresses a public load balancer holds: an internet-facing NLB one per zone (three);
AKS one frontend address; a GCP forwarding rule's address is part of the rule's price."""
LCU_CONNECTIONS = Decimal(100000)  # an NLB capacity unit: 100,000 active TCP flows, or 1 GB an hour processed
CLUSTER_NOT_PRICED = (("inter-zone data transfer", "by GB between zones (pod-to-pod and replicas): not in the plan"),)


def other_cloud_counts(counts: model.FixedCounts, cloud: str, spec: ClusterSpec) -> model.FixedCounts:
    """OTHER_CLOUD_FEES: the fixed-fee counts the same spec declares on another cloud, by the rules
    of components/*.py: one cluster; NAT gateways one per zone on AWS prod (three; one elsewhere),
    one Cloud NAT on GCP, one NAT gateway on Azure, each with its public address on AWS and Azure;
    the AKS control plane on the Standard tier in prod, Free otherwise; public load balancers, keys
    and health checks as this stack's plan counts them; node disks at the cloud's default."""
    nat = 0
    if counts.nat_gateways:
        nat = (3 if spec.is_prod else 1) if cloud == "aws" else 1
    tier = ("standard" if spec.is_prod else "free") if cloud == "azure" else "standard"
    ips = nat if cloud in ("aws", "azure") else 0
    return model.FixedCounts(clusters=counts.clusters, control_plane_tier=tier, nat_gateways=nat,
                             load_balancers=counts.load_balancers, kms_keys=counts.kms_keys,
                             health_checks=counts.health_checks, health_check_kinds=counts.health_check_kinds,
                             public_ipv4=ips, disks=(), not_priced=counts.not_priced)


OTHER_DISKS = {"aws": (20, "gp3"), "gcp": (100, "pd-balanced"), "azure": (128, "managed-premium-ssd")}


def pool_inputs(spec: ClusterSpec, cloud: str | None = None,
                disks: Sequence[tuple[str, int, str]] = ()) -> list[model.PoolInput]:
    """The spec's pools; on another cloud, with that cloud's types for the same shape."""
    found = []
    by_pool = {pool: (size, kind) for pool, size, kind in disks}
    for p in spec.node_pools:
        types = p.machine_types
        size, kind = by_pool.get(p.name, (0, ""))
        if cloud and cloud != spec.cloud:
            size, kind = OTHER_DISKS[cloud]
            try:
                try:
                    types = shapes.machine_types(cloud, p.vcpu, p.memory_gib, p.spot, p.arch)
                except shapes.ShapeError:
                    if p.arch != "arm64":
                        raise
                    # No arm64 shape on that cloud: compared on its x86_64 types (the row's types say so).
                    types = shapes.machine_types(cloud, p.vcpu, p.memory_gib, p.spot)
            except shapes.ShapeError as exc:
                raise ConfigError(f"im-platform:cluster.nodePools.{p.name}", f"{p.vcpu} vCPU / {p.memory_gib} GiB",
                                  f"--compare cannot price it on {cloud}: {exc}") from None
        found.append(model.PoolInput(p.name, types, p.spot, p.min_nodes, p.max_nodes, size, kind))
    return found


def _support(spec: ClusterSpec, cloud: str, tier: str, today: dt.date | None) -> tuple[str, str]:
    """The control plane's catalog tier and its fee label, by the version's support window."""
    if not spec.node_pools:
        return tier, ""
    minor = spec.kubernetes_version
    billed = versions.control_plane_tier(cloud, minor, tier, today)
    state = versions.window(cloud, minor, today)
    w = versions.windows(cloud).get(minor)
    if state in (versions.EXTENDED, versions.ENDED) and w is not None:
        return billed, (f"control plane ({billed}: {minor} past standard support since "
                        f"{w.standard_end.isoformat()})")
    return billed, f"control plane ({tier}, {minor} in standard support)"


def lb_traffic(spec: ClusterSpec, counts: model.FixedCounts, cloud: str) -> dict[str, Any]:
    """Load-balancer usage from the documented traffic assumption: open connections at the peak
    (cost.peakConnections) x the load curve, and the internet egress not sent through NAT."""
    if not counts.load_balancers:
        return {}
    lb_gib = max(spec.cost.internet_egress - spec.cost.egress_gib_per_month, Decimal(0))
    curve = spec.cost.curve
    mean = sum(curve, Decimal(0)) / len(curve)
    if cloud == "aws":
        if not spec.cost.peak_connections and not lb_gib:
            return {}
        hours = Decimal(0)
        for load in curve:
            by_connections = spec.cost.peak_connections * load / LCU_CONNECTIONS
            by_bytes = lb_gib / model.HOURS_PER_MONTH * (load / mean if mean else Decimal(0))
            hours += max(by_connections, by_bytes)
        units = (hours * model.HOURS_PER_MONTH / model.HOURS_PER_DAY).quantize(Decimal("0.01"))
        return {"lb_capacity_units": units * counts.load_balancers}
    return {"lb_gib": lb_gib} if lb_gib else {}


def simulated_pools(spec: ClusterSpec, cloud: str, pools: Sequence[model.PoolInput]) -> list[model.PoolInput]:
    """`pools` with the simulated day of each pool the simulated tiers run on (infra.simulate: one
    simulation per spec and cloud, shared with `simulate`), so `modeled` is what the autoscalers run.
    Pools given with other bounds than the spec's (a --base plan) are simulated with those bounds."""
    if not spec.node_pools or spec.cloud == KUBERNETES:
        return list(pools)
    from infra.simulate.run import pool_steps

    bounds = {p.name: (p.min_nodes, p.max_nodes) for p in pools}
    own = tuple(dataclasses.replace(p, min_nodes=bounds[p.name][0], max_nodes=bounds[p.name][1])
                if p.name in bounds else p for p in spec.node_pools)
    steps = pool_steps(spec if own == spec.node_pools else dataclasses.replace(spec, node_pools=own), cloud)
    return [dataclasses.replace(p, steps=steps[p.name]) if p.name in steps else p for p in pools]


def price(spec: ClusterSpec, counts: model.FixedCounts, cloud: str, region: str, *, today: dt.date | None = None,
          spot_discount: Decimal | None = None, pools: Sequence[model.PoolInput] | None = None,
          simulate: bool = True) -> tuple[model.Estimate, catalog.RegionPrices]:
    """The stack's estimate on `cloud` in `region`: its pools (disks from the plan's counts) modeled
    from the simulated day where tiers run on them (`simulate`; the guardrail's `max` needs none), the
    fixed fees the counts declare, the control plane by the version's support window on `today`."""
    today = today or dt.date.today()
    prices = catalog.region_prices(cloud, region, spec.cost.catalog)
    if spot_discount is not None:
        prices = prices.with_spot_discount(spot_discount)
    tier, label = _support(spec, cloud, counts.control_plane_tier, today)
    counts = dataclasses.replace(counts, control_plane_tier=tier,
                                 public_ipv4=counts.public_ipv4 + counts.load_balancers * LB_PUBLIC_IPS[cloud])
    commitment = None
    if spec.cost.commitment_term:
        if spec.cost.commitment_term not in prices.commitment:
            raise catalog.PriceError("im-platform:cost.commitment.term", spec.cost.commitment_term,
                                     f"no {spec.cost.commitment_term} commitment discount in the {cloud} catalog")
        commitment = model.Commitment(spec.cost.commitment_term, spec.cost.commitment_coverage,
                                      prices.commitment[spec.cost.commitment_term])
    traffic = lb_traffic(spec, counts, cloud)
    if pools is None:
        pools = pool_inputs(spec, cloud, counts.disks)
    if simulate:
        pools = simulated_pools(spec, cloud, pools)
    est = model.estimate(pools, counts, prices, spec.cost.curve,
                         spec.cost.egress_gib_per_month, cloud=cloud, commitment=commitment,
                         internet_gib=spec.cost.internet_egress, egress_tiers=prices.egress_tiers,
                         lb_capacity_units=traffic.get("lb_capacity_units", Decimal(0)), control_plane_label=label)
    extra: list[model.FixedFee] = []
    if traffic.get("lb_gib"):
        extra.append(model.FixedFee("load balancer data processed", traffic["lb_gib"], "GB", prices.fee("loadBalancerPerGiB")))
    unpriced: list[tuple[str, str]] = []
    store = metrics.use(spec, cloud)
    if store is not None:
        for charge in metrics.charges(store, prices=prices):
            if charge.price is None:
                unpriced.append((charge.fee.name, store_not_priced(charge, store)))
            else:
                extra.append(model.FixedFee(charge.fee.name, charge.quantity, charge.fee.unit, charge.price))
    est = dataclasses.replace(est, fixed=est.fixed + tuple(extra),
                              not_priced=not_priced(spec, counts, cloud, est) + tuple(unpriced))
    return est, prices


def store_not_priced(charge: metrics.Charge, store: metrics.StoreUse) -> str:
    """Why a fee of the managed metrics store has no price, with the quantity it would be priced at."""
    return (f"{charge.quantity.normalize():,f} {charge.fee.unit} a month; the shipped {store.cloud} catalog has no "
            f"{charge.fee.key} (the vendor's page: {store.source}): give it in im-platform:cost.catalog (docs/cost.md)")


def store_json(spec: ClusterSpec, cloud: str | None = None) -> dict[str, Any] | None:
    """The series and samples the managed metrics store's fees assume (None: no managed store)."""
    store = metrics.use(spec, cloud)
    if store is None:
        return None
    return {"store": store.store, "source": store.source, "tiers": list(store.tiers),
            "seriesPerPod": store.series_per_pod, "scrapeIntervalSeconds": store.scrape_interval_seconds,
            "pollingIntervalSeconds": store.polling_seconds,
            "pods": {"mean": str(store.pods_mean), "peak": store.pods_peak},
            "series": {"mean": str(store.series_mean), "peak": store.series_peak},
            "samplesIngestedPerMonth": str(store.ingested), "queriesPerMonth": str(store.queries),
            "querySamplesPerMonth": str(store.query_samples),
            **({"storedGB": str(store.stored_gb), "scraperHours": str(store.scraper_hours)} if store.cloud == "aws" else {})}


def not_priced(spec: ClusterSpec, counts: model.FixedCounts, cloud: str, est: model.Estimate) -> tuple[tuple[str, str], ...]:
    """What the plan declares but the model cannot price from it, each with its reason."""
    items = list(counts.not_priced)
    if spec.node_pools:
        items.extend(CLUSTER_NOT_PRICED)
        if not spec.cost.internet_egress:
            items.append(("internet egress", "no volume given: set im-platform:cost.internetEgressGiBPerMonth "
                                             "(or egressGiBPerMonth, the NAT part)"))
        if counts.load_balancers and cloud == "aws" and not any(f.name.startswith("load balancer capacity") for f in est.fixed):
            items.append(("load balancer capacity units", "no traffic assumption: set im-platform:cost.peakConnections "
                                                          "or internetEgressGiBPerMonth"))
        if counts.kms_keys and cloud == "azure":
            items.append(("Key Vault operations", "$0.03 per 10,000 operations: by use"))
    return tuple(dict(items).items())


def _share(name: str, spec: ClusterSpec, loads: Sequence[Any]) -> list[tuple[str, Decimal]]:
    """Each tier's share of its pool, by the CPU its pods request at replicas.max."""
    mine = [(w.name, w.cpu * w.replicas) for w in loads if w.pool == name]
    total = sum((c for _, c in mine), Decimal(0))
    return [(n, c / total) for n, c in mine] if total else []


def tiers_json(pool: model.PoolCost, spec: ClusterSpec, loads: Sequence[Any]) -> list[dict[str, str]]:
    """A pool's modeled cost split over its tiers by share; the cents left by rounding go to the last."""
    shares = _share(pool.name, spec, loads)
    rows, spent = [], Decimal(0)
    for i, (name, share) in enumerate(shares):
        amount = pool.modeled - spent if i == len(shares) - 1 else (pool.modeled * share).quantize(model.CENT)
        spent += amount
        rows.append({"name": name, "share": str((100 * share).quantize(Decimal("0.1"))), "modeled": model.money(amount)})
    return rows


def totals_json(est: model.Estimate) -> dict[str, str]:
    return {"min": model.money(est.min), "modeled": model.money(est.modeled), "max": model.money(est.max),
            "savingPercent": str(est.saving_percent), "fixedCapacity": model.money(est.fixed_capacity),
            "savingVsFixedCapacityPercent": str(est.saving_vs_fixed_capacity_percent)}


# The catalog key each fixed fee is priced from (by the fee's name in infra.cost.model), to say
# whether its price is listed or derived in the region.
FEE_KEYS = (("NAT gateway", "natGatewayHourly"), ("NAT data processed", "natGatewayPerGiB"),
            ("public load balancer", "loadBalancerHourly"), ("load balancer capacity units", "loadBalancerCapacityUnitHourly"),
            ("load balancer data processed", "loadBalancerPerGiB"), ("public IPv4 address", "publicIpv4Hourly"),
            ("KMS key", "kmsKeyMonthly"), ("internet egress", "internetEgress"),
            ("health check (AWS endpoint", "healthCheckAwsMonthly"), ("health check (non-AWS endpoint", "healthCheckNonAwsMonthly"),
            ("health check", "healthCheckMonthly"))


def fee_key(name: str) -> str | None:
    return next((key for prefix, key in FEE_KEYS if name.startswith(prefix)), None)


def basis(derived: bool) -> str:
    return "derived" if derived else "listed"


def fee_derived(name: str, prices: catalog.RegionPrices | None) -> bool:
    key = fee_key(name)
    return bool(prices is not None and key and key in prices.derived_fees)


def pool_derived(p: model.PoolCost, prices: catalog.RegionPrices | None) -> bool:
    if prices is None:
        return False
    return (any(prices.is_derived(t) for t in p.instance_types)
            or bool(p.disk_gib and f"disk.{p.disk_type}" in prices.derived_fees))


def fixed_json(est: model.Estimate, prices: catalog.RegionPrices | None = None) -> list[dict[str, str]]:
    return [{"name": f.name, "monthlyQuantity": quantity_text(f.quantity), "unit": f.unit,
             "price": model.money(f.price), "monthlyCost": model.money(f.monthly),
             "priceBasis": basis(fee_derived(f.name, prices))} for f in est.fixed]


def derivations(est: model.Estimate, prices: catalog.RegionPrices) -> list[dict[str, str]]:
    """The rules behind the derived figures this estimate uses (none where every figure is listed)."""
    rows = []
    if any(any(t in prices.derived_types for t in p.instance_types) for p in est.pools) and "instances" in prices.derivation:
        rows.append({"what": "node prices", "rule": prices.derivation["instances"]})
    if (any(prices.is_derived(t) and t not in prices.derived_types for p in est.pools for t in p.instance_types)
            and "customShapes" in prices.derivation):
        rows.append({"what": "custom machine shapes", "rule": prices.derivation["customShapes"]})
    if (any(fee_derived(f.name, prices) for f in est.fixed) or any(pool_derived(p, prices) for p in est.pools)) \
            and "fees" in prices.derivation:
        rows.append({"what": "fees", "rule": prices.derivation["fees"]})
    return rows


def quantity_text(q: Decimal) -> str:
    text = format(q.normalize(), "f")
    return text


def hourly(est: model.Estimate, curve: Sequence[Decimal]) -> dict[str, Any]:
    """The modeled cost of each hour of the day (pools at that hour's mean count, simulated or by the
    curve; fixed fees spread evenly) and the fixed-capacity fleet's hourly cost: the picture of the day."""
    fees = est.fixed_monthly / model.HOURS_PER_MONTH
    hours = []
    for h in range(model.HOURS_PER_DAY):
        total = fees
        for p in est.pools:
            n = p.hourly_nodes[h] if p.hourly_nodes else model.hourly_nodes(p.min_nodes, p.max_nodes, curve)[h]
            total += n * (p.node_hourly + p.disk_hourly)
        hours.append(model.money(total.quantize(model.CENT)))
    return {"modeled": hours, "fixedCapacity": model.money((est.fixed_capacity / model.HOURS_PER_MONTH).quantize(model.CENT))}


def to_json(spec: ClusterSpec, est: model.Estimate, prices: catalog.RegionPrices,
            resources: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    loads = rightsize.workloads(resources)
    doc: dict[str, Any] = {
        "stack": spec.stack, "cloud": spec.cloud, "region": spec.region, "currency": "USD",
        "catalog": {"as_of": prices.oldest.isoformat(), "sources": list(prices.sources)},
        "pools": [{"name": p.name, "instanceTypes": list(p.instance_types), "spot": p.spot,
                   "minNodes": p.min_nodes, "maxNodes": p.max_nodes, "nodeHourlyCost": model.money(p.node_hourly),
                   "onDemandHourlyCost": model.money(p.on_demand_hourly),
                   "disk": {"sizeGiB": p.disk_gib, "type": p.disk_type, "hourlyCost": model.money(p.disk_hourly)},
                   "sustainedUseDiscount": p.sustained_use, "alwaysOnNodes": p.floor_nodes,
                   "committedNodes": str(p.committed_nodes),
                   "modeledNodeHours": str(p.node_hours.quantize(Decimal("0.01"))),
                   "modeledBy": "simulation" if p.simulated else "curve",
                   "monthlyCost": {"min": model.money(p.at_min), "modeled": model.money(p.modeled),
                                   "max": model.money(p.at_max), "fixedCapacity": model.money(p.fixed_capacity)},
                   "tiers": tiers_json(p, spec, loads), "priceBasis": basis(pool_derived(p, prices))} for p in est.pools],
        "fixed": fixed_json(est, prices),
        "totals": totals_json(est),
        "notPriced": [{"name": n, "reason": r} for n, r in est.not_priced],
        "derived": derivations(est, prices),
    }
    store = store_json(spec)
    if store is not None:
        doc["metricsStore"] = store
    if spec.node_pools:
        doc["kubernetes"] = {"version": spec.kubernetes_version,
                             "supportWindow": versions.window(spec.cloud, spec.kubernetes_version, dt.date.today())}
        doc["spotBasis"] = spot_basis(prices, est)
        if spec.cost.commitment_term:
            doc["commitment"] = {"term": spec.cost.commitment_term, "coverage": str(spec.cost.commitment_coverage),
                                 "discount": str(prices.commitment.get(spec.cost.commitment_term, ""))}
        doc["hourly"] = hourly(est, spec.cost.curve)
    return doc


def spot_basis(prices: catalog.RegionPrices, est: model.Estimate) -> str:
    if not any(p.spot for p in est.pools):
        return "no spot pool"
    if all("spot" in (prices.instances.get(t) or {}) for p in est.pools if p.spot for t in p.instance_types):
        return f"listed spot prices ({prices.cloud} catalog, {prices.region})"
    if prices.spot_listed:
        return (f"listed spot prices where the {prices.cloud} catalog has them ({prices.region}), else on-demand "
                f"less {(100 * prices.spot_discount).normalize():f}% (the region's discount)")
    return f"on-demand less {(100 * prices.spot_discount).normalize():f}% (the typical discount of the {prices.cloud} spot band)"


def with_band(doc: dict[str, Any], spec: ClusterSpec, counts: model.FixedCounts, prices: catalog.RegionPrices,
              today: dt.date | None) -> None:
    """A spot pool's price is a band where it is derived: modeled at the band's high and low discount.
    Where the catalog lists the spot price of every type a spot pool runs, there is no band."""
    band = prices.spot_band
    derived = [t for p in spec.node_pools if p.spot for t in p.machine_types
               if "spot" not in (prices.instances.get(t) or {})]
    if not derived or "low" not in band or "high" not in band:
        return
    low, _ = price(spec, counts, spec.cloud, spec.region, today=today, spot_discount=band["high"])
    high, _ = price(spec, counts, spec.cloud, spec.region, today=today, spot_discount=band["low"])
    doc["totals"]["modeledBand"] = {"low": model.money(low.modeled), "high": model.money(high.modeled),
                                    "spotDiscountLow": str(band["low"]), "spotDiscountHigh": str(band["high"])}


def parse_regions(text: str | None) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        cloud, _, region = item.partition("=")
        if cloud not in CLOUDS or not region:
            raise ConfigError("--regions", text, "expected aws=REGION,gcp=REGION,azure=REGION (any of the three)")
        chosen[cloud] = region
    return chosen


def compare(spec: ClusterSpec, counts: model.FixedCounts, own: model.Estimate,
            regions: Mapping[str, str], today: dt.date | None = None,
            regions_text: str | None = None) -> list[dict[str, Any]]:
    """The same spec on each cloud: its types, fixed fees, spot basis and totals, cheapest first."""
    rows = []
    for cloud in CLOUDS:
        if cloud == spec.cloud and cloud not in regions:
            region, est = spec.region, own
            prices = catalog.region_prices(cloud, region, spec.cost.catalog)
        else:
            region = regions.get(cloud) or equivalent_region(spec.cloud, spec.region, cloud, regions_given=regions_text)
            cloud_counts = counts if cloud == spec.cloud else other_cloud_counts(counts, cloud, spec)
            est, prices = price(spec, cloud_counts, cloud, region, today=today)
        rows.append((est.modeled, {
            "cloud": cloud, "region": region, "current": cloud == spec.cloud,
            "pools": [{"name": p.name, "instanceTypes": list(p.instance_types), "spot": p.spot,
                       "nodeHourlyCost": model.money(p.node_hourly), "priceBasis": basis(pool_derived(p, prices)),
                       "modeledBy": "simulation" if p.simulated else "curve",
                       "monthlyCost": {"modeled": model.money(p.modeled), "fixedCapacity": model.money(p.fixed_capacity)}}
                      for p in est.pools],
            "fixed": fixed_json(est, prices), "spotBasis": spot_basis(prices, est), "totals": totals_json(est),
            "derived": derivations(est, prices),
            **({"metricsStore": store} if (store := store_json(spec, cloud)) is not None else {}),
            "notPriced": [{"name": n, "reason": r} for n, r in est.not_priced]}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


# -- --export-catalog: the rows a stack uses, as an override file to edit ----------------------------

def catalog_rows(est: model.Estimate, prices: catalog.RegionPrices) -> dict[str, Any]:
    """The catalog rows `est` was priced from, in the catalog's (and an override file's) shape: its
    node types (a custom shape as the row it was priced at), the region's fees, disks and egress
    tiers, the control plane, spot and commitment figures. Loaded back as im-platform:cost.catalog,
    it prices the stack the same; edit it for negotiated prices (docs/cost.md, The override file)."""
    def dec(value: Decimal) -> str:
        return model.money(value) if value == value.quantize(model.CENT) else format(value.normalize(), "f")

    listed: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    for p in est.pools:
        for t in p.instance_types:
            entry = prices.instances.get(t) or {"onDemand": prices.node_price(t, False)}
            row = {k: dec(v) for k, v in entry.items()} if "spot" in entry else dec(entry["onDemand"])
            (derived if prices.is_derived(t) else listed)[t] = row
    fixed: dict[str, Any] = {"source": list(prices.sources), "as_of": prices.oldest.isoformat()}
    fixed.update({k: dec(v) for k, v in prices.fixed.items() if not k.startswith("disk.")})
    disks = {k.split(".", 1)[1]: dec(v) for k, v in prices.fixed.items() if k.startswith("disk.")}
    if disks:
        fixed["disk"] = disks
    if prices.egress_tiers:
        fixed["internetEgress"] = [{"upToGB": None if size is None else dec(size), "perGB": dec(per)}
                                   for size, per in prices.egress_tiers]
    region: dict[str, Any] = {"source": f"exported from the {prices.cloud} catalog ({', '.join(prices.sources[:1])})",
                              "as_of": prices.oldest.isoformat(), "spotDiscount": dec(prices.spot_discount),
                              "instances": listed}
    if derived:
        region["derivedInstances"] = derived
    region["fixed"] = fixed
    if prices.derived_fees:
        region["derivedFees"] = sorted(prices.derived_fees)
    if prices.derivation:
        region["derivation"] = dict(prices.derivation)
    doc: dict[str, Any] = {"cloud": prices.cloud,
                           "controlPlane": {"as_of": prices.oldest.isoformat(),
                                            "hourly": {k: dec(v) for k, v in prices.control_plane.items()}},
                           "regions": {prices.region: region}}
    if prices.commitment:
        doc["commitment"] = {"discount": {k: dec(v) for k, v in prices.commitment.items()}}
    return doc


def write_catalog_rows(path: str, doc: Mapping[str, Any], stack: str) -> None:
    import yaml

    head = (f"# Price rows stack {stack} is priced from ({doc['cloud']} {next(iter(doc['regions']))}), written by\n"
            f"# `python -m infra.cli cost --stack {stack} --export-catalog {path}`. Edit the figures (negotiated\n"
            "# prices; move a row from derivedInstances to instances once it is a price you hold), then set\n"
            f"# im-platform:cost.catalog: {path} in the stack file. The format: docs/cost.md, The override file.\n")
    try:
        Path(path).write_text(head + yaml.safe_dump(dict(doc), sort_keys=False, width=120), encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--export-catalog", path, f"cannot write the file: {exc.strerror}") from None


# -- --base: the change against an earlier `cost --json` ------------------------------------------------

def _amount(where: str, value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(where, value, "expected a decimal string (the output of cost --json)") from None


def _delta(before: Decimal, after: Decimal) -> dict[str, str | None]:
    change = after - before
    # From nothing: 0% when still nothing, else no percentage ("new").
    percent = (100 * change / before).quantize(Decimal("0.1")) if before else (Decimal("0.0") if not after else None)
    return {"base": model.money(before), "current": model.money(after), "change": model.money(change),
            "percent": None if percent is None else str(percent)}


def check_base(base: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """A base is an earlier figure of this stack on this cloud, whose rows add up to its totals:
    anything else compares two different things, so it is refused, naming both."""
    where = f"{current['stack']} ({current['cloud']} {current['region']})"
    stack, cloud = base.get("stack"), base.get("cloud")
    if stack and stack != current["stack"] or cloud and cloud != current["cloud"]:
        raise ConfigError("--base", f"{stack} ({cloud} {base.get('region', '?')})",
                          f"expected an earlier cost of {where}, not of another stack or cloud: "
                          f"compare clouds with --compare")
    if "fixed" not in base or "pools" not in base:
        return
    rows = sum((_amount("--base pools", (p.get("monthlyCost") or {}).get("modeled", "0")) for p in base["pools"]), Decimal(0))
    rows += sum((_amount("--base fixed", f.get("monthlyCost", "0")) for f in base["fixed"]), Decimal(0))
    total = _amount("--base totals.modeled", (base.get("totals") or {}).get("modeled", "0"))
    if abs(rows - total) >= Decimal("0.01"):
        raise ConfigError("--base", "totals.modeled", f"its pools and fees add up to {model.money(rows)}, not to its "
                          f"total {model.money(total)}: not the output of cost --json")


def base_change(base: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Per pool and in total: base, current, change and percent of min, modeled and max."""
    keys = ("min", "modeled", "max")
    before = {p["name"]: p for p in base.get("pools") or []}
    after = {p["name"]: p for p in current["pools"]}
    pools = []
    for name in list(after) + [n for n in before if n not in after]:
        b = (before.get(name) or {}).get("monthlyCost") or {}
        a = (after.get(name) or {}).get("monthlyCost") or {}
        pools.append({"name": name, **{k: _delta(_amount(f"--base pools.{name}.{k}", b.get(k, "0")),
                                                 _amount(f"pools.{name}.{k}", a.get(k, "0"))) for k in keys}})
    totals = {k: _delta(_amount(f"--base totals.{k}", (base.get("totals") or {}).get(k, "0")),
                        _amount(f"totals.{k}", current["totals"][k])) for k in keys}
    return {"pools": pools, "totals": totals}


def read_base(path: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError("--base", path, "no such file (the output of an earlier cost --json)") from None
    except ValueError as exc:
        raise ConfigError("--base", path, f"not JSON: {exc}") from None
    if not isinstance(doc, Mapping) or not ("totals" in doc or ("resources" in doc and "outputs" in doc)):
        raise ConfigError("--base", path, "expected the output of cost --json or of plan --json")
    return doc


_CLUSTER_CLOUD = {"aws:eks/cluster:Cluster": "aws", "gcp:container/cluster:Cluster": "gcp",
                  "azure-native:containerservice:ManagedCluster": "azure"}


def price_plan_json(plan: Mapping[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """A base given as `plan --json` (e.g. of the base branch): priced like this stack (its curve,
    egress and catalog), from the plan's own node pools, region and fixed-fee resources."""
    resources = plan.get("resources") or []
    outputs = plan.get("outputs") or {}
    cloud = next((_CLUSTER_CLOUD[r["type"]] for r in resources if r.get("type") in _CLUSTER_CLOUD), spec.cloud)
    region = str(outputs.get("region") or spec.region)
    try:
        pools = [model.PoolInput(str(p["name"]), tuple(p["machineTypes"]), bool(p["spot"]), int(p["minNodes"]),
                                 int(p["maxNodes"])) for p in outputs.get("nodePools") or []]
    except (KeyError, TypeError, ValueError):
        raise ConfigError("--base", "outputs.nodePools", "expected the node pools of plan --json") from None
    if plan.get("stack") and plan.get("stack") != spec.stack or cloud != spec.cloud:
        raise ConfigError("--base", f"plan of {plan.get('stack')} ({cloud} {region})",
                          f"expected a plan of {spec.stack} ({spec.cloud} {spec.region}), not of another stack or cloud")
    counts = model.count_fixed(((r["type"], r.get("inputs") or {}) for r in resources), [r.get("name", "") for r in resources])
    disks = {pool: (size, kind) for pool, size, kind in counts.disks}
    pools = [dataclasses.replace(p, disk_gib=disks.get(p.name, (0, ""))[0], disk_type=disks.get(p.name, (0, ""))[1])
             for p in pools]
    est, _ = price(spec, counts, cloud, region, pools=pools)
    return {"stack": plan.get("stack"), "cloud": cloud,
            "pools": [{"name": p.name, "monthlyCost": {"min": model.money(p.at_min), "modeled": model.money(p.modeled),
                                                       "max": model.money(p.at_max)}} for p in est.pools],
            "totals": totals_json(est)}


# -- text ------------------------------------------------------------------------------------------------

def cents(text: str) -> str:
    """A JSON amount (exact) shown to the cent in the text table."""
    return f"{Decimal(text).quantize(Decimal('0.01'), model.ROUND_HALF_UP):,}"


def rate(text: str) -> str:
    """A unit price ($ an hour, $ a GB) to four places: every rate in the text the same way."""
    return f"{Decimal(text).quantize(Decimal('0.0001'), model.ROUND_HALF_UP)}"


def units(quantity: str, unit: str) -> str:
    """'1 month', '2,190 hours', '0 GB': singular for one, thousands separated."""
    q = Decimal(quantity)
    shown = f"{q:,f}" if q != q.to_integral() else f"{int(q):,}"
    word = {"months": "month", "hours": "hour"}.get(unit, unit) if q == 1 else unit
    return f"{shown} {word}"


def render(doc: Mapping[str, Any]) -> str:
    if doc.get("cloud") == KUBERNETES:
        return existing.render(doc)
    t = doc["totals"]
    lines = [f"Stack {doc['stack']}: {doc['cloud']} {doc['region']}, USD a month (1 month = 730 hours), "
             f"catalog of {doc['catalog']['as_of']}"]
    if doc["pools"]:
        lines.append(f"Saving against fixed capacity: {t['savingVsFixedCapacityPercent']}% "
                     f"(modeled {cents(t['modeled'])} against fixed capacity {cents(t['fixedCapacity'])})")
    lines.append("")
    header = ("pool", "type", "spot", "nodes", "$/node-hour", "at min", "modeled", "at max", "fixed capacity")
    basis_mark = {"derived": "~", "listed": ""}
    rows = [header]
    for p in doc["pools"]:
        types = p["instanceTypes"][0] + (f" +{len(p['instanceTypes']) - 1}" if len(p["instanceTypes"]) > 1 else "")
        node = Decimal(p["nodeHourlyCost"]) + Decimal(p["disk"]["hourlyCost"])
        rows.append((p["name"], types, "spot" if p["spot"] else "-", f"{p['minNodes']}..{p['maxNodes']}",
                     basis_mark[p.get("priceBasis", "listed")] + rate(str(node)), cents(p["monthlyCost"]["min"]),
                     cents(p["monthlyCost"]["modeled"]), cents(p["monthlyCost"]["max"]), cents(p["monthlyCost"]["fixedCapacity"])))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    if not doc["pools"]:
        rows = []
        lines.append("  no node pools (a traffic stack: no cluster)")
    for r in rows:
        lines.append("  " + "  ".join(str(c).ljust(w) if i < 4 else str(c).rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    notes = []
    for p in doc["pools"]:
        bits = []
        if p.get("modeledBy") == "simulation":
            bits.append(f"modeled on the simulated day ({p['modeledNodeHours']} node-hours a month)")
        elif p.get("modeledBy") == "curve":
            bits.append("modeled on the load curve (no simulated tier)")
        if p["disk"]["sizeGiB"]:
            bits.append(f"{p['disk']['sizeGiB']} GiB {p['disk']['type']} disk {rate(p['disk']['hourlyCost'])}/h")
        if p["sustainedUseDiscount"]:
            bits.append("sustained use discount")
        if Decimal(p["committedNodes"]):
            bits.append(f"{p['committedNodes']} of {p['alwaysOnNodes']} always-on nodes committed")
        if p["tiers"]:
            bits.append("tiers: " + ", ".join(f"{x['name']} {x['share']}% {cents(x['modeled'])}" for x in p["tiers"]))
        if bits:
            notes.append(f"  {p['name']}: " + "; ".join(bits))
    if notes:
        lines.append("")
        lines.append("Per pool ($/node-hour includes the disk; modeled split over its tiers by requested CPU):")
        lines.extend(notes)
    if doc["fixed"]:
        lines.append("")
        lines.append("Fixed fees:")
        width = max(len(f["name"]) for f in doc["fixed"])
        for f in doc["fixed"]:
            amount = (f"{units(f['monthlyQuantity'], f['unit'])} x {basis_mark[f.get('priceBasis', 'listed')]}{rate(f['price'])} "
                      f"= {cents(f['monthlyCost'])}")
            lines.append(f"  {f['name']:<{width}}  {amount}")
    lines.append("")
    lines.append(f"Total: min {cents(t['min'])}  modeled {cents(t['modeled'])}  max {cents(t['max'])}  "
                 f"fixed capacity {cents(t['fixedCapacity'])}")
    if doc["pools"]:
        band = t.get("modeledBand")
        if band:
            lines.append(f"  modeled with the spot band ({Decimal(band['spotDiscountLow']) * 100:.0f}-"
                         f"{Decimal(band['spotDiscountHigh']) * 100:.0f}% off on-demand): {cents(band['low'])} to {cents(band['high'])}")
        lines.append(f"  saving: {t['savingVsFixedCapacityPercent']}% against fixed capacity, {t['savingPercent']}% against max")
        lines.append("  min: every pool at minNodes; modeled: the simulated day (pools of scaled tiers, `simulate`), else nodes")
        lines.append("  following the load curve, with spot and commitments;")
        lines.append("  max: every pool at maxNodes (the guardrail); fixed capacity: every pool at maxNodes on demand, all month.")
        if doc.get("spotBasis"):
            lines.append(f"  spot: {doc['spotBasis']}")
    if doc.get("pair"):
        pair, pt = doc["pair"], doc["pair"]["totals"]
        who = " + ".join(f"{m['stack']} ({m['role']}, modeled {cents(m['totals']['modeled'])})" for m in pair["members"])
        lines.append(f"  DR pair {who}: modeled {cents(pt['modeled'])}  max {cents(pt['max'])}  "
                     f"fixed capacity {cents(pt['fixedCapacity'])} a month ({pt['savingVsFixedCapacityPercent']}% saving)")
    for item in doc.get("rightSizing") or []:
        lines.append(f"  right-size: pool {item['pool']} maxNodes {item['maxNodes']}, its tiers fill {item['fits']}")
    if doc.get("metricsStore"):
        m = doc["metricsStore"]
        lines.append("")
        lines.append(f"Metrics store ({m['store']}), what its fees assume:")
        lines.append(f"  tiers {', '.join(m['tiers'])}: {m['pods']['mean']} pods on average, {m['pods']['peak']} at the "
                     f"peak, x {m['seriesPerPod']} series a pod (im-platform:cost.metricsSeriesPerPod) = "
                     f"{m['series']['peak']:,} series at the peak")
        lines.append(f"  scraped every {m['scrapeIntervalSeconds']} s: {int(m['samplesIngestedPerMonth']):,} samples "
                     f"ingested a month; KEDA every {m['pollingIntervalSeconds']} s: {int(m['queriesPerMonth']):,} "
                     f"queries reading {int(m['querySamplesPerMonth']):,} samples a month")
    if doc.get("derived"):
        lines.append("")
        lines.append("Prices marked ~ are derived (estimates: no price table lists them in this region); the rest are list prices:")
        lines.extend(f"  {d['what']}: {d['rule']}" for d in doc["derived"])
    if "compare" in doc:
        lines.append("")
        lines.append("Compare (cheapest modeled first; * is this stack's cloud; ~ derived prices):")
        for row in doc["compare"]:
            ct = row["totals"]
            mark = "*" if row["current"] else " "
            lines.append(f" {mark}{row['cloud']:<6} {row['region']:<16} min {cents(ct['min']):>10}  "
                         f"modeled {cents(ct['modeled']):>10}  max {cents(ct['max']):>10}  "
                         f"fixed capacity {cents(ct['fixedCapacity']):>10}  saving {ct['savingVsFixedCapacityPercent']}% "
                         f"against fixed capacity, {ct['savingPercent']}% against max")
            lines.append("      types: " + ", ".join(f"{p['name']} {p['instanceTypes'][0]}{' (spot)' if p['spot'] else ''}"
                                               f"{' ~' if p.get('priceBasis') == 'derived' else ''}"
                                               for p in row["pools"]))
            lines.append("      fees: " + ", ".join(f"{f['name']} {cents(f['monthlyCost'])}" for f in row["fixed"]))
            lines.append(f"      spot: {row['spotBasis']}")
    if "change" in doc:
        lines.append("")
        lines.append("Change against base:")
        for p in doc["change"]["pools"] + [{"name": "total", **doc["change"]["totals"]}]:
            parts = []
            for k in ("min", "modeled", "max"):
                d = p[k]
                pct = f" ({'+' if not d['percent'].startswith('-') else ''}{d['percent']}%)" if d["percent"] is not None else " (new)"
                sign = "+" if not d["change"].startswith("-") else ""
                parts.append(f"{k} {cents(d['base'])} -> {cents(d['current'])} {sign}{cents(d['change'])}{pct}")
            lines.append(f"  {p['name']}: " + "; ".join(parts))
    if doc.get("notPriced"):
        lines.append("")
        lines.append("Not priced: " + "; ".join(f"{n['name']} ({n['reason']})" for n in doc["notPriced"]))
    return "\n".join(lines)


def chart(doc: Mapping[str, Any]) -> str:
    """The hourly modeled cost against fixed capacity as a Mermaid xychart (GitHub renders it)."""
    hourly_doc = doc.get("hourly")
    if doc.get("cloud") == KUBERNETES:
        return f"{doc['stack']}: an existing Kubernetes cluster, not priced (no node prices): no hourly chart"
    if not hourly_doc:
        return f"{doc['stack']}: no node pools, no hourly chart (its fees are {cents(doc['totals']['modeled'])} a month)"
    modeled = [cents(v).replace(",", "") for v in hourly_doc["modeled"]]
    fixed = cents(hourly_doc["fixedCapacity"]).replace(",", "")
    top = max([Decimal(fixed)] + [Decimal(v) for v in modeled])
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        f'    title "{doc["stack"]}: USD an hour, modeled (bars) against fixed capacity (line)"',
        '    x-axis "hour of the day (UTC)" [' + ", ".join(f'"{h:02d}"' for h in range(24)) + "]",
        f'    y-axis "USD an hour" 0 --> {top.quantize(Decimal("1"), model.ROUND_HALF_UP) + 1}',
        "    bar [" + ", ".join(modeled) + "]",
        "    line [" + ", ".join([fixed] * 24) + "]",
        "```",
    ])


# -- the command -------------------------------------------------------------------------------------

def stack_cost(stack: str | None, config_file: Path | None, *, compare_clouds: bool = False,
               regions: str | None = None, base: str | None = None, today: dt.date | None = None,
               warn: Callable[[str], None] | None = None, export: str | None = None) -> dict[str, Any]:
    """The `cost --json` document of one stack (ConfigError/PriceError on a bad config or price)."""
    from infra.config.loader import load_spec
    from infra.config.stackfiles import searching_beside
    from infra.offline.plan import plan_stack, project_name, read_stack_config, stack_file, stack_name_from_file
    from infra.traffic.config import is_traffic

    if regions and not compare_clouds:
        raise ConfigError("--regions", regions, "only with --compare (it names the regions the other clouds are priced in)")
    chosen = parse_regions(regions)
    base_doc = read_base(base) if base else None
    plan = plan_stack(stack, config_file)
    path = config_file or stack_file(plan.stack)
    project = project_name()
    values, _ = read_stack_config(path, project)
    name = plan.stack or stack_name_from_file(path) or ""
    # The traffic stack's pair (and a stack's DR peer) are looked up beside it, as `plan` does.
    with searching_beside(config_file):
        spec = traffic_pricing_spec(values, project, name) if is_traffic(values) else load_spec(values, project=project, stack=name)
    if export and (spec.cloud == KUBERNETES or not spec.node_pools):
        raise ConfigError("--export-catalog", export, f"stack {name} prices no node pools: there are no catalog rows to export")
    if spec.cloud == KUBERNETES:
        return existing_cluster_cost(spec, plan.resources, plan.warnings, compare_clouds=compare_clouds,
                                     base_doc=base_doc, warn=warn)
    if compare_clouds and not spec.node_pools:
        raise ConfigError("--compare", True, f"stack {name} is a traffic stack (no cluster): there is no spec to price on another cloud")
    counts = model.count_fixed(((r["type"], r.get("inputs") or {}) for r in plan.resources), [r["name"] for r in plan.resources])
    est, prices = price(spec, counts, spec.cloud, spec.region, today=today or dt.date.today())
    for line in plan.warnings:
        if warn:
            warn(f"warning: {line}")
    warning = catalog.stale_warning(prices, today)
    if warning and warn:
        warn(warning)
    doc = to_json(spec, est, prices, plan.resources)
    if export:
        write_catalog_rows(export, catalog_rows(est, prices), name)
    with_band(doc, spec, counts, prices, today or dt.date.today())
    fit = rightsize.fits([(p.name, p.vcpu, p.memory_gib, p.max_nodes) for p in spec.node_pools], plan.resources)
    doc["rightSizing"] = [{"pool": f.pool, "maxNodes": f.max_nodes, "fits": f.nodes_needed, "tiers": list(f.tiers)}
                          for f in fit if f.oversized]
    for f in fit:
        if f.oversized and warn:
            warn(f"warning: {f.warning(name)}")
    if spec.dr is not None:
        with searching_beside(config_file):
            doc["pair"] = pair_json(spec, doc, today or dt.date.today())
    if compare_clouds:
        doc["compare"] = compare(spec, counts, est, chosen, today or dt.date.today(), regions)
    if base_doc is not None:
        if "totals" not in base_doc:
            base_doc = price_plan_json(base_doc, spec)
        check_base(base_doc, doc)
        doc["change"] = base_change(base_doc, doc)
    return doc


PAIR_KEYS = ("min", "modeled", "max", "fixedCapacity")


def pair_json(spec: ClusterSpec, doc: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """A DR pair member's cost with its peer's: each member as it runs now (a standby simulated as a
    standby: no load, its floors) and the pair's total a month. The peer is priced from the plan
    already run for its StackReference, else planned here."""
    from infra.config.loader import load_spec
    from infra.config.stackfiles import find_stack_file
    from infra.offline.plan import plan_stack, project_name, read_stack_config, referenced_plan

    assert spec.dr is not None
    peer = spec.dr.peer
    path = find_stack_file(peer)
    if path is None:
        raise ConfigError("im-platform:dr.peer", peer, "expected the peer's stack file beside this one "
                                                       "(stacks/Pulumi.<peer>.yaml): the pair's cost needs it")
    project = project_name()
    plan = referenced_plan(peer) or plan_stack(peer, path)
    values, _ = read_stack_config(path, project)
    peer_spec = load_spec(values, project=project, stack=peer)
    counts = model.count_fixed(((r["type"], r.get("inputs") or {}) for r in plan.resources), [r["name"] for r in plan.resources])
    if peer_spec.cloud == KUBERNETES:
        peer_totals = existing.to_json(peer_spec, plan.resources)["totals"]
    else:
        est, _ = price(peer_spec, counts, peer_spec.cloud, peer_spec.region, today=today)
        peer_totals = totals_json(est)
    members: list[dict[str, Any]] = [
        {"stack": spec.stack, "cloud": spec.cloud, "region": spec.region, "role": spec.dr.role,
         "totals": {k: doc["totals"].get(k, "0") for k in PAIR_KEYS}},
        {"stack": peer, "cloud": peer_spec.cloud, "region": peer_spec.region,
         "role": peer_spec.dr.role if peer_spec.dr else "", "totals": {k: peer_totals.get(k, "0") for k in PAIR_KEYS}},
    ]
    totals = {k: model.money(sum((Decimal(str(m["totals"][k])) for m in members), Decimal(0))) for k in PAIR_KEYS}
    totals["savingVsFixedCapacityPercent"] = str(model.percent_below(Decimal(totals["fixedCapacity"]),
                                                                     Decimal(totals["modeled"])))
    return {"members": members, "totals": totals}


def existing_cluster_cost(spec: ClusterSpec, resources: Sequence[Mapping[str, Any]], plan_warnings: Sequence[str], *,
                          compare_clouds: bool, base_doc: Mapping[str, Any] | None,
                          warn: Callable[[str], None] | None) -> dict[str, Any]:
    """A kubernetes stack: not priced (infra.cost.existing), its change against a base all the same."""
    if compare_clouds:
        raise ConfigError("--compare", True, f"stack {spec.stack} is a {KUBERNETES} stack (an existing cluster): its nodes "
                                             "are not the program's, so there are no node pools to price on a cloud")
    for line in plan_warnings:
        if warn:
            warn(f"warning: {line}")
    doc = existing.to_json(spec, resources)
    if base_doc is not None:
        if "totals" not in base_doc:
            base_doc = existing.plan_base(base_doc, spec)
        check_base(base_doc, doc)
        doc["change"] = base_change(base_doc, doc)
    return doc


def traffic_pricing_spec(values: Mapping[str, Any], project: str, stack: str) -> ClusterSpec:
    """A traffic stack priced as what it is: no cluster and no node pools, only the fixed fees its
    plan declares (Route 53 health checks) in its DNS provider's cloud and region."""
    from infra.traffic.config import load_traffic

    traffic = load_traffic(values, project=project, stack=stack)
    return ClusterSpec(project=project, stack=stack, cloud="aws", environment=traffic.environment or "traffic",
                       region=traffic.region, node_pools=())


def monthly_max(spec: ClusterSpec, resources: Sequence[tuple[str, Mapping[str, Any]]]) -> Decimal:
    """The stack's `max` (what im-platform:guardrails.maxMonthlyCost holds), from its resources."""
    est, _ = price(spec, model.count_fixed(resources), spec.cloud, spec.region, today=dt.date.today(), simulate=False)
    return est.max


def cmd_cost(args: argparse.Namespace) -> int:
    doc = stack_cost(args.stack, Path(args.config_file) if args.config_file else None,
                     compare_clouds=args.compare, regions=args.regions, base=args.base,
                     warn=lambda m: print(m, file=sys.stderr), export=args.export_catalog)
    if args.export_catalog:
        print(f"wrote the catalog rows of {doc['stack']} ({doc['cloud']} {doc['region']}) to {args.export_catalog}",
              file=sys.stderr)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.chart:
        print(chart(doc))
    else:
        print(render(doc))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cost", help="what a stack costs a month: min, modeled on the load curve, max, fixed capacity")
    p.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    p.add_argument("--config-file", help="read this stack file instead")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (Infracost field names)")
    p.add_argument("--chart", action="store_true",
                   help="a Mermaid xychart of the hourly modeled cost against fixed capacity (Markdown)")
    p.add_argument("--compare", action="store_true", help="price the same spec on AWS, GCP and Azure")
    p.add_argument("--regions", help="with --compare, in these regions: aws=R,gcp=R,azure=R (any of them)")
    p.add_argument("--base", help="an earlier cost --json (or plan --json) of this stack: the change per pool and in total")
    p.add_argument("--export-catalog", metavar="FILE",
                   help="write the price rows this stack uses to FILE: an override catalog to edit (im-platform:cost.catalog)")
    p.set_defaults(func=cmd_cost)
