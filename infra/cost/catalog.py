"""The dated price catalog, decimal strings: `catalog/<cloud>.yaml` holds what every region of the
cloud shares (control plane, commitment, spot band) and the region names; `catalog/<cloud>/<region>.yaml`
one region's prices, read only when that region is priced (the catalogs cover every public region).
Together, and in a stack's override file (`im-platform:cost.catalog`), they have this shape:

    cloud: aws
    controlPlane: {source, as_of, hourly: {standard: "0.10"}}
    regions:
      eu-west-1:
        source: ...                     # where the prices come from (a string or a list)
        as_of: "2026-07-20"             # the date of that source
        spotDiscount: "0.60"            # spot = on-demand x (1 - discount) where no spot price is listed
        rates: {predefined: {n2: {vcpu, gib}}, custom: {n2: {vcpu, gib}}}   # GCP only
        ratesSource: ...                # where the rates come from (GCP only)
        instances: {c7i.large: "0.1008", n2-standard-8: {onDemand: "0.4272", spot: "0.1034"}}
        fixed: {source, as_of, natGatewayHourly, natGatewayPerGiB, loadBalancerHourly,
                kmsKeyMonthly, healthCheckMonthly}
        derivedInstances: {c7i.large: "0.0958"}   # no table lists them here: derived by derivation.instances
        derivedFees: [natGatewayHourly]           # fees derived by derivation.fees
        derivation: {instances: "the rule and its reference rows", fees: "..."}

A stack's override file (`im-platform:cost.catalog`) has the same shape; what it lists replaces the
shipped price, key by key (a price it lists is its own, never "derived"). A missing price is a
`PriceError` naming it, never a silent zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from infra.config import yamlio
from infra.config.errors import ConfigError
from infra.cost.metrics import PRICE_KEYS  # the managed metrics store's fees

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
ROOT = Path(__file__).resolve().parent.parent.parent
# A price list older than this is probably out of date: `cost` warns, naming its date.
STALE_AFTER_DAYS = 180
FIXED_KEYS = ("natGatewayHourly", "natGatewayPerGiB", "loadBalancerHourly", "kmsKeyMonthly", "healthCheckMonthly",
              "publicIpv4Hourly", "loadBalancerCapacityUnitHourly", "loadBalancerPerGiB", "healthCheckAwsMonthly",
              "healthCheckNonAwsMonthly", "healthCheckFeatureAwsMonthly", "healthCheckFeatureNonAwsMonthly") + PRICE_KEYS
# What each cloud's regions must price (the rest of FIXED_KEYS belongs to other clouds).
_SHARED = ("natGatewayHourly", "natGatewayPerGiB", "loadBalancerHourly", "kmsKeyMonthly", "publicIpv4Hourly")
FIXED_KEYS_BY_CLOUD = {
    "aws": _SHARED + ("loadBalancerCapacityUnitHourly", "healthCheckAwsMonthly", "healthCheckNonAwsMonthly",
                      "healthCheckFeatureAwsMonthly", "healthCheckFeatureNonAwsMonthly"),
    "gcp": _SHARED + ("loadBalancerPerGiB",),
    "azure": _SHARED + ("loadBalancerPerGiB",),
}
_CUSTOM_GCP = re.compile(r"^(?P<family>[a-z0-9]+)-custom-(?P<vcpu>\d+)-(?P<mib>\d+)$")


class PriceError(ConfigError):
    """A type, region or fee the catalog has no price for (exit status 2, like a config error)."""


@dataclass(frozen=True)
class RegionPrices:
    cloud: str
    region: str
    source: str
    as_of: dt.date
    spot_discount: Decimal
    instances: Mapping[str, Mapping[str, Decimal]]  # type -> {"onDemand": .., "spot": ..?}
    fixed: Mapping[str, Decimal]
    control_plane: Mapping[str, Decimal]  # tier -> hourly
    rates: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    dates: tuple[dt.date, ...] = ()
    # Internet egress by tier: (tier size in GB, None for the rest; price per GB).
    egress_tiers: tuple[tuple[Decimal | None, Decimal], ...] = ()
    commitment: Mapping[str, Decimal] = field(default_factory=dict)  # term -> discount
    spot_band: Mapping[str, Decimal] = field(default_factory=dict)   # low / typical / high discount
    spot_listed: bool = False  # whether any instance has a listed (not derived) spot price
    derived_types: frozenset[str] = frozenset()  # instance types no table lists here (derivedInstances)
    derived_fees: frozenset[str] = frozenset()   # fee keys no table lists here (derivedFees)
    derivation: Mapping[str, str] = field(default_factory=dict)  # what -> the rule and its reference rows

    def is_derived(self, instance_type: str) -> bool:
        return instance_type in self.derived_types or (instance_type not in self.instances and self.cloud == "gcp"
                                                       and "customShapes" in self.derivation)

    def with_spot_discount(self, discount: Decimal) -> RegionPrices:
        """The same prices with another spot discount, every spot price derived from it (a band's edge)."""
        instances = {t: {"onDemand": e["onDemand"]} for t, e in self.instances.items()}
        return dataclasses.replace(self, spot_discount=discount, instances=instances)

    def node_price(self, instance_type: str, spot: bool) -> Decimal:
        """Hourly price of one node; a spot price where listed, else on-demand less the spot discount."""
        entry = self.instances.get(instance_type)
        if entry is None:
            entry = self._custom(instance_type)
        if spot:
            if "spot" in entry:
                return entry["spot"]
            return entry["onDemand"] * (1 - self.spot_discount)
        return entry["onDemand"]

    def _custom(self, instance_type: str) -> Mapping[str, Decimal]:
        match = _CUSTOM_GCP.match(instance_type) if self.cloud == "gcp" else None
        rate = (self.rates.get("custom") or {}).get(match["family"]) if match else None
        if not match or not rate:
            raise PriceError(f"price of {instance_type}", f"{self.cloud} {self.region}",
                             f"no price in the catalog for instance type {instance_type} in {self.region}; "
                             f"add it to an override catalog (im-platform:cost.catalog)")
        gib = Decimal(match["mib"]) / 1024
        return {"onDemand": Decimal(match["vcpu"]) * rate["vcpu"] + gib * rate["gib"]}

    def fee(self, key: str) -> Decimal:
        if key not in self.fixed:
            raise PriceError(f"price of {key}", f"{self.cloud} {self.region}", "no price in the catalog")
        return self.fixed[key]

    def control_plane_hourly(self, tier: str) -> Decimal:
        if tier not in self.control_plane:
            raise PriceError(f"price of the {tier} control plane", self.cloud, "no price in the catalog")
        return self.control_plane[tier]

    @property
    def oldest(self) -> dt.date:
        return min(self.dates)


def _dec(where: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(where, value, "expected a price as a decimal string such as \"0.4032\"")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(where, value, "expected a price as a decimal string such as \"0.4032\"") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(where, value, "expected a price >= 0")
    return amount


def _date(where: str, value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(where, value, "expected a date such as 2026-07-20") from None


def _load(path: Path, where: str) -> Mapping[str, Any]:
    try:
        doc = yamlio.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(where, str(path), "no such file (a price catalog, relative to the repository root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(where, str(path), f"not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(where, str(path), "expected a price catalog (a mapping with cloud and regions)")
    return doc


_RAW: dict[Path, Mapping[str, Any]] = {}


def _read(path: Path, where: str) -> Mapping[str, Any]:
    if path not in _RAW:
        _RAW[path] = _load(path, where)
    return _RAW[path]


def raw_catalog(cloud: str) -> Mapping[str, Any]:
    """What every region of one cloud shares, and its region names (read once per process)."""
    return _read(CATALOG_DIR / f"{cloud}.yaml", f"catalog {cloud}")


def raw_region(cloud: str, region: str) -> Mapping[str, Any] | None:
    """One region's block of the shipped catalog, read only when asked for; None for no such region."""
    if region not in regions(cloud):
        return None
    return _read(CATALOG_DIR / cloud / f"{region}.yaml", f"catalog {cloud}.regions.{region}")


def regions(cloud: str) -> tuple[str, ...]:
    return tuple(raw_catalog(cloud).get("regions") or ())


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def region_prices(cloud: str, region: str, override: str | None = None) -> RegionPrices:
    """Prices of one region, the stack's override file (relative to the repository root) applied."""
    shared = raw_catalog(cloud)
    shipped = raw_region(cloud, region)
    doc: Mapping[str, Any] = {**{k: v for k, v in shared.items() if k != "regions"},
                              "regions": {region: shipped} if shipped is not None else {}}
    sources: list[str] = []
    own: Mapping[str, Any] = {}
    if override:
        extra = _load(ROOT / override, "im-platform:cost.catalog")
        if extra.get("cloud", cloud) == cloud:
            doc = _merge(doc, extra)
            own = ((extra.get("regions") or {}).get(region) or {}) if isinstance(extra.get("regions"), Mapping) else {}
            sources.append(override)
    block = (doc.get("regions") or {}).get(region)
    where = f"catalog {cloud}.regions.{region}"
    if not isinstance(block, Mapping):
        known = regions(cloud)
        raise PriceError(f"price of region {region}", cloud,
                         f"no prices in the catalog for {cloud} region {region} (the catalog has {len(known)} {cloud} "
                         f"regions, e.g. {', '.join(known[:4])}); add its prices to an override catalog "
                         f"(im-platform:cost.catalog, docs/cost.md)")
    instances: dict[str, dict[str, Decimal]] = {}
    mine = set((own.get("instances") or {}) if isinstance(own, Mapping) else ())
    derived = set()
    for kind in ("derivedInstances", "instances"):
        for name, entry in (block.get(kind) or {}).items():
            if isinstance(entry, Mapping):
                instances[name] = {k: _dec(f"{where}.{kind}.{name}.{k}", v) for k, v in entry.items()}
            else:
                instances[name] = {"onDemand": _dec(f"{where}.{kind}.{name}", entry)}
            if kind == "derivedInstances":
                derived.add(name)
            elif name in mine or name not in (block.get("derivedInstances") or {}):
                derived.discard(name)
    fixed_block = block.get("fixed") or {}
    fixed = {k: _dec(f"{where}.fixed.{k}", fixed_block[k]) for k in FIXED_KEYS if k in fixed_block}
    for kind, per_gib in (fixed_block.get("disk") or {}).items():
        fixed[f"disk.{kind}"] = _dec(f"{where}.fixed.disk.{kind}", per_gib)
    tiers = tuple((None if t.get("upToGB") is None else _dec(f"{where}.fixed.internetEgress.upToGB", t["upToGB"]),
                   _dec(f"{where}.fixed.internetEgress.perGB", t.get("perGB")))
                  for t in fixed_block.get("internetEgress") or [])
    commit = doc.get("commitment") or {}
    discounts = {k: _dec(f"catalog {cloud}.commitment.discount.{k}", v) for k, v in (commit.get("discount") or {}).items()}
    band_block = doc.get("spotBand") or {}
    band = {k: _dec(f"catalog {cloud}.spotBand.{k}", band_block[k]) for k in ("low", "typical", "high") if k in band_block}
    cp = doc.get("controlPlane") or {}
    control = {k: _dec(f"catalog {cloud}.controlPlane.hourly.{k}", v) for k, v in (cp.get("hourly") or {}).items()}
    rates = {kind: {fam: {k: _dec(f"{where}.rates.{kind}.{fam}.{k}", v) for k, v in r.items()}
                    for fam, r in fams.items()} for kind, fams in (block.get("rates") or {}).items()}
    dates = [_date(f"{where}.as_of", block.get("as_of"))]
    # An override dates and sources its own prices; the shipped ones it leaves in place keep theirs.
    kept = shipped if isinstance(shipped, Mapping) and shipped is not block else {}
    if fixed_block.get("extrasAsOf") is not None:
        dates.append(_date(f"{where}.fixed.extrasAsOf", fixed_block["extrasAsOf"]))
    for sub, label in ((fixed_block, f"{where}.fixed.as_of"), (cp, f"catalog {cloud}.controlPlane.as_of"),
                       (kept, f"catalog {cloud}.regions.{region}.as_of")):
        if sub.get("as_of") is not None:
            dates.append(_date(label, sub["as_of"]))
    for sub, key in ((block, "source"), (block, "ratesSource"), (kept, "source"), (fixed_block, "source"), (fixed_block, "extrasSource"),
                     (cp, "source"), (commit, "source"), (band_block, "source")):
        listed = sub.get(key) or []
        for src in [listed] if isinstance(listed, str) else listed:
            if str(src) not in sources:
                sources.append(str(src))
    own_fixed = set((own.get("fixed") or {}) if isinstance(own, Mapping) else ())
    own_fixed |= {f"disk.{k}" for k in ((own.get("fixed") or {}).get("disk") or {})} if isinstance(own, Mapping) else set()
    derived_fees = {str(k) for k in block.get("derivedFees") or ()} - own_fixed
    derivation = {str(k): str(v) for k, v in (block.get("derivation") or {}).items()}
    return RegionPrices(cloud=cloud, region=region, source=str(block.get("source", "")), as_of=min(dates),
                        spot_discount=_dec(f"{where}.spotDiscount", block.get("spotDiscount", "0")),
                        instances=instances, fixed=fixed, control_plane=control, rates=rates,
                        sources=tuple(sources), dates=tuple(dates), egress_tiers=tiers, commitment=discounts,
                        spot_band=band, spot_listed=any("spot" in e for t, e in instances.items() if t not in derived),
                        derived_types=frozenset(derived), derived_fees=frozenset(derived_fees), derivation=derivation)


def stale_warning(prices: RegionPrices, today: dt.date | None = None) -> str | None:
    """A warning when the oldest price used is older than STALE_AFTER_DAYS, naming its date."""
    today = today or dt.date.today()
    oldest = prices.oldest
    age = (today - oldest).days
    if age > STALE_AFTER_DAYS:
        return (f"warning: the {prices.cloud} price catalog for {prices.region} is dated {oldest.isoformat()}, "
                f"{age} days ago (more than {STALE_AFTER_DAYS}): prices may have changed; refresh "
                f"infra/cost/catalog/{prices.cloud}.yaml or set im-platform:cost.catalog")
    return None
