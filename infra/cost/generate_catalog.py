"""Regenerate the price catalog from the machine-generated price tables it is sourced from.

    venv/bin/python -m infra.cost.generate_catalog --aws zz_generated.pricing_aws.go \
        --gce gce_price_info.go --gcp-pricing pricing.yml --azure zz_generated.pricing.go

--aws: github.com/aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go;
--gce: github.com/kubernetes/autoscaler cluster-autoscaler/cloudprovider/gce/gce_price_info.go;
--gcp-pricing: github.com/Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml (per region:
  on-demand and spot per machine type, disks, in-use IPv4, Cloud NAT);
--azure: github.com/Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go.
AWS's regional factors, the AWS and Azure spot discounts and the fixed fees below come from the
vendors' pricing pages (named in each block); update them and the `as_of` dates with the tables.

    venv/bin/python -m infra.cost.generate_catalog --extras-only

re-applies EXTRAS (the fees, egress tiers, spot bands, commitments and extended-support control
planes below, each with its source and date) to the shipped catalog without the tables.
"""
# ruff: noqa
# mypy: ignore-errors
import argparse
import datetime as dt
import re
from decimal import Decimal as D, ROUND_HALF_UP
from pathlib import Path

import yaml

_args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_args.add_argument("--aws")
_args.add_argument("--gce")
_args.add_argument("--azure")
_args.add_argument("--gcp-pricing", help="pricing.yml of github.com/Cyclenerd/google-cloud-pricing-cost-calculator")
_args.add_argument("--extras-only", action="store_true", help="re-apply EXTRAS to the shipped catalog")
ARGS = _args.parse_args()
if not ARGS.extras_only and not (ARGS.aws and ARGS.gce and ARGS.azure and ARGS.gcp_pricing):
    _args.error("--aws, --gce, --gcp-pricing and --azure are required (or --extras-only)")
