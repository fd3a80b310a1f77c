"""The managed metrics store's monthly fee: what the tiers scaled on load send the cloud's managed
Prometheus, and what KEDA's queries read back, priced from the catalog.

Pure: no Pulumi. The assumption, each part of which `cost` prints:

- pods: each scaled tier's replicas by the load curve, clamp(ceil(replicas.max x load), min, max)
  each hour (the cost model's reading of the day; schedule windows and the CPU trigger left out);
- series: `im-platform:cost.metricsSeriesPerPod` per pod (default 60, components/spec.py says why);
- samples ingested: series x 3600 / monitoring.scrapeIntervalSeconds an hour, over a 730-hour month;
- queries: KEDA asks each Prometheus trigger (one per scaled tier) once per pollingInterval; one query
  reads one sample per pod of the tier for a gauge, the samples in its rate window for a counter.

What each store charges for (the vendors' price pages, named in FEES):

- aws: Amazon Managed Service for Prometheus bills samples ingested, query samples processed and
  storage (GB-months), and its managed scraper an hour plus per sample collected;
- gcp: Managed Service for Prometheus bills samples ingested and Monitoring API read calls;
- azure: Azure Monitor managed service for Prometheus bills samples ingested and query samples processed.

A fee whose price the catalog lacks is named in `notPriced` with the quantity assumed, never 0.
An existing cluster (`cloud: kubernetes`) or a Prometheus of the user's own (`monitoring.prometheus.url`)
has no store fee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from components.spec import KEDA_POLLING_SECONDS, ClusterSpec, ServiceSpec

HOURS_PER_MONTH = Decimal(730)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# AMP keeps samples 150 days by default; a sample takes "typically 1 or 2 bytes" and 1 GB is 2^30
# bytes (https://aws.amazon.com/prometheus/pricing/): the store holds 150 days of samples at 2 bytes.
AMP_RETENTION_DAYS = 150
AMP_BYTES_PER_SAMPLE = 2
GB = Decimal(2) ** 30
MILLION = Decimal(10) ** 6
TEN_MILLION = Decimal(10) ** 7
BILLION = Decimal(10) ** 9

STORES = {
    "aws": ("Amazon Managed Service for Prometheus", "https://aws.amazon.com/prometheus/pricing/"),
    "gcp": ("Google Cloud Managed Service for Prometheus",
            "https://cloud.google.com/stackdriver/pricing (Cloud Monitoring: Managed Service for Prometheus)"),
    "azure": ("Azure Monitor managed service for Prometheus",
              "https://azure.microsoft.com/pricing/details/monitor/ (Metrics: Prometheus)"),
}


@dataclass(frozen=True)
class Fee:
    """One charge of the store: its name in `cost`, the catalog key it is priced from, its unit."""

    name: str
    key: str
    unit: str


# (fee, what its monthly quantity is) per cloud, in the order `cost` lists them.
FEES: dict[str, tuple[tuple[Fee, str], ...]] = {
    "aws": ((Fee("metrics store: samples ingested", "prometheusSamplesIngestedPer10M", "10M samples"), "ingested"),
            (Fee("metrics store: query samples processed", "prometheusQuerySamplesPerBillion", "billion samples"),
             "query_samples"),
            (Fee("metrics store: storage", "prometheusStorageGBMonth", "GB-months"), "stored_gb"),
            (Fee("metrics store: managed scraper", "prometheusScraperHourly", "hours"), "scraper_hours"),
            (Fee("metrics store: scraper samples collected", "prometheusScraperSamplesPer10M", "10M samples"),
             "ingested")),
    "gcp": ((Fee("metrics store: samples ingested", "prometheusSamplesIngestedPerMillion", "million samples"),
             "ingested"),
            (Fee("metrics store: Monitoring API read calls", "prometheusReadCallsPerMillion", "million calls"),
             "queries")),
    "azure": ((Fee("metrics store: samples ingested", "prometheusSamplesIngestedPer10M", "10M samples"), "ingested"),
              (Fee("metrics store: query samples processed", "prometheusQuerySamplesPer10M", "10M samples"),
               "query_samples")),
}
PRICE_KEYS = tuple(sorted({fee.key for fees in FEES.values() for fee, _ in fees}))
UNITS = {"10M samples": TEN_MILLION, "million samples": MILLION, "billion samples": BILLION,
         "million calls": MILLION, "GB-months": Decimal(1), "hours": Decimal(1)}


@dataclass(frozen=True)
class StoreUse:
    """What the stack's scaled tiers send the store and read from it in a month."""

    cloud: str
    store: str
    source: str
    tiers: tuple[str, ...]
    series_per_pod: int
    scrape_interval_seconds: int
    polling_seconds: int
    pods_mean: Decimal       # scaled pods over the day, summed over the tiers
    pods_peak: int
    ingested: Decimal        # samples a month
    queries: Decimal         # KEDA's queries a month
    query_samples: Decimal   # samples those queries read
    stored_gb: Decimal       # GB held at the retention (aws)
    scraper_hours: Decimal   # the managed scraper's hours (aws)

    @property
    def series_mean(self) -> Decimal:
        return self.pods_mean * self.series_per_pod

    @property
    def series_peak(self) -> int:
        return self.pods_peak * self.series_per_pod

    def quantity(self, what: str) -> Decimal:
        return Decimal(getattr(self, what))


