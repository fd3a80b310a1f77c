"""Regenerate the price catalog from the machine-generated price tables it is sourced from.

    venv/bin/python -m infra.cost.generate_catalog --aws zz_generated.pricing_aws.go --aws-regional vms.csv \
        --gcp-pricing pricing.yml --azure zz_generated.pricing.go

--aws: github.com/aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go (us-east-1);
--aws-regional: github.com/skypilot-org/skypilot-catalog catalogs/v7/aws/vms.csv (per region and zone,
  from the AWS Price List API; only the reference rows REF_TYPES are read, so an excerpt of those
  rows gives the same catalog);
--gcp-pricing: github.com/Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml (per region:
  on-demand and spot per machine type, disks, in-use IPv4, Cloud NAT);
--azure: github.com/Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go.

Every public region of each cloud is written (infra/cost/regions.yaml lists them, with where they
are): one file per region in catalog/<cloud>/, plus catalog/<cloud>.yaml for what is the same in
every region. A figure the tables list is written under `instances` / `fixed`; a figure no table
lists is derived by a rule written into the region's `derivation` and kept apart (`derivedInstances`,
`derivedFees`), so `cost` can say which prices are list prices and which are estimates.
The fees below (EXTRAS) come from the vendors' pricing pages (named in each block).
"""
# ruff: noqa
# mypy: ignore-errors
import argparse
import csv
import datetime as dt
import math
import re
import shutil
from decimal import Decimal as D, ROUND_HALF_UP
from pathlib import Path

import yaml

from infra.cost import locations

_args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_args.add_argument("--aws", required=True, help="karpenter-provider-aws zz_generated.pricing_aws.go")
_args.add_argument("--aws-regional", required=True, help="skypilot-catalog catalogs/v7/aws/vms.csv (or its reference rows)")
_args.add_argument("--azure", required=True, help="karpenter-provider-azure zz_generated.pricing.go")
_args.add_argument("--gcp-pricing", required=True, help="pricing.yml of github.com/Cyclenerd/google-cloud-pricing-cost-calculator")
ARGS = _args.parse_args()
HERE = Path(__file__).resolve().parent
OUT = HERE / "catalog"
Q = D("0.0001")
def q(x): return str(D(x).quantize(Q, ROUND_HALF_UP))
def q6(x): return str(D(x).quantize(D("0.000001"), ROUND_HALF_UP))
def listed(x): return format(D(str(x)).normalize(), "f")  # a source's figure as it is written there

LOC = yaml.safe_load((HERE / "regions.yaml").read_text())["regions"]


def distance_km(a, b):
    return locations.distance_km(a, b)


def nearest(cloud, region, among):
    """The region of `among` nearest to `region` (regions.yaml coordinates); ties by name."""
    return locations.nearest(cloud, region, cloud, among)[0]


GCP_REGIONS = sorted(LOC["gcp"])
# One list price in every region (Route 53 is a global service; AWS bills public IPv4 the same
# everywhere): never derived.
GLOBAL_FEES = {"aws": ("publicIpv4Hourly", "healthCheckAwsMonthly", "healthCheckNonAwsMonthly",
                       "healthCheckFeatureAwsMonthly", "healthCheckFeatureNonAwsMonthly")}