OUT = str(Path(__file__).resolve().parent / "catalog") + "/"
Q = D("0.0001")
def q(x): return str(D(x).quantize(Q, ROUND_HALF_UP))
def q6(x): return str(D(x).quantize(D("0.000001"), ROUND_HALF_UP))
def listed(x): return format(D(str(x)).normalize(), "f")  # a source's figure as it is written there




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
        "regions": {
            r: {"fixed": {
                # Disks, in-use IPv4 and Cloud NAT come with the instance table (--gcp-pricing).
                "loadBalancerPerGiB": "0.008",
                "internetEgress": T((1024, "0.12"), (9216, "0.11"), (None, "0.08")),
                "extrasSource": ["https://cloud.google.com/vpc/network-pricing#lb (data processed)",
                                 "https://cloud.google.com/vpc/network-pricing#internet_egress (Premium Tier)"],
                "extrasAsOf": EXTRAS_AS_OF}}
            for r in ("us-central1", "us-east1", "us-west1", "europe-west1", "europe-west4", "europe-west3",
                      "asia-east1", "asia-northeast1")},
    },
    "azure": {
        "controlPlane": {"source": "https://azure.microsoft.com/pricing/details/kubernetes-service/ (Premium: long-term support)",
                         "as_of": EXTRAS_AS_OF, "hourly": {"free": "0", "standard": "0.10", "premium": "0.60"}},
        "commitment": {"source": "https://azure.microsoft.com/pricing/reserved-vm-instances/ (Dsv5/Esv5/Fsv2, typical)",
                       "as_of": EXTRAS_AS_OF, "discount": {"1y": "0.36", "3y": "0.57"}},
        "spotBand": {"source": "https://azure.microsoft.com/pricing/spot-advisor/ (eviction rate and savings per size, 55-90%)",
                     "as_of": EXTRAS_AS_OF, "low": "0.55", "typical": "0.65", "high": "0.80"},
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


def apply_extras(name, doc):
    extra = EXTRAS[name]
    doc["controlPlane"] = extra["controlPlane"]
    doc["commitment"] = extra["commitment"]
    if "spotBand" in extra:
        doc["spotBand"] = extra["spotBand"]
    for region, block in doc["regions"].items():
        fixed = block.setdefault("fixed", {})
        fixed.update(extra["regions"][region]["fixed"])
    return doc


HEAD = "# Price catalog ({}): hourly USD list prices, Linux, as decimal strings, generated by\n# python -m infra.cost.generate_catalog from the sources named in each block; `as_of` is the date of\n# the source. See docs/cost.md.\n"
if ARGS.extras_only:
    for name in ("aws", "gcp", "azure"):
        with open(OUT + name + ".yaml") as fh:
            doc = yaml.safe_load(fh)
        with open(OUT + name + ".yaml", "w") as fh:
            fh.write(HEAD.format(name))
            yaml.safe_dump(apply_extras(name, doc), fh, sort_keys=False, width=200)
    raise SystemExit(0)

# ---------------- AWS
src = open(ARGS.aws).read()
useast = dict((k, v) for k, v in re.findall(r'"([a-z0-9]+\.[a-z0-9]+)": ([0-9.]+)', src))
fams = ["c7i","c6i","c6a","c7a","m7i","m6i","m6a","m7a","r7i","r6i","r6a","r7a"]
sizes = ["large","xlarge","2xlarge","4xlarge","8xlarge","12xlarge","16xlarge","24xlarge"]
# Types users commonly set with instanceType: every size of these families (metal excluded).
extra_fams = ["c5","c5a","c6g","c7g","m5","m5a","m6g","m7g","r5","r5a","r6g","r7g","t3","t3a","t4g","m7i-flex"]
# Regional factor = the region's list price of the family's reference type (c5/m5/r5.large) over
# its us-east-1 list price (0.085 / 0.096 / 0.126).
ref = {"c": D("0.085"), "m": D("0.096"), "r": D("0.126")}
aws_regions = {
    "us-east-1": {"c": "0.085", "m": "0.096", "r": "0.126", "nat": "0.045", "nlb": "0.0225"},
    "us-west-2": {"c": "0.085", "m": "0.096", "r": "0.126", "nat": "0.045", "nlb": "0.0225"},
    "eu-west-1": {"c": "0.096", "m": "0.107", "r": "0.141", "nat": "0.048", "nlb": "0.0252"},
    "eu-central-1": {"c": "0.097", "m": "0.115", "r": "0.152", "nat": "0.052", "nlb": "0.0270"},
    "ap-northeast-1": {"c": "0.107", "m": "0.124", "r": "0.152", "nat": "0.062", "nlb": "0.0243"},
    "ap-southeast-1": {"c": "0.098", "m": "0.120", "r": "0.152", "nat": "0.059", "nlb": "0.0252"},
}
KSRC = "github.com/aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go (us-east-1, generated 2026-07-20) x the region's c5/m5/r5.large list price over us-east-1's (aws.amazon.com/ec2/pricing/on-demand/)"
aws = {"cloud": "aws", "currency": "USD", "as_of": "2026-07-20",
       "controlPlane": {"source": "https://aws.amazon.com/eks/pricing/", "as_of": "2026-07-20",
                        "hourly": {"standard": "0.10"}},
       "regions": {}}
for r, v in aws_regions.items():
    inst = {}
    for f in fams:
        factor = D(v[f[0]]) / ref[f[0]]
        for s in sizes:
            t = f"{f}.{s}"
            inst[t] = q(D(useast[t]) * factor)
    for f in extra_fams:
        # t (burstable) families follow the general-purpose (m) ratio.
        factor = D(v["m" if f[0] == "t" else f[0]]) / ref["m" if f[0] == "t" else f[0]]
        for t in sorted(k for k in useast if k.split(".")[0] == f and "metal" not in k):
            inst[t] = q(D(useast[t]) * factor)
    aws["regions"][r] = {
        "source": KSRC, "as_of": "2026-07-20",
        # Spot prices move hourly and have no static list; the Spot Instance Advisor shows 60-70%
        # savings for these families in these regions: the catalog uses the conservative end.
        "spotDiscount": "0.60",
        "instances": inst,
        "fixed": {"source": ['https://aws.amazon.com/vpc/pricing/', 'https://aws.amazon.com/elasticloadbalancing/pricing/', 'https://aws.amazon.com/kms/pricing/', 'https://aws.amazon.com/route53/pricing/'],
                  "as_of": "2026-07-20",
                  "natGatewayHourly": v["nat"], "natGatewayPerGiB": v["nat"],
                  "loadBalancerHourly": v["nlb"], "kmsKeyMonthly": "1.00", "healthCheckMonthly": "0.75"},
    }

# ---------------- GCP
# Per region and machine type, on-demand (`hour`) and spot (`hour_spot`) from the Cyclenerd table,
# generated from the Cloud Billing Catalog API; its disks, in-use IPv4 and Cloud NAT too. The
# cluster autoscaler's table names the machine types and gives us-central1's N2 vCPU/GiB rates.
g = open(ARGS.gce).read()
def block(name):
    m = re.search(name + r" = map\[string\]float64\{(.*?)\n\t\}", g, re.S)
    return dict(re.findall(r'"([a-z0-9-]+)":\s+([0-9.]+)', m.group(1)))
od, pre = block("instancePrices"), block("preemptiblePrices")
gp = yaml.load(open(ARGS.gcp_pricing), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
# "Thu Jul 30 06:13:17 2026": the day the table was generated is the date of its prices.
GP_AS_OF = dt.datetime.strptime(gp["about"]["generated"], "%a %b %d %H:%M:%S %Y").date().isoformat()
GP_TABLE = (f"github.com/Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml (generated {GP_AS_OF} "
            f"from the Cloud Billing Catalog API)")
GP_SRC = GP_TABLE + ": on-demand and spot per machine type and region"
gp_inst, gp_store, gp_net = gp["compute"]["instance"], gp["compute"]["storage"], gp["compute"]["network"]
gtypes = [f"n2-{k}-{n}" for k in ("highcpu","standard","highmem") for n in (2,4,8,16,32,48,64,80,96)]
gtypes += [t for t in sorted(od) if t not in gtypes and t in pre and re.match(r"^(e2|n1|n2|n2d|c2|c2d|c3|t2d|n4)-", t)]
def gp_cost(t, r):
    """The source's row of type t in region r: (on-demand, spot), or None where it lists no such type there."""
    c = (gp_inst.get(t) or {}).get("cost", {}).get(r) or {}
    return (c["hour"], c["hour_spot"]) if "hour" in c and "hour_spot" in c else None
REF = "n2-standard-8"
rates = {"predefined": (block("predefinedCpuPricePerHour")["n2"], block("predefinedMemoryPricePerHourPerGb")["n2"]),
         "custom": (block("customCpuPricePerHour")["n2"], block("customMemoryPricePerHourPerGb")["n2"])}
gcp = {"cloud": "gcp", "currency": "USD", "as_of": GP_AS_OF,
       "controlPlane": {"source": "https://cloud.google.com/kubernetes-engine/pricing", "as_of": GP_AS_OF,
                        "hourly": {"standard": "0.10"}},
       "regions": {}}
for r in ("us-central1", "us-east1", "us-west1", "europe-west4", "asia-east1", "europe-west1", "europe-west3", "asia-northeast1"):
    # A type the source does not list in the region is left out: pricing it is an error naming it.
    inst = {t: {"onDemand": q(c[0]), "spot": q(c[1])} for t in gtypes if (c := gp_cost(t, r))}
    ref_od, ref_spot = (D(str(x)) for x in gp_cost(REF, r))
    # N2 custom shapes (no row in the source): the autoscaler's us-central1 rates x this region's
    # n2-standard-8 price over us-central1's, and spot at this region's n2-standard-8 discount.
    factor = ref_od / D(str(gp_cost(REF, "us-central1")[0]))
    gcp["regions"][r] = {
        "source": GP_SRC, "as_of": GP_AS_OF,
        "spotDiscount": q(1 - ref_spot / ref_od),
        "rates": {kind: {"n2": {"vcpu": q6(D(v) * factor), "gib": q6(D(m) * factor)}} for kind, (v, m) in rates.items()},
        "ratesSource": "github.com/kubernetes/autoscaler cluster-autoscaler/cloudprovider/gce/gce_price_info.go "
                       f"(us-central1 N2 rates) x the region's {REF} price over us-central1's in the table above",
        "instances": inst,
        "fixed": {"source": [GP_TABLE + " (pd-balanced/pd-ssd/pd-standard per GB-month, external IPv4 in use, Cloud NAT)",
                             'https://cloud.google.com/vpc/network-pricing#lb', 'https://cloud.google.com/kms/pricing'],
                  "as_of": GP_AS_OF,
                  # Cloud NAT bills per VM-hour up to 32 VMs: the cap is what a gateway in front of an
                  # autoscaled cluster pays.
                  "natGatewayHourly": listed(gp_net["nat"]["gateway"]["cost"][r]["hour"]),
                  "natGatewayPerGiB": listed(gp_net["nat"]["data"]["cost"][r]["month"]),
                  "loadBalancerHourly": "0.025", "kmsKeyMonthly": "0.06", "healthCheckMonthly": "0",
                  "publicIpv4Hourly": listed(gp_net["ip"]["vm"]["cost"][r]["hour"]),
                  "disk": {kind: listed(gp_store[key]["cost"][r]["month"])
                           for kind, key in (("pd-balanced", "balanced"), ("pd-ssd", "ssd"), ("pd-standard", "hdd"))}},
    }

# The band (shown where a spot price is derived, an N2 custom shape): the lowest and the highest
# discount the table lists for the catalog's types in the catalog's regions.
discounts = [1 - D(e["spot"]) / D(e["onDemand"]) for b in gcp["regions"].values() for e in b["instances"].values()]
gcp["spotBand"] = {"source": GP_TABLE + ": the range of its spot discounts over the catalog's machine types and regions",
                   "as_of": GP_AS_OF, "low": str(min(discounts).quantize(D("0.01"), ROUND_HALF_UP)),
                   "high": str(max(discounts).quantize(D("0.01"), ROUND_HALF_UP))}

# ---------------- Azure
az = open(ARGS.azure).read()
def azregion(r):
    m = re.search(r'\t// ' + r + r'\n(.*?)\n\t}', az, re.S)
    return dict(re.findall(r'"(Standard_[A-Za-z0-9_]+)":\s+([0-9.]+)', m.group(1)))
atypes = [f"Standard_F{n}s_v2" for n in (2,4,8,16,32,48,64,72)] + [f"Standard_D{n}s_v5" for n in (2,4,8,16,32,48,64,96)] + [f"Standard_E{n}s_v5" for n in (2,4,8,16,20,32,48,64,96)]
azure = {"cloud": "azure", "currency": "USD", "as_of": "2026-06-18",
         "controlPlane": {"source": "https://azure.microsoft.com/pricing/details/kubernetes-service/", "as_of": "2026-06-18",
                          "hourly": {"free": "0", "standard": "0.10", "premium": "0.60"}},
         "regions": {}}
for r in ("eastus", "westus2", "westeurope", "northeurope", "uksouth", "japaneast", "eastasia", "southeastasia"):
    p = azregion(r)
    azure["regions"][r] = {
        "source": "github.com/Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go (generated 2026-06-18)",
        "as_of": "2026-06-18",
        # Spot VMs are priced by the hour per region; the Azure pricing pages show 60-90% off for
        # these series: the catalog uses 65%, near the low end.
        "spotDiscount": "0.65",
        "instances": {**{t: q(p[t]) for t in atypes},
                      **{t: q(v) for t, v in sorted(p.items()) if t not in atypes and
                         re.match(r"^Standard_((B|D|E|F)[0-9]+[a-z]*_v[2-6]|B[0-9]+[a-z]*)$", t)}},
        "fixed": {"source": ['https://azure.microsoft.com/pricing/details/azure-nat-gateway/', 'https://azure.microsoft.com/pricing/details/load-balancer/', 'https://azure.microsoft.com/pricing/details/key-vault/'],
                  "as_of": "2026-06-18",
                  # A software-protected Key Vault key has no monthly fee (operations are $0.03 per 10,000).
                  "natGatewayHourly": "0.045", "natGatewayPerGiB": "0.045",
                  "loadBalancerHourly": "0.025", "kmsKeyMonthly": "0", "healthCheckMonthly": "0"},
    }

for name, doc in (("aws", aws), ("gcp", gcp), ("azure", azure)):
    with open(OUT + name + ".yaml", "w") as fh:
        fh.write(HEAD.format(name))
        yaml.safe_dump(apply_extras(name, doc), fh, sort_keys=False, width=200)