def tier_pods(service: ServiceSpec, curve: Sequence[Decimal]) -> list[int]:
    """The tier's replicas each hour by the load curve."""
    return [min(max(math.ceil(service.max_replicas * load), service.min_replicas), service.max_replicas)
            for load in curve]


def points_per_query(service: ServiceSpec, scrape_interval: int) -> int:
    """Samples one KEDA query reads per pod: the latest (a gauge's sum), or the rate window's
    (a counter: default_query's window of four scrape intervals)."""
    assert service.scaling is not None
    return 4 if service.scaling.is_counter else 1


def use(spec: ClusterSpec, cloud: str | None = None) -> StoreUse | None:
    """The store's use by `spec` on `cloud` (default its own); None: no managed store to pay."""
    cloud = cloud or spec.cloud
    scaled = [s for s in spec.services if s.scaling is not None]
    if cloud not in STORES or not spec.monitoring.managed or not scaled:
        return None
    interval = spec.monitoring.scrape_interval_seconds
    per_pod = spec.cost.metrics_series_per_pod
    curve = spec.cost.curve
    scrapes_an_hour = Decimal(3600) / interval
    polls_an_hour = Decimal(3600) / KEDA_POLLING_SECONDS
    pod_hours = Decimal(0)
    query_samples = Decimal(0)
    peak = [0] * len(curve)
    for s in scaled:
        pods = tier_pods(s, curve)
        peak = [a + b for a, b in zip(peak, pods, strict=True)]
        pod_hours += sum(pods)
        query_samples += polls_an_hour * sum(pods) * points_per_query(s, interval)
    days = DAYS_PER_MONTH
    ingested = (pod_hours * per_pod * scrapes_an_hour * days).to_integral_value()
    queries = (len(scaled) * polls_an_hour * HOURS_PER_MONTH).to_integral_value()
    monthly_query_samples = (query_samples * days).to_integral_value()
    held = ingested * AMP_RETENTION_DAYS / days * AMP_BYTES_PER_SAMPLE / GB
    name, source = STORES[cloud]
    return StoreUse(cloud=cloud, store=name, source=source, tiers=tuple(s.name for s in scaled),
                    series_per_pod=per_pod, scrape_interval_seconds=interval, polling_seconds=KEDA_POLLING_SECONDS,
                    pods_mean=(pod_hours / len(curve)).quantize(Decimal("0.01")), pods_peak=max(peak),
                    ingested=ingested, queries=queries, query_samples=monthly_query_samples,
                    stored_gb=held.quantize(Decimal("0.0001")) if cloud == "aws" else Decimal(0),
                    scraper_hours=HOURS_PER_MONTH if cloud == "aws" else Decimal(0))


@dataclass(frozen=True)
class Charge:
    """One fee of the store this month: quantity in its catalog unit; price None when the catalog lacks it."""

    fee: Fee
    quantity: Decimal
    price: Decimal | None


def charges(store: StoreUse, fixed: dict[str, Decimal] | None = None,
            prices: object | None = None) -> list[Charge]:
    """Each fee of the store with its monthly quantity (in the fee's unit) and its catalog price."""
    found = []
    table = dict(fixed or {})
    if prices is not None:
        table.update({k: v for k, v in getattr(prices, "fixed", {}).items() if k in PRICE_KEYS})
    for fee, what in FEES[store.cloud]:
        quantity = (store.quantity(what) / UNITS[fee.unit]).quantize(Decimal("0.0001"))
        found.append(Charge(fee, quantity, table.get(fee.key)))
    return found


def quantity_text(store: StoreUse) -> str:
    """The assumption in one line, for `cost`'s text and for notPriced's reasons."""
    return (f"{store.store}: tiers {', '.join(store.tiers)}; {store.pods_mean} pods on average "
            f"({store.pods_peak} at the peak) x {store.series_per_pod} series a pod "
            f"(im-platform:cost.metricsSeriesPerPod), scraped every {store.scrape_interval_seconds} s: "
            f"{store.ingested:,} samples ingested a month; KEDA: {store.queries:,} queries a month "
            f"(one per tier every {store.polling_seconds} s) reading {store.query_samples:,} samples")