# ---------------- EXTRAS: every fee beyond the instance tables, per cloud, each with its source.
EXTRAS_AS_OF = "2026-12-04"
T = lambda *rows: [{"upToGB": None if n is None else str(n), "perGB": p} for n, p in rows]
AWS_EGRESS = T((10240, "0.09"), (40960, "0.085"), (102400, "0.07"), (None, "0.05"))
EXTRAS = {
    "aws": {
        "controlPlane": {"source": "https://aws.amazon.com/eks/pricing/", "as_of": EXTRAS_AS_OF,
                         "hourly": {"standard": "0.10", "extended": "0.60"}},
        "commitment": {"source": "https://aws.amazon.com/savingsplans/compute-pricing/ (Compute Savings Plans, no upfront, c7i/m7i)",
                       "as_of": EXTRAS_AS_OF, "discount": {"1y": "0.27", "3y": "0.50"}},
        "spotBand": {"source": "https://aws.amazon.com/ec2/spot/instance-advisor/ (savings over on-demand, c/m/r 6th-7th generation, EU and US regions)",
                     "as_of": EXTRAS_AS_OF, "low": "0.50", "typical": "0.60", "high": "0.70"},
        # The managed metrics store (infra/cost/metrics.py): its price keys, where they are priced, and
        # what the vendor"s page gave.
        "metricsStore": {"source": "https://aws.amazon.com/prometheus/pricing/", "as_of": "2026-12-05",
                         "pricedPer": "region", "keys": ["prometheusSamplesIngestedPer10M", "prometheusQuerySamplesPerBillion", "prometheusStorageGBMonth", "prometheusScraperHourly", "prometheusScraperSamplesPer10M"],
                         "listed": "none: the page names what is billed (samples ingested, query samples processed, storage in GB-months, the collector by the hour and per sample collected) and its free tier (40 M samples ingested, 200 B query samples processed, 10 GB stored), not the prices; the fixed block of each region takes them from an override catalog"},
        "regions": {
            r: {"fixed": {
                "publicIpv4Hourly": "0.005", "loadBalancerCapacityUnitHourly": lcu,
                "healthCheckAwsMonthly": "0.50", "healthCheckNonAwsMonthly": "0.75",
                "healthCheckFeatureAwsMonthly": "1.00", "healthCheckFeatureNonAwsMonthly": "2.00",
                "disk": {"gp3": gp3, "gp2": gp2},
                "internetEgress": egress,
                "extrasSource": ["https://aws.amazon.com/vpc/pricing/ (public IPv4)",
                                 "https://aws.amazon.com/elasticloadbalancing/pricing/ (NLCU)",
                                 "https://aws.amazon.com/route53/pricing/ (health checks)",
                                 "https://aws.amazon.com/ebs/pricing/ (gp3, gp2 per GB-month)",
                                 "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer (internet egress)"],
                "extrasAsOf": EXTRAS_AS_OF}}
            for r, lcu, gp3, gp2, egress in (
                ("us-east-1", "0.006", "0.08", "0.10", AWS_EGRESS), ("us-west-2", "0.006", "0.08", "0.10", AWS_EGRESS),
                ("eu-west-1", "0.006", "0.088", "0.11", AWS_EGRESS), ("eu-central-1", "0.006", "0.0952", "0.119", AWS_EGRESS),
                ("ap-northeast-1", "0.006", "0.096", "0.12", T((10240, "0.114"), (40960, "0.089"), (102400, "0.086"), (None, "0.084"))),
                ("ap-southeast-1", "0.006", "0.096", "0.12", T((10240, "0.12"), (40960, "0.085"), (102400, "0.082"), (None, "0.08"))))},
    },
    "gcp": {
        "controlPlane": {"source": "https://cloud.google.com/kubernetes-engine/pricing (extended support: $0.50 a cluster-hour on top)",
                         "as_of": EXTRAS_AS_OF, "hourly": {"standard": "0.10", "extended": "0.60"}},
        "commitment": {"source": "https://cloud.google.com/compute/docs/instances/committed-use-discounts-overview (resource-based, N2)",
                       "as_of": EXTRAS_AS_OF, "discount": {"1y": "0.37", "3y": "0.55"}},
        # No spotBand here: the table lists GCP's spot prices, and the band is their range (below).
        # The managed metrics store (infra/cost/metrics.py): its price keys, where they are priced, and
        # what the vendor"s page gave.
        "metricsStore": {"source": "https://cloud.google.com/stackdriver/pricing (Cloud Monitoring: Managed Service for Prometheus)", "as_of": "2026-12-05",
                         "pricedPer": "one price in every region", "keys": ["prometheusSamplesIngestedPerMillion", "prometheusReadCallsPerMillion"],
                         "listed": "none: the vendor pages say Managed Service for Prometheus bills samples ingested and Monitoring API read requests (https://cloud.google.com/stackdriver/docs/managed-prometheus/cost-controls), not the prices; the fixed block of each region takes them from an override catalog"},
        "regions": {
            r: {"fixed": {
                # Disks, in-use IPv4 and Cloud NAT come with the instance table (--gcp-pricing).
                "loadBalancerPerGiB": "0.008",
                "internetEgress": T((1024, "0.12"), (9216, "0.11"), (None, "0.08")),
                "extrasSource": ["https://cloud.google.com/vpc/network-pricing#lb (data processed)",
                                 "https://cloud.google.com/vpc/network-pricing#internet_egress (Premium Tier)"],
                "extrasAsOf": EXTRAS_AS_OF}}
            for r in GCP_REGIONS},
    },
    "azure": {
        "controlPlane": {"source": "https://azure.microsoft.com/pricing/details/kubernetes-service/ (Premium: long-term support)",
                         "as_of": EXTRAS_AS_OF, "hourly": {"free": "0", "standard": "0.10", "premium": "0.60"}},
        "commitment": {"source": "https://azure.microsoft.com/pricing/reserved-vm-instances/ (Dsv5/Esv5/Fsv2, typical)",
                       "as_of": EXTRAS_AS_OF, "discount": {"1y": "0.36", "3y": "0.57"}},
        "spotBand": {"source": "https://azure.microsoft.com/pricing/spot-advisor/ (eviction rate and savings per size, 55-90%)",
                     "as_of": EXTRAS_AS_OF, "low": "0.55", "typical": "0.65", "high": "0.80"},
        # The managed metrics store (infra/cost/metrics.py): its price keys, where they are priced, and
        # what the vendor"s page gave.
        "metricsStore": {"source": "https://azure.microsoft.com/pricing/details/monitor/ (Metrics: Prometheus)", "as_of": "2026-12-05",
                         "pricedPer": "region", "keys": ["prometheusSamplesIngestedPer10M", "prometheusQuerySamplesPer10M"],
                         "listed": "none: the vendor pages say managed Prometheus is billed by ingestion and queries with no storage charge (https://learn.microsoft.com/azure/azure-monitor/metrics/prometheus-metrics-overview), not the prices; the fixed block of each region takes them from an override catalog"},
        "regions": {
            r: {"fixed": {
                "publicIpv4Hourly": "0.005", "loadBalancerPerGiB": "0.005",
                # A P10 Premium SSD (128 GiB) is $19.71 a month: per GiB 19.71 / 128.
                "disk": {"managed-premium-ssd": "0.1540"},
                "internetEgress": egress,
                "extrasSource": ["https://azure.microsoft.com/pricing/details/ip-addresses/ (Standard static)",
                                 "https://azure.microsoft.com/pricing/details/load-balancer/ (data processed)",
                                 "https://azure.microsoft.com/pricing/details/managed-disks/ (P10)",
                                 "https://azure.microsoft.com/pricing/details/bandwidth/ (internet egress, Microsoft network)"],
                "extrasAsOf": EXTRAS_AS_OF}}
            for r, egress in [(r, T((100, "0"), (10240, "0.087"), (40960, "0.083"), (102400, "0.07"), (None, "0.05")))
                              for r in ("eastus", "westus2", "westeurope", "northeurope", "uksouth")] +
                             [(r, T((100, "0"), (10240, "0.12"), (40960, "0.085"), (102400, "0.082"), (None, "0.08")))
                              for r in ("japaneast", "eastasia", "southeastasia")]},
    },
}




