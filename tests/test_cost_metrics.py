"""The managed metrics store's fee in `cost` (infra/cost/metrics.py): the series and samples it
assumes, held to the planned ScaledObjects; priced from an override catalog where the shipped one
has no figure, and named in notPriced with its quantity where none has it."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

from components.spec import KEDA_POLLING_SECONDS
from infra.config.loader import load_spec
from infra.cost import metrics
from infra.offline.plan import project_name, read_stack_config, stack_file
from tests.plans import stack_plan
from tests.test_cli import cli_in_process, copy_stack

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def spec_of(stack: str):  # noqa: ANN201 - a ClusterSpec
    values, _ = read_stack_config(stack_file(stack), project_name())
    return load_spec(values, project=project_name(), stack=stack)


def cost_doc(*args: str) -> dict:
    result = cli_in_process("cost", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_assumption_is_the_scaled_tiers_pods_by_the_curve_times_the_series_and_the_scrapes() -> None:
    spec = spec_of("prod-aws")
    use = metrics.use(spec)
    assert use is not None and use.store == "Amazon Managed Service for Prometheus"
    scaled = [s for s in spec.services if s.scaling is not None]
    assert set(use.tiers) == {s.name for s in scaled} and scaled
    # By hand: clamp(ceil(max x load), min, max) each hour, summed over the tiers and the day.
    pod_hours = sum(min(max(math.ceil(s.max_replicas * load), s.min_replicas), s.max_replicas)
                    for s in scaled for load in spec.cost.curve)
    scrapes = 3600 / spec.monitoring.scrape_interval_seconds
    assert use.ingested == round(Decimal(pod_hours) * 60 * Decimal(scrapes) * Decimal(730) / 24)
    assert use.series_per_pod == 60 and use.pods_peak == sum(s.max_replicas for s in scaled)
    assert use.queries == len(scaled) * 730 * 3600 / KEDA_POLLING_SECONDS


def test_the_queries_it_prices_are_the_planned_scaled_objects_triggers() -> None:
    # One Prometheus trigger per scaled tier, polled every KEDA_POLLING_SECONDS: what KEDA will ask.
    spec = spec_of("prod-aws")
    scaled = [r for r in stack_plan("prod-aws").resources if r["type"] == SCALED_OBJECT]
    assert scaled
    for r in scaled:
        body = r["inputs"]["spec"]
        assert body["pollingInterval"] == KEDA_POLLING_SECONDS
        assert sum(1 for t in body["triggers"] if t["type"] == "prometheus") == 1
    assert len(scaled) == len(metrics.use(spec).tiers)


def test_cost_json_names_each_store_fee_with_its_quantity_when_the_catalog_has_no_price() -> None:
    doc = cost_doc("--stack", "prod-aws")
    store = doc["metricsStore"]
    assert store["seriesPerPod"] == 60 and store["scrapeIntervalSeconds"] == 30
    assert store["pollingIntervalSeconds"] == KEDA_POLLING_SECONDS and int(store["samplesIngestedPerMonth"]) > 0
    unpriced = {n["name"]: n["reason"] for n in doc["notPriced"]}
    ingested = Decimal(store["samplesIngestedPerMonth"]) / 10**7
    reason = unpriced["metrics store: samples ingested"]
    assert f"{ingested.quantize(Decimal('0.0001')).normalize():,f} 10M samples a month" in reason
    assert "prometheusSamplesIngestedPer10M" in reason and "im-platform:cost.catalog" in reason
    assert {"metrics store: managed scraper", "metrics store: storage", "metrics store: query samples processed",
            "metrics store: scraper samples collected"} <= set(unpriced)
    assert not [f for f in doc["fixed"] if f["name"].startswith("metrics store")]


def test_an_override_catalog_prices_the_store_and_it_counts_in_every_total(tmp_path: Path) -> None:
    base = cost_doc("--config-file", str(copy_stack(tmp_path, "plain-aws", lambda c: None)))
    path = copy_stack(tmp_path, "store-aws", lambda c: c.update({"im-platform:cost": {
        "catalog": "tests/metrics-store-prices.yaml", "metricsSeriesPerPod": 100}}))
    doc = cost_doc("--config-file", str(path))
    fees = {f["name"]: f for f in doc["fixed"] if f["name"].startswith("metrics store")}
    ingested = Decimal(doc["metricsStore"]["samplesIngestedPerMonth"])
    assert doc["metricsStore"]["seriesPerPod"] == 100
    assert Decimal(fees["metrics store: samples ingested"]["monthlyQuantity"]) == (ingested / 10**7).quantize(Decimal("0.0001"))
    assert fees["metrics store: managed scraper"]["monthlyCost"] == "29.20"  # 730 h x 0.04
    assert all(f["priceBasis"] == "listed" for f in fees.values())
    added = sum(Decimal(f["monthlyCost"]) for f in fees.values())
    assert added > 0
    for total in ("min", "modeled", "max"):
        assert Decimal(doc["totals"][total]) - Decimal(base["totals"][total]) == added
    assert not [n for n in doc["notPriced"] if n["name"].startswith("metrics store")]
    # 100 series a pod instead of 60: the samples follow.
    assert ingested == (Decimal(base["metricsStore"]["samplesIngestedPerMonth"]) * 100 / 60).to_integral_value()
    text = cli_in_process("cost", "--config-file", str(path)).stdout
    assert "Metrics store (Amazon Managed Service for Prometheus)" in text and "x 100 series a pod" in text


def test_compare_prices_each_clouds_own_store() -> None:
    doc = cost_doc("--stack", "prod-aws", "--compare")
    stores = {row["cloud"]: row["metricsStore"]["store"] for row in doc["compare"]}
    assert stores == {"aws": "Amazon Managed Service for Prometheus",
                      "gcp": "Google Cloud Managed Service for Prometheus",
                      "azure": "Azure Monitor managed service for Prometheus"}
    gcp = next(row for row in doc["compare"] if row["cloud"] == "gcp")
    assert {n["name"] for n in gcp["notPriced"]} >= {"metrics store: samples ingested",
                                                     "metrics store: Monitoring API read calls"}


def test_an_existing_cluster_or_a_prometheus_of_ones_own_has_no_store_fee() -> None:
    doc = cost_doc("--stack", "dev-kubernetes")
    assert "metricsStore" not in doc
    assert not [n for n in doc["notPriced"] if n["name"].startswith("metrics store")]
    spec = spec_of("dev-kubernetes")
    assert spec.monitoring.prometheus_url and metrics.use(spec) is None


def test_metrics_series_per_pod_is_validated_in_one_line(tmp_path: Path) -> None:
    for bad in (0, "many", 10**6, True):
        path = copy_stack(tmp_path, "bad-aws", lambda c, v=bad: c.update({"im-platform:cost": {"metricsSeriesPerPod": v}}))
        result = cli_in_process("cost", "--config-file", str(path))
        assert result.returncode == 2, (bad, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("config error: im-platform:cost.metricsSeriesPerPod"), lines
        assert "Traceback" not in result.stderr
