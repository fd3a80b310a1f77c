"""`python -m infra.cli cost`: what a stack costs a month, on its cloud or on all three.

    python -m infra.cli cost --stack NAME [--config-file FILE] [--json] [--compare]
                             [--regions aws=R,gcp=R,azure=R] [--base FILE]

`--base` takes an earlier `cost --json`, or a `plan --json` (priced with this stack's curve and catalog).

Plans the stack offline once (the fixed fees are counted from the resources it really declares),
then prices its validated spec with `infra.cost.model`. `--compare` prices the same spec on the
other clouds without planning them again: each cloud's shape lookup picks the types, the region
comes from EQUIVALENT_REGIONS (or --regions), and the fixed-fee counts follow OTHER_CLOUD_FEES.
Exit status: 0; 2 on a configuration error or a missing price; 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from components import shapes
from components.spec import CLOUDS, ClusterSpec
from infra.config.errors import ConfigError
from infra.cost import catalog, model

EXIT_OK = 0

# Equivalent regions: the nearest catalog region of each cloud to a region of another. The first
# group naming the stack's region gives the others; a region in no group needs --regions.
REGION_GROUPS: tuple[dict[str, str], ...] = (
    {"aws": "us-east-1", "gcp": "us-east1", "azure": "eastus"},                 # Virginia / South Carolina
    {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"},              # Iowa: the nearest listed
    {"aws": "us-west-2", "gcp": "us-west1", "azure": "westus2"},                # Oregon / Washington
    {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "northeurope"},        # Ireland / Belgium
    {"aws": "eu-west-1", "gcp": "europe-west4", "azure": "westeurope"},         # Netherlands
    {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "uksouth"},            # London: the nearest listed
    {"aws": "eu-central-1", "gcp": "europe-west3", "azure": "westeurope"},      # Frankfurt
    {"aws": "ap-northeast-1", "gcp": "asia-northeast1", "azure": "japaneast"},  # Tokyo
    {"aws": "ap-northeast-1", "gcp": "asia-east1", "azure": "eastasia"},        # Taiwan / Hong Kong
    {"aws": "ap-southeast-1", "gcp": "asia-east1", "azure": "southeastasia"},   # Singapore
)


def equivalent_region(cloud: str, region: str, other: str) -> str:
    for group in REGION_GROUPS:
        if group.get(cloud) == region:
            return group[other]
    raise catalog.PriceError("--regions", f"{cloud}={region}",
                             f"no equivalent {other} region is known for {region}; pass --regions {other}=REGION")


def other_cloud_counts(counts: model.FixedCounts, cloud: str, spec: ClusterSpec) -> model.FixedCounts:
    """OTHER_CLOUD_FEES: the fixed-fee counts the same spec declares on another cloud, by the rules
    of components/*.py: one cluster; NAT gateways one per zone on AWS prod (three; one elsewhere),
    one Cloud NAT on GCP, one NAT gateway on Azure; the AKS control plane on the Standard tier in
    prod, Free otherwise; public load balancers, keys and health checks as this stack's plan counts them."""
    nat = 0
    if counts.nat_gateways:
        nat = (3 if spec.is_prod else 1) if cloud == "aws" else 1
    tier = ("standard" if spec.is_prod else "free") if cloud == "azure" else "standard"
    return model.FixedCounts(clusters=counts.clusters, control_plane_tier=tier, nat_gateways=nat,
                             load_balancers=counts.load_balancers, kms_keys=counts.kms_keys,
                             health_checks=counts.health_checks)


def pool_inputs(spec: ClusterSpec, cloud: str | None = None) -> list[model.PoolInput]:
    """The spec's pools; on another cloud, with that cloud's types for the same shape."""
    found = []
    for p in spec.node_pools:
        types = p.machine_types
        if cloud and cloud != spec.cloud:
            try:
                types = shapes.machine_types(cloud, p.vcpu, p.memory_gib, p.spot)
            except shapes.ShapeError as exc:
                raise ConfigError(f"im-platform:cluster.nodePools.{p.name}", f"{p.vcpu} vCPU / {p.memory_gib} GiB",
                                  f"--compare cannot price it on {cloud}: {exc}") from None
        found.append(model.PoolInput(p.name, types, p.spot, p.min_nodes, p.max_nodes))
    return found


def price(spec: ClusterSpec, counts: model.FixedCounts, cloud: str, region: str) -> tuple[model.Estimate, catalog.RegionPrices]:
    prices = catalog.region_prices(cloud, region, spec.cost.catalog)
    est = model.estimate(pool_inputs(spec, cloud), counts, prices, spec.cost.curve, spec.cost.egress_gib_per_month)
    return est, prices


def totals_json(est: model.Estimate) -> dict[str, str]:
    return {"min": model.money(est.min), "modeled": model.money(est.modeled), "max": model.money(est.max),
            "savingPercent": str(est.saving_percent)}


def to_json(spec: ClusterSpec, est: model.Estimate, prices: catalog.RegionPrices) -> dict[str, Any]:
    return {
        "stack": spec.stack, "cloud": spec.cloud, "region": spec.region, "currency": "USD",
        "catalog": {"as_of": prices.oldest.isoformat(), "sources": list(prices.sources)},
        "pools": [{"name": p.name, "instanceTypes": list(p.instance_types), "spot": p.spot,
                   "minNodes": p.min_nodes, "maxNodes": p.max_nodes, "nodeHourlyCost": model.money(p.node_hourly),
                   "monthlyCost": {"min": model.money(p.at_min), "modeled": model.money(p.modeled),
                                   "max": model.money(p.at_max)}} for p in est.pools],
        "fixed": [{"name": f.name, "monthlyQuantity": model.money(f.quantity).removesuffix(".00"), "unit": f.unit,
                   "price": model.money(f.price), "monthlyCost": model.money(f.monthly)} for f in est.fixed],
        "totals": totals_json(est),
    }


def parse_regions(text: str | None) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        cloud, _, region = item.partition("=")
        if cloud not in CLOUDS or not region:
            raise ConfigError("--regions", text, "expected aws=REGION,gcp=REGION,azure=REGION (any of the three)")
        chosen[cloud] = region
    return chosen


def compare(spec: ClusterSpec, counts: model.FixedCounts, own: model.Estimate,
            regions: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = []
    for cloud in CLOUDS:
        if cloud == spec.cloud and cloud not in regions:
            region, est = spec.region, own
        else:
            region = regions.get(cloud) or equivalent_region(spec.cloud, spec.region, cloud)
            cloud_counts = counts if cloud == spec.cloud else other_cloud_counts(counts, cloud, spec)
            est, _ = price(spec, cloud_counts, cloud, region)
        rows.append((est.modeled, {"cloud": cloud, "region": region, "totals": totals_json(est)}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


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
    counts = model.count_fixed((r["type"], r.get("inputs") or {}) for r in resources)
    prices = catalog.region_prices(cloud, region, spec.cost.catalog)
    est = model.estimate(pools, counts, prices, spec.cost.curve, spec.cost.egress_gib_per_month)
    return {"pools": [{"name": p.name, "monthlyCost": {"min": model.money(p.at_min), "modeled": model.money(p.modeled),
                                                       "max": model.money(p.at_max)}} for p in est.pools],
            "totals": totals_json(est)}


# -- text ------------------------------------------------------------------------------------------------

def cents(text: str) -> str:
    """A JSON amount (exact) shown to the cent in the text table."""
    return f"{Decimal(text).quantize(Decimal('0.01')):,}"


def render(doc: Mapping[str, Any]) -> str:
    lines = [f"Stack {doc['stack']}: {doc['cloud']} {doc['region']}, USD a month (730 h), "
             f"catalog of {doc['catalog']['as_of']}"]
    header = ("pool", "type", "spot", "nodes", "$/node-hour", "at min", "modeled", "at max")
    rows = [header]
    for p in doc["pools"]:
        types = p["instanceTypes"][0] + (f" +{len(p['instanceTypes']) - 1}" if len(p["instanceTypes"]) > 1 else "")
        rows.append((p["name"], types, "spot" if p["spot"] else "-", f"{p['minNodes']}..{p['maxNodes']}",
                     p["nodeHourlyCost"], cents(p["monthlyCost"]["min"]), cents(p["monthlyCost"]["modeled"]),
                     cents(p["monthlyCost"]["max"])))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    if not doc["pools"]:
        rows = []
        lines.append("  no node pools (a traffic stack: no cluster)")
    for r in rows:
        lines.append("  " + "  ".join(str(c).ljust(w) if i < 4 else str(c).rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    if doc["fixed"]:
        lines.append("")
        lines.append("Fixed fees:")
        width = max(len(f["name"]) for f in doc["fixed"])
        for f in doc["fixed"]:
            lines.append(f"  {f['name']:<{width}}  {f['monthlyQuantity']} {f['unit']} x {f['price']} = {cents(f['monthlyCost'])}")
    t = doc["totals"]
    lines.append("")
    lines.append(f"Total: min {cents(t['min'])}  modeled {cents(t['modeled'])}  max {cents(t['max'])}  "
                 f"(modeled saves {t['savingPercent']}% against max)")
    if "compare" in doc:
        lines.append("")
        lines.append("Compare (cheapest modeled first):")
        for row in doc["compare"]:
            ct = row["totals"]
            lines.append(f"  {row['cloud']:<6} {row['region']:<16} min {cents(ct['min']):>10}  modeled {cents(ct['modeled']):>10}  "
                         f"max {cents(ct['max']):>10}  saving {ct['savingPercent']}%")
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
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------------------

def stack_cost(stack: str | None, config_file: Path | None, *, compare_clouds: bool = False,
               regions: str | None = None, base: str | None = None, today: dt.date | None = None,
               warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The `cost --json` document of one stack (ConfigError/PriceError on a bad config or price)."""
    from infra.config.loader import load_spec
    from infra.offline.plan import plan_stack, project_name, read_stack_config, stack_file, stack_name_from_file
    from infra.traffic.config import is_traffic

    chosen = parse_regions(regions)
    base_doc = read_base(base) if base else None
    plan = plan_stack(stack, config_file)
    path = config_file or stack_file(plan.stack)
    project = project_name()
    values, _ = read_stack_config(path, project)
    name = plan.stack or stack_name_from_file(path) or ""
    spec = traffic_pricing_spec(values, project, name) if is_traffic(values) else load_spec(values, project=project, stack=name)
    if compare_clouds and not spec.node_pools:
        raise ConfigError("--compare", True, f"stack {name} is a traffic stack (no cluster): there is no spec to price on another cloud")
    counts = model.count_fixed((r["type"], r.get("inputs") or {}) for r in plan.resources)
    est, prices = price(spec, counts, spec.cloud, spec.region)
    warning = catalog.stale_warning(prices, today)
    if warning and warn:
        warn(warning)
    doc = to_json(spec, est, prices)
    if compare_clouds:
        doc["compare"] = compare(spec, counts, est, chosen)
    if base_doc is not None:
        if "totals" not in base_doc:
            base_doc = price_plan_json(base_doc, spec)
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
    est, _ = price(spec, model.count_fixed(resources), spec.cloud, spec.region)
    return est.max


def cmd_cost(args: argparse.Namespace) -> int:
    doc = stack_cost(args.stack, Path(args.config_file) if args.config_file else None,
                     compare_clouds=args.compare, regions=args.regions, base=args.base,
                     warn=lambda m: print(m, file=sys.stderr))
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(doc))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cost", help="what a stack costs a month: min, modeled on the load curve, max")
    p.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    p.add_argument("--config-file", help="read this stack file instead")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (Infracost field names)")
    p.add_argument("--compare", action="store_true", help="price the same spec on AWS, GCP and Azure")
    p.add_argument("--regions", help="--compare in these regions: aws=R,gcp=R,azure=R (any of them)")
    p.add_argument("--base", help="an earlier cost --json (or plan --json): print the change per pool and in total")
    p.set_defaults(func=cmd_cost)