def apply_extras(name, doc, region, block, listed_regions):
    """The fees of EXTRAS: a region EXTRAS lists gets its own; any other the nearest listed region's,
    marked derived (`derivedFees`, with the rule in `derivation.fees`)."""
    extra = EXTRAS[name]
    fixed = block.setdefault("fixed", {})
    if region in extra["regions"]:
        fixed.update(extra["regions"][region]["fixed"])
        return
    near = nearest(name, region, listed_regions)
    fees = extra["regions"][near]["fixed"]
    fixed.update(fees)
    keys = sorted(f"disk.{d}" for d in fees.get("disk", {})) + sorted(
        k for k in fees if k not in ("extrasSource", "extrasAsOf", "disk") and k not in GLOBAL_FEES.get(name, ()))
    block.setdefault("derivedFees", [])
    block["derivedFees"] = sorted(set(block["derivedFees"]) | set(keys))
    block.setdefault("derivation", {})["fees"] = (
        f"no listed figure for {region}: {', '.join(block['derivedFees'])} are those of {near}, the nearest region "
        f"with listed figures ({round(distance_km(LOC[name][region], LOC[name][near])):,} km away)")


def write(name, doc, regions):
    """catalog/<cloud>.yaml (what every region shares, and the region names) and one file per region."""
    head = ("# Price catalog ({}): hourly USD list prices, Linux, as decimal strings, generated by\n"
            "# venv/bin/python -m infra.cost.generate_catalog from the sources named in each block; `as_of` is the date of\n"
            "# the source. Each region's prices are in {}/<region>.yaml. See docs/cost.md.\n")
    shared = {k: v for k, v in doc.items() if k != "regions"}
    shared["regions"] = sorted(regions)
    with open(OUT / f"{name}.yaml", "w") as fh:
        fh.write(head.format(name, name))
        yaml.safe_dump(shared, fh, sort_keys=False, width=200)
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for region, block in regions.items():
        with open(folder / f"{region}.yaml", "w") as fh:
            fh.write(f"# {name} {region}: prices of this region (see ../{name}.yaml and docs/cost.md).\n")
            yaml.safe_dump(block, fh, sort_keys=False, width=200)


# ---------------- AWS
src = open(ARGS.aws).read()
K_AS_OF = re.search(r"generated at (\d{4}-\d\d-\d\d)", src).group(1)
useast = dict((k, v) for k, v in re.findall(r'"([a-z0-9-]+\.[a-z0-9]+)": ([0-9.]+)', src))
fams = ["c7i","c6i","c6a","c7a","m7i","m6i","m6a","m7a","r7i","r6i","r6a","r7a"]
sizes = ["large","xlarge","2xlarge","4xlarge","8xlarge","12xlarge","16xlarge","24xlarge"]
# Types users commonly set with instanceType: every size of these families (metal excluded).
extra_fams = ["c5","c5a","c6g","c7g","m5","m5a","m6g","m7g","r5","r5a","r6g","r7g","t3","t3a","t4g","m7i-flex"]
aws_types = [f"{f}.{s}" for f in fams for s in sizes] + [
    t for f in extra_fams for t in sorted(k for k in useast if k.split(".")[0] == f and "metal" not in k)]
# The regional table's reference rows: a class's ratio in a region is its reference type's price
# there over us-east-1's. Memory-optimized (r) and burstable (t) families follow the m ratio (no r
# row is read); a region without a c row uses its m ratio for c too.
REF_TYPES = {"c": "c6i.2xlarge", "m": "m6i.2xlarge"}
rows = {}
with open(ARGS.aws_regional, newline="") as fh:
    for row in csv.DictReader(fh):
        if row["InstanceType"] in REF_TYPES.values() and row["Price"]:
            rows[(row["InstanceType"], row["Region"])] = D(row["Price"])
SKY = "github.com/skypilot-org/skypilot-catalog catalogs/v7/aws/vms.csv (commit 001367d, read 2026-12-05; generated daily from the AWS Price List API)"
SKY_AS_OF = "2026-12-05"
KSRC = f"github.com/aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go (us-east-1, generated {K_AS_OF})"
priced = sorted({r for (_, r) in rows})
# Fees typed from the AWS pricing pages for these regions: NAT gateway (hourly = per GB) and NLB hourly.
aws_fees = {
    "us-east-1": ("0.045", "0.0225"), "us-west-2": ("0.045", "0.0225"), "eu-west-1": ("0.048", "0.0252"),
    "eu-central-1": ("0.052", "0.0270"), "ap-northeast-1": ("0.062", "0.0243"), "ap-southeast-1": ("0.059", "0.0252"),
}
aws = {"cloud": "aws", "currency": "USD", "as_of": K_AS_OF}
aws_regions = {}
for r in sorted(LOC["aws"]):
    basis = r if r in priced else nearest("aws", r, priced)
    ratio = {}
    for cls, ref in REF_TYPES.items():
        here = rows.get((ref, basis)) or rows.get((REF_TYPES["m"], basis))
        base = rows.get((ref, "us-east-1")) if (ref, basis) in rows else rows[(REF_TYPES["m"], "us-east-1")]
        ratio[cls] = here / base
    def cls_of(t):
        return "c" if t[0] == "c" else "m"
    inst, derived = {}, {}
    for t in aws_types:
        if r == "us-east-1":
            inst[t] = q(useast[t])
        elif (t, r) in rows:
            inst[t] = q(rows[(t, r)])
        else:
            derived[t] = q(D(useast[t]) * ratio[cls_of(t)])
    block = {"source": [KSRC, SKY], "as_of": K_AS_OF if r == "us-east-1" else min(K_AS_OF, SKY_AS_OF),
             # Spot prices move hourly and have no static list: the cloud's spot band (below).
             "spotDiscount": "0.60", "instances": inst}
    if derived:
        block["derivedInstances"] = derived
        refs = ", ".join(f"{ref} {listed(rows[(ref, basis)])}" for ref in REF_TYPES.values() if (ref, basis) in rows)
        where = (f"{r}'s" if basis == r else
                 f"{basis}'s ({r} is in no regional table; {basis} is the nearest region that is, "
                 f"{round(distance_km(LOC['aws'][r], LOC['aws'][basis])):,} km away)")
        block["derivation"] = {"instances": (
            f"us-east-1 list price (Karpenter's table) x {where} ratio to us-east-1 in the regional table: "
            f"c families x {q6(ratio['c'])} (c6i.2xlarge), m, r and t families x {q6(ratio['m'])} (m6i.2xlarge); "
            f"reference rows {refs} against us-east-1's {', '.join(listed(rows[(ref, 'us-east-1')]) for ref in REF_TYPES.values())}")}
    fee_region = r if r in aws_fees else nearest("aws", r, aws_fees)
    nat, nlb = aws_fees[fee_region]
    block["fixed"] = {"source": ['https://aws.amazon.com/vpc/pricing/', 'https://aws.amazon.com/elasticloadbalancing/pricing/',
                                'https://aws.amazon.com/kms/pricing/', 'https://aws.amazon.com/route53/pricing/'],
                      "as_of": K_AS_OF, "natGatewayHourly": nat, "natGatewayPerGiB": nat, "loadBalancerHourly": nlb,
                      "kmsKeyMonthly": "1.00", "healthCheckMonthly": "0.75"}
    if fee_region != r:
        block["derivedFees"] = ["loadBalancerHourly", "natGatewayHourly", "natGatewayPerGiB"]
    aws_regions[r] = block
for r, block in aws_regions.items():
    apply_extras("aws", aws, r, block, list(EXTRAS["aws"]["regions"]))
aws.update({k: EXTRAS["aws"][k] for k in ("controlPlane", "commitment", "spotBand", "metricsStore")})
write("aws", aws, aws_regions)

# ---------------- GCP
# Per region and machine type, on-demand (`hour`) and spot (`hour_spot`) from the Cyclenerd table,
# generated from the Cloud Billing Catalog API; its disks, in-use IPv4 and Cloud NAT too.
gp = yaml.load(open(ARGS.gcp_pricing), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
# "Thu Jul 30 06:13:17 2026": the day the table was generated is the date of its prices.
GP_AS_OF = dt.datetime.strptime(gp["about"]["generated"], "%a %b %d %H:%M:%S %Y").date().isoformat()
GP_TABLE = (f"github.com/Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml (generated {GP_AS_OF} "
            f"from the Cloud Billing Catalog API)")
GP_SRC = GP_TABLE + ": on-demand and spot per machine type and region"
gp_inst, gp_store, gp_net = gp["compute"]["instance"], gp["compute"]["storage"], gp["compute"]["network"]
SHAPES = [f"n2-{k}-{n}" for k in ("highcpu","standard","highmem") for n in (2,4,8,16,32,48,64,80,96)]
gtypes = SHAPES + sorted(t for t in gp_inst if t not in SHAPES and re.match(
    r"^(e2|n1|n2|n2d|c2|c2d|c3|t2d|n4)-(standard|highcpu|highmem)-\d+$|^e2-(micro|small|medium)$", t))
def gp_cost(t, r):
    """The source's row of type t in region r: (on-demand, spot), or None where it lists no such type there."""
    c = (gp_inst.get(t) or {}).get("cost", {}).get(r) or {}
    return (D(str(c["hour"])), D(str(c["hour_spot"]))) if "hour" in c and "hour_spot" in c else None
REF = "n2-standard-8"
# github.com/kubernetes/autoscaler cluster-autoscaler/cloudprovider/gce/gce_price_info.go: us-central1's
# N2 rates a vCPU-hour and a GiB-hour, predefined and custom.
N2_RATES = {"predefined": ("0.031611", "0.004237"), "custom": ("0.033174", "0.004446")}
GCE_SRC = "github.com/kubernetes/autoscaler cluster-autoscaler/cloudprovider/gce/gce_price_info.go (us-central1 N2 rates)"
with_ref = [r for r in GCP_REGIONS if gp_cost(REF, r)]
gcp = {"cloud": "gcp", "currency": "USD", "as_of": GP_AS_OF}
gcp_regions = {}
iowa = gp_cost(REF, "us-central1")
def net(r, pick):
    """A network or disk figure of region r in the table, else of the nearest region listing it (derived)."""
    try:
        return listed(pick(r)), None
    except (KeyError, TypeError):
        near = nearest("gcp", r, [x for x in GCP_REGIONS if x != r and _has(pick, x)])
        return listed(pick(near)), near
def _has(pick, r):
    try:
        pick(r)
        return True
    except (KeyError, TypeError):
        return False
for r in GCP_REGIONS:
    inst = {t: {"onDemand": q(c[0]), "spot": q(c[1])} for t in gtypes if (c := gp_cost(t, r))}
    basis = r if r in with_ref else nearest("gcp", r, with_ref)
    ref_od, ref_spot = gp_cost(REF, basis)
    factor = ref_od / iowa[0]
    block = {"source": GP_SRC, "as_of": GP_AS_OF}
    # The N2 shapes the shape table picks, where the table does not list them in this region (a
    # region without N2): us-central1's price x the ratio of the basis region's n2-standard-8 (or,
    # without one, the nearest region with one).
    missing = [t for t in SHAPES if t not in inst and gp_cost(t, "us-central1")]
    block["spotDiscount"] = q(1 - ref_spot / ref_od)
    block["rates"] = {kind: {"n2": {"vcpu": q6(D(v) * factor), "gib": q6(D(m) * factor)}} for kind, (v, m) in N2_RATES.items()}
    block["ratesSource"] = f"{GCE_SRC} x {basis}'s {REF} price over us-central1's in the table above"
    block["instances"] = inst
    derivation = {"customShapes": f"N2 custom shapes: us-central1's N2 vCPU and GiB rates x {q6(factor)} ({basis}'s {REF} {listed(ref_od)} over us-central1's {listed(iowa[0])})"}
    if missing:
        spot_ratio = ref_spot / iowa[1]
        block["derivedInstances"] = {t: {"onDemand": q(gp_cost(t, "us-central1")[0] * factor),
                                         "spot": q(gp_cost(t, "us-central1")[1] * spot_ratio)} for t in missing}
        where = basis if basis == r else f"{basis} (the nearest region the table lists {REF} in; {r} has none)"
        derivation["instances"] = (f"no N2 row for {r} in the table: us-central1's price x {q6(factor)} on demand and "
                                   f"x {q6(spot_ratio)} spot, the ratios of {where}'s {REF} "
                                   f"({listed(ref_od)} / {listed(ref_spot)} spot) to us-central1's ({listed(iowa[0])} / {listed(iowa[1])})")
    block["derivation"] = derivation
    fixed = {"source": [GP_TABLE + " (pd-balanced/pd-ssd/pd-standard per GB-month, external IPv4 in use, Cloud NAT)",
                        'https://cloud.google.com/vpc/network-pricing#lb', 'https://cloud.google.com/kms/pricing'],
             "as_of": GP_AS_OF, "loadBalancerHourly": "0.025", "kmsKeyMonthly": "0.06", "healthCheckMonthly": "0"}
    derived_fees, nears = [], set()
    # Cloud NAT bills per VM-hour up to 32 VMs: the cap is what a gateway in front of an
    # autoscaled cluster pays.
    for key, pick in (("natGatewayHourly", lambda x: gp_net["nat"]["gateway"]["cost"][x]["hour"]),
                      ("natGatewayPerGiB", lambda x: gp_net["nat"]["data"]["cost"][x]["month"]),
                      ("publicIpv4Hourly", lambda x: gp_net["ip"]["vm"]["cost"][x]["hour"])):
        fixed[key], near = net(r, pick)
        if near:
            derived_fees.append(key)
            nears.add(near)
    fixed["disk"] = {}
    for kind, key in (("pd-balanced", "balanced"), ("pd-ssd", "ssd"), ("pd-standard", "hdd")):
        fixed["disk"][kind], near = net(r, lambda x, key=key: gp_store[key]["cost"][x]["month"])
        if near:
            derived_fees.append(f"disk.{kind}")
            nears.add(near)
    block["fixed"] = fixed
    if derived_fees:
        block["derivedFees"] = derived_fees
        derivation["fees"] = f"not in the table for {r}: {', '.join(derived_fees)} of {', '.join(sorted(nears))}, the nearest region listing them"
    apply_extras("gcp", gcp, r, block, list(EXTRAS["gcp"]["regions"]))
    gcp_regions[r] = block

# The band (shown where a spot price is derived, an N2 custom shape): the lowest and the highest
# discount the table lists for the catalog's types in the catalog's regions.
discounts = [1 - D(e["spot"]) / D(e["onDemand"]) for b in gcp_regions.values() for e in b["instances"].values() if D(e["onDemand"])]
gcp["spotBand"] = {"source": GP_TABLE + ": the range of its spot discounts over the catalog's machine types and regions",
                   "as_of": GP_AS_OF, "low": str(min(discounts).quantize(D("0.01"), ROUND_HALF_UP)),
                   "high": str(max(discounts).quantize(D("0.01"), ROUND_HALF_UP))}
gcp.update({k: EXTRAS["gcp"][k] for k in ("controlPlane", "commitment", "metricsStore")})
write("gcp", gcp, gcp_regions)

# ---------------- Azure
az = open(ARGS.azure).read()
AZ_AS_OF = re.search(r"generated at (\d{4}-\d\d-\d\d)", az).group(1)
def azregion(r):
    m = re.search(r'\t// ' + r + r'\n(.*?)\n\t}', az, re.S)
    return dict(re.findall(r'"(Standard_[A-Za-z0-9_]+)":\s+([0-9.]+)', m.group(1))) if m else None
atypes = [f"Standard_F{n}s_v2" for n in (2,4,8,16,32,48,64,72)] + [f"Standard_D{n}s_v5" for n in (2,4,8,16,32,48,64,96)] + [f"Standard_E{n}s_v5" for n in (2,4,8,16,20,32,48,64,96)]
AZ_SRC = f"github.com/Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go (generated {AZ_AS_OF})"
azure = {"cloud": "azure", "currency": "USD", "as_of": AZ_AS_OF}
in_table = [r for r in sorted(LOC["azure"]) if azregion(r)]
def az_instances(p):
    return {**{t: q(p[t]) for t in atypes if t in p},
            **{t: q(v) for t, v in sorted(p.items()) if t not in atypes and
               re.match(r"^Standard_((B|D|E|F)[0-9]+[a-z]*_v[2-6]|B[0-9]+[a-z]*)$", t)}}
azure_regions = {}
# The families the shape table picks (components/shapes.py): a size a region's table lacks (Arm
# sizes are not offered everywhere) is derived from the nearest region listing it, scaled by the
# two regions' Standard_D8s_v5 prices.
SHAPE_RE = re.compile(r"^Standard_(D\d+p?l?s_v5|E\d+p?s_v5|F\d+s_v2)$")
ANCHOR = "Standard_D8s_v5"
tables = {r: azregion(r) for r in in_table}
shape_types = sorted({t for p in tables.values() for t in p if SHAPE_RE.match(t)})
for r in sorted(LOC["azure"]):
    p = azregion(r)
    block = {"source": AZ_SRC, "as_of": AZ_AS_OF,
             # Spot VMs are priced by the hour per region: the cloud's spot band (below).
             "spotDiscount": "0.65"}
    if p:
        block["instances"] = az_instances(p)
        lacking = [t for t in shape_types if t not in p and ANCHOR in p]
        if lacking:
            block["derivedInstances"] = {}
            used = set()
            for t in lacking:
                near = nearest("azure", r, [x for x in in_table if t in tables[x] and ANCHOR in tables[x]])
                used.add(near)
                block["derivedInstances"][t] = q(D(tables[near][t]) * D(p[ANCHOR]) / D(tables[near][ANCHOR]))
            block["derivation"] = {"instances": (
                f"sizes {r} does not list: the price in the nearest region listing the size ({', '.join(sorted(used))}) "
                f"x {r}'s {ANCHOR} ({listed(p[ANCHOR])}) over that region's")}
    else:
        near = nearest("azure", r, in_table)
        block["instances"] = {}
        block["derivedInstances"] = az_instances(azregion(near))
        block["derivation"] = {"instances": f"{r} is not in the table: the prices of {near}, the nearest region it lists "
                                            f"({round(distance_km(LOC['azure'][r], LOC['azure'][near])):,} km away)"}
    block["fixed"] = {"source": ['https://azure.microsoft.com/pricing/details/azure-nat-gateway/', 'https://azure.microsoft.com/pricing/details/load-balancer/', 'https://azure.microsoft.com/pricing/details/key-vault/'],
                      "as_of": AZ_AS_OF,
                      # A software-protected Key Vault key has no monthly fee (operations are $0.03 per 10,000).
                      "natGatewayHourly": "0.045", "natGatewayPerGiB": "0.045",
                      "loadBalancerHourly": "0.025", "kmsKeyMonthly": "0", "healthCheckMonthly": "0"}
    apply_extras("azure", azure, r, block, list(EXTRAS["azure"]["regions"]))
    azure_regions[r] = block
azure.update({k: EXTRAS["azure"][k] for k in ("controlPlane", "commitment", "spotBand", "metricsStore")})
write("azure", azure, azure_regions)
