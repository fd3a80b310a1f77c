"""The cost model and `python -m infra.cli cost`: the contract's rules, the catalog, the guardrail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import shapes
from infra.cost import catalog, model
from tests.conftest import ROOT
from tests.plans import stack_plan
from tests.test_cli import cli_in_process, copy_stack

CONTRACT_POOL_KEYS = {"name", "instanceTypes", "spot", "minNodes", "maxNodes", "nodeHourlyCost", "monthlyCost"}
# Added by the project (docs/cost.md): contract too.
POOL_KEYS = CONTRACT_POOL_KEYS | {"onDemandHourlyCost", "disk", "sustainedUseDiscount", "alwaysOnNodes", "committedNodes",
                                  "modeledNodeHours", "modeledBy", "tiers", "priceBasis"}


class FlatPrices:
    """A catalog region where every type costs what `table` says (spot: its own entry)."""

    def __init__(self, table: dict[str, str], spot: dict[str, str] | None = None) -> None:
        self.table = {k: Decimal(v) for k, v in table.items()}
        self.spot = {k: Decimal(v) for k, v in (spot or {}).items()}

    def node_price(self, instance_type: str, spot: bool) -> Decimal:
        return (self.spot if spot else self.table)[instance_type]

    def fee(self, key: str) -> Decimal:
        return Decimal("1")

    def control_plane_hourly(self, tier: str) -> Decimal:
        return Decimal("0.10")


def cost_json(*args: str) -> dict[str, Any]:
    result = cli_in_process("cost", *args, "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


# -- the model's rules --------------------------------------------------------------------------------


def test_node_count_is_clamped_between_min_and_max() -> None:
    curve = [Decimal("0.01"), Decimal("0.2"), Decimal("0.21"), Decimal(1)] + [Decimal(1)] * 20
    assert model.hourly_nodes(3, 40, curve)[:4] == [3, 8, 9, 40]  # ceil(0.4)=1 -> 3; ceil(8.4) = 9
    assert model.hourly_nodes(0, 6, [Decimal(0)] * 24) == [0] * 24


def test_every_step_down_is_held_ten_minutes_and_the_day_wraps() -> None:
    counts = [2] * 12 + [1] * 12
    # Twelve hours of 2, twelve of 1, and one ten-minute hold at the step down at hour 12. Hour 0
    # steps up from hour 23, so it holds nothing.
    assert model.day_node_minutes(counts) == 12 * 120 + 12 * 60 + 10
    wrapped = [1] * 12 + [2] * 12  # the step down is at hour 0 (after yesterday's hour 23)
    assert model.day_node_minutes(wrapped) == 12 * 120 + 12 * 60 + 10
    assert model.day_node_minutes([5, 1] * 12) == 12 * 300 + 12 * 60 + 12 * 40


def test_a_month_is_730_hours_of_modeled_days() -> None:
    prices = FlatPrices({"a": "0.5"})
    flat = model.pool_cost("p", ("a",), False, 2, 2, [Decimal(1)] * 24, prices)
    assert flat.at_min == flat.modeled == flat.at_max == Decimal("730")  # 2 nodes x 0.5 x 730
    # Half the day at 4 nodes, half at 2: 3 nodes on average, plus one 10-minute hold of 2 nodes.
    curve = [Decimal(1)] * 12 + [Decimal("0.5")] * 12
    pool = model.pool_cost("p", ("a",), False, 0, 4, curve, prices)
    assert pool.modeled == (Decimal(12 * 240 + 12 * 120 + 20) * Decimal("0.5") * 730 / 1440).quantize(Decimal("0.01"))


def test_a_spot_pool_costs_the_mean_of_its_types_spot_prices() -> None:
    prices = FlatPrices({"a": "1", "b": "1"}, spot={"a": "0.30", "b": "0.50", "c": "0.40"})
    assert model.node_hourly(prices, ("a", "b", "c"), True) == Decimal("0.40")
    assert model.node_hourly(prices, ("a", "b"), False) == Decimal("1")  # on-demand: the primary type


def test_spot_price_is_the_listed_one_or_on_demand_less_the_documented_discount() -> None:
    aws = catalog.region_prices("aws", "eu-west-1")
    assert aws.node_price("m7i.2xlarge", True) == aws.node_price("m7i.2xlarge", False) * (1 - aws.spot_discount)
    gcp = catalog.region_prices("gcp", "asia-east1")
    assert gcp.node_price("n2-standard-8", True) == Decimal(str(gcp.instances["n2-standard-8"]["spot"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=100), min_size=24, max_size=24),
       st.integers(min_value=0, max_value=50), st.integers(min_value=0, max_value=60),
       st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("20"), places=4))
def test_min_is_at_most_modeled_is_at_most_max(loads: list[int], low: int, extra: int, price: Decimal) -> None:
    loads[0] = 100  # the largest load is exactly 1
    curve = [Decimal(x) / 100 for x in loads]
    pool = model.pool_cost("p", ("a",), False, low, low + extra, curve, FlatPrices({"a": str(price)}))
    assert pool.at_min <= pool.modeled <= pool.at_max


def test_fixed_fees_are_counted_from_the_plan() -> None:
    def counts(stack: str) -> model.FixedCounts:
        resources = stack_plan(stack).resources
        return model.count_fixed(((r["type"], r["inputs"]) for r in resources), [r["name"] for r in resources])

    def core(c: model.FixedCounts) -> model.FixedCounts:
        return dataclasses.replace(c, public_ipv4=0, disks=(), not_priced=(), health_check_kinds=())

    # prod on AWS: a NAT gateway per zone (each with its Elastic IP); the gateway tier's LoadBalancer
    # Service is the one public LB; every node pool's launch template declares its root disk.
    prod = counts("prod-aws")
    assert core(prod) == model.FixedCounts(clusters=1, control_plane_tier="standard", nat_gateways=3,
                                           load_balancers=1, kms_keys=1, health_checks=0)
    assert prod.public_ipv4 == 3
    assert sorted(prod.disks) == [(p, 50, "gp3") for p in ("gateway", "logic", "system", "worker")]
    assert dict(prod.not_priced).keys() == {"Bucket", "LogGroup"}
    assert counts("dev-aws").nat_gateways == 1
    assert core(counts("staging-gcp")) == model.FixedCounts(clusters=1, nat_gateways=1, load_balancers=1, kms_keys=1)
    assert {d[1:] for d in counts("staging-gcp").disks} == {(100, "pd-balanced")}, "GKE's default disk"
    assert counts("prod-azure").control_plane_tier == "standard"
    internal = {"spec": {"type": "LoadBalancer"},
                "metadata": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}}
    assert model.count_fixed([("kubernetes:core/v1:Service", internal)]).load_balancers == 0
    assert model.count_fixed([("aws:route53/healthCheck:HealthCheck", {})] * 2).health_checks == 2


# -- the catalog -------------------------------------------------------------------------------------------


def every_shape_type(cloud: str) -> set[str]:
    """Every instance type the shape tables can produce, on-demand and spot."""
    found: set[str] = set()
    for vcpu in range(2, 129):
        for ratio in (1, 2, 4, 8):
            for spot in (False, True):
                try:
                    found.update(shapes.machine_types(cloud, vcpu, vcpu * ratio, spot))
                except shapes.ShapeError:
                    continue  # no type of this cloud has that shape: nothing to price
    return found


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_type_the_shapes_produce_has_a_price_in_every_catalog_region(cloud: str) -> None:
    types = every_shape_type(cloud)
    assert len(types) > 20
    regions = catalog.regions(cloud)
    assert len(regions) >= 3  # the stacks' region, one more in Europe, one more in Asia
    for region in regions:
        prices = catalog.region_prices(cloud, region)
        for t in sorted(types):
            for spot in (False, True):
                assert prices.node_price(t, spot) > 0, (region, t, spot)
        for key in catalog.FIXED_KEYS_BY_CLOUD[cloud]:
            assert prices.fee(key) >= 0, (region, key)
        assert prices.egress_tiers and prices.egress_tiers[-1][0] is None, (region, "internet egress tiers")
        assert set(prices.commitment) == {"1y", "3y"} and {"low", "high"} <= set(prices.spot_band), region
        assert {"standard"} <= set(prices.control_plane) and len(prices.control_plane) >= 2, region


def test_catalog_regions_cover_the_stacks_and_the_comparison_table() -> None:
    from infra.cost import locations

    for cloud in ("aws", "gcp", "azure"):
        # Every region of the location table (the vendors' public regions) has a catalog file, and back.
        assert set(catalog.regions(cloud)) == set(locations.table()["regions"][cloud]), cloud
    for path in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        doc = cost_json("--config-file", str(path))
        if doc["cloud"] == "kubernetes":  # an existing cluster: no catalog is read (tests/test_kubernetes.py)
            continue
        assert doc["region"] in catalog.regions(doc["cloud"])


@pytest.mark.parametrize(("cloud", "region", "instance_type", "list_price"), [
    ("aws", "eu-west-1", "c6i.2xlarge", "0.3648"),
    ("aws", "eu-west-1", "m6i.xlarge", "0.214"),
    ("gcp", "europe-west1", "n2-standard-8", "0.4277"),
    ("azure", "westeurope", "Standard_D8s_v5", "0.46"),
])
def test_well_known_types_match_the_list_price(cloud: str, region: str, instance_type: str, list_price: str) -> None:
    got = catalog.region_prices(cloud, region).node_price(instance_type, False)
    assert abs(got - Decimal(list_price)) / Decimal(list_price) <= Decimal("0.03")


def test_every_price_is_a_decimal_string_with_a_source_and_a_date() -> None:
    from infra.config import yamlio  # the safe loader, in C (test_yamlio: it reads the catalogs the same)

    for cloud in ("aws", "gcp", "azure"):
        doc = yamlio.safe_load((catalog.CATALOG_DIR / f"{cloud}.yaml").read_text())
        for region in doc["regions"]:
            block = yamlio.safe_load((catalog.CATALOG_DIR / cloud / f"{region}.yaml").read_text())
            assert block["source"] and block["as_of"] and block["fixed"]["source"] and block["fixed"]["as_of"], region
            # Whatever no table lists is kept apart and comes with its rule.
            assert not block.get("derivedInstances") or block["derivation"]["instances"], region
            assert not block.get("derivedFees") or block["derivation"]["fees"], region
            for entry in [*block["instances"].values(), *(block.get("derivedInstances") or {}).values()]:
                values = entry.values() if isinstance(entry, dict) else [entry]
                assert all(isinstance(v, str) for v in values), (region, entry)


def test_a_stale_catalog_warns_naming_its_date() -> None:
    prices = catalog.region_prices("aws", "eu-west-1")
    assert catalog.stale_warning(prices, today=prices.oldest + dt.timedelta(days=180)) is None
    warning = catalog.stale_warning(prices, today=prices.oldest + dt.timedelta(days=181))
    assert warning is not None and prices.oldest.isoformat() in warning and "181 days" in warning


def test_cost_prints_the_stale_warning_on_stderr() -> None:
    from infra.cost.command import stack_cost

    seen: list[str] = []
    stack_cost("dev-aws", None, today=dt.date(2030, 1, 1), warn=seen.append)
    assert len(seen) == 1 and "2026-07-20" in seen[0]


# -- the command -------------------------------------------------------------------------------------------


def test_json_follows_the_contract() -> None:
    doc = cost_json("--stack", "prod-aws")
    assert {"stack", "cloud", "region", "currency", "catalog", "pools", "fixed", "totals", "notPriced"} <= set(doc)
    assert (doc["stack"], doc["cloud"], doc["region"], doc["currency"]) == ("prod-aws", "aws", "eu-west-1", "USD")
    assert doc["catalog"]["as_of"] and doc["catalog"]["sources"]
    for pool in doc["pools"]:
        assert set(pool) == POOL_KEYS
        assert set(pool["monthlyCost"]) == {"min", "modeled", "max", "fixedCapacity"}
        assert all(isinstance(v, str) for v in pool["monthlyCost"].values())
    gateway = next(p for p in doc["pools"] if p["name"] == "gateway")
    # The prod gateway pool is arm64 (8 vCPU, 16 GiB: Graviton's c7g.2xlarge), priced from the catalog.
    assert gateway["instanceTypes"] == ["c7g.2xlarge"]
    assert Decimal(gateway["nodeHourlyCost"]) == catalog.region_prices("aws", "eu-west-1").node_price("c7g.2xlarge", False)
    assert gateway["disk"] == {"sizeGiB": 50, "type": "gp3", "hourlyCost": str(Decimal(50) * Decimal("0.088") / 730)}
    worker = next(p for p in doc["pools"] if p["name"] == "worker")
    assert len(worker["instanceTypes"]) == 4 and worker["spot"] is True
    assert doc["fixed"][0] == {"name": "control plane (standard, 1.35 in standard support)", "monthlyQuantity": "730",
                               "unit": "hours", "price": "0.10", "monthlyCost": "73.00", "priceBasis": "listed"}
    for f in doc["fixed"]:
        assert set(f) == {"name", "monthlyQuantity", "unit", "price", "monthlyCost", "priceBasis"}
    t = {k: Decimal(v) for k, v in doc["totals"].items() if k != "modeledBand"}
    assert t["min"] <= t["modeled"] <= t["max"] <= t["fixedCapacity"]
    assert t["savingPercent"] == (100 * (t["max"] - t["modeled"]) / t["max"]).quantize(Decimal("0.1"))
    assert t["savingVsFixedCapacityPercent"] == (100 * (t["fixedCapacity"] - t["modeled"]) / t["fixedCapacity"]).quantize(Decimal("0.1"))


@pytest.mark.parametrize("path", sorted((ROOT / "stacks").glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_adds_up_to_its_totals_to_the_cent(path: Path) -> None:
    """Rows to the cent, and rows add up to each total exactly: what a finance review checks first."""
    doc = cost_json("--config-file", str(path))
    fixed = sum((Decimal(f["monthlyCost"]) for f in doc["fixed"]), Decimal(0))
    for f in doc["fixed"]:
        assert Decimal(f["monthlyCost"]) == Decimal(f["monthlyCost"]).quantize(Decimal("0.01")), f
    t = doc["totals"]
    for key in ("min", "modeled", "max", "fixedCapacity"):
        rows = sum((Decimal(p["monthlyCost"][key]) for p in doc["pools"]), Decimal(0)) + fixed
        assert rows == Decimal(t[key]), (path.name, key)
        assert Decimal(t[key]) == Decimal(t[key]).quantize(Decimal("0.01")), (path.name, key)
    if doc["cloud"] == "kubernetes":
        # An existing cluster: nothing is priced, so every total is zero and the nodes say why.
        assert not doc["pools"] and all(Decimal(t[k]) == 0 for k in ("min", "modeled", "max", "fixedCapacity"))
        assert "nodes" in [n["name"] for n in doc["notPriced"]]
        return
    assert Decimal(0) < Decimal(t["min"]) <= Decimal(t["modeled"]) <= Decimal(t["max"]) <= Decimal(t["fixedCapacity"])
    for p in doc["pools"]:
        if p["tiers"]:
            assert sum(Decimal(x["modeled"]) for x in p["tiers"]) == Decimal(p["monthlyCost"]["modeled"]), p["name"]
    names = [n["name"] for n in doc["notPriced"]]
    assert len(names) == len(set(names)) and all(n["reason"] for n in doc["notPriced"])
    zero = [f["name"] for f in doc["fixed"] if not Decimal(f["monthlyCost"])]
    if doc["pools"] and zero:
        assert any(n in ("internet egress", "Key Vault operations") for n in names), zero


def test_text_leads_with_the_saving_against_fixed_capacity_and_shows_every_row() -> None:
    result = cli_in_process("cost", "--stack", "prod-aws")
    assert result.returncode == 0, result.stderr
    doc = cost_json("--stack", "prod-aws")
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"Saving against fixed capacity: {doc['totals']['savingVsFixedCapacityPercent']}%")
    for pool in doc["pools"]:
        node = Decimal(pool["nodeHourlyCost"]) + Decimal(pool["disk"]["hourlyCost"])
        assert any(line.split()[:1] == [pool["name"]] and str(node.quantize(Decimal("0.0001"))) in line
                   for line in lines), pool["name"]
    assert "control plane (standard, 1.35 in standard support)" in result.stdout and "NAT gateway" in result.stdout
    assert "2,190 hours" in result.stdout and "1 month x" in result.stdout and "1 months" not in result.stdout
    assert f"{doc['totals']['savingPercent']}% against max" in result.stdout
    assert "fixed capacity: every pool at maxNodes on demand, all month" in result.stdout
    assert "Not priced:" in result.stdout


def test_raising_max_nodes_by_n_raises_max_by_n_node_prices_for_730_hours(tmp_path: Path) -> None:
    def worker_max(n: int):  # noqa: ANN202 - an edit of the config map
        return lambda c: c["im-platform:cluster"]["nodePools"]["worker"].update(maxNodes=n)

    base = tmp_path / "base.json"
    (tmp_path / "before").mkdir()
    earlier = copy_stack(tmp_path / "before", "b-aws", worker_max(6))
    base.write_text(json.dumps(cost_json("--config-file", str(earlier))))
    raised = copy_stack(tmp_path, "b-aws", worker_max(13))
    doc = cost_json("--config-file", str(raised), "--base", str(base))
    worker_doc = next(p for p in doc["pools"] if p["name"] == "worker")
    price = Decimal(worker_doc["nodeHourlyCost"]) + Decimal(worker_doc["disk"]["hourlyCost"])
    before = json.loads(base.read_text())
    cent = Decimal("0.01")  # each pool row is rounded to the cent on its own
    assert abs(Decimal(doc["totals"]["max"]) - Decimal(before["totals"]["max"]) - 7 * price * 730) < cent
    change = doc["change"]
    worker = next(p for p in change["pools"] if p["name"] == "worker")
    assert abs(Decimal(worker["max"]["change"]) - 7 * price * 730) < cent
    assert worker["max"]["percent"] == str((Decimal(700) / 6).quantize(Decimal("0.1")))  # 6 -> 13 nodes
    gateway = next(p for p in change["pools"] if p["name"] == "gateway")
    assert Decimal(gateway["max"]["change"]) == 0 and gateway["max"]["percent"] == "0.0"
    assert abs(Decimal(change["totals"]["max"]["change"]) - 7 * price * 730) < cent
    text = cli_in_process("cost", "--config-file", str(raised), "--base", str(base))
    assert "Change against base:" in text.stdout and "worker: " in text.stdout and "total: " in text.stdout
    # The base may also be the earlier stack's plan --json: priced the same way, the same change.
    plan = cli_in_process("plan", "--config-file", str(earlier), "--json")
    base_plan = tmp_path / "base-plan.json"
    base_plan.write_text(plan.stdout)
    from_plan = cost_json("--config-file", str(raised), "--base", str(base_plan))["change"]
    assert from_plan == change


def test_compare_prices_all_three_clouds_cheapest_first() -> None:
    doc = cost_json("--stack", "prod-aws", "--compare")
    rows = doc["compare"]
    assert {r["cloud"] for r in rows} == {"aws", "gcp", "azure"}
    modeled = [Decimal(r["totals"]["modeled"]) for r in rows]
    assert modeled == sorted(modeled)
    own = next(r for r in rows if r["cloud"] == "aws")
    assert own["totals"] == {k: v for k, v in doc["totals"].items() if k != "modeledBand"} and own["region"] == "eu-west-1"
    assert [r["current"] for r in rows].count(True) == 1 and own["current"]
    for row in rows:
        assert row["pools"] and row["fixed"] and row["spotBasis"], row["cloud"]
        assert {p["name"] for p in row["pools"]} == {p["name"] for p in doc["pools"]}
    types = {r["cloud"]: next(p for p in r["pools"] if p["name"] == "logic")["instanceTypes"][0] for r in rows}
    assert types["aws"].startswith("m7i") and types["gcp"].startswith("n2-") and types["azure"].startswith("Standard_")
    assert next(r for r in rows if r["cloud"] == "azure")["region"] == "northeurope"
    chosen = cost_json("--stack", "prod-aws", "--compare", "--regions", "gcp=asia-east1,azure=japaneast")
    assert {r["cloud"]: r["region"] for r in chosen["compare"]} == {"aws": "eu-west-1", "gcp": "asia-east1",
                                                                    "azure": "japaneast"}


def test_an_unknown_type_exits_2_naming_it(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "odd-aws", lambda c: c["im-platform:cluster"]["nodePools"]["gateway"]
                      .update(instanceType="x9z.4xlarge"))
    result = cli_in_process("cost", "--config-file", str(path))
    assert result.returncode == 2 and "x9z.4xlarge" in result.stderr and "Traceback" not in result.stderr


def test_an_unpriced_type_exits_2_naming_it(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "odd-aws", lambda c: c["im-platform:cluster"]["nodePools"]["gateway"].update(
        instanceType="x2iedn.2xlarge"))
    result = cli_in_process("cost", "--config-file", str(path))
    assert result.returncode == 2 and "x2iedn.2xlarge" in result.stderr and "im-platform:cost.catalog" in result.stderr


def test_an_override_catalog_replaces_prices_and_a_missing_one_is_a_config_error(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "deal-aws", lambda c: c.update({"im-platform:cost": {
        "catalog": "tests/cost-override.yaml", "egressGiBPerMonth": 1000}}))
    doc = cost_json("--config-file", str(path))
    gateway = next(p for p in doc["pools"] if p["name"] == "gateway")
    assert gateway["nodeHourlyCost"] == "0.15"
    assert {"tests/cost-override.yaml", "a negotiated rate (test fixture)"} <= set(doc["catalog"]["sources"])
    nat_data = next(f for f in doc["fixed"] if f["name"] == "NAT data processed")
    assert nat_data["monthlyQuantity"] == "1000" and nat_data["monthlyCost"] == "48.00"
    missing = copy_stack(tmp_path, "gone-aws", lambda c: c.update({"im-platform:cost": {"catalog": "prices/none.yaml"}}))
    result = cli_in_process("cost", "--config-file", str(missing))
    assert result.returncode == 2 and "im-platform:cost.catalog" in result.stderr


@pytest.mark.parametrize(("block", "fragment"), [
    ({"curve": [0.5] * 24}, "the peak hour is 1"),
    ({"curve": [1] * 23}, "got 23 values"),
    ({"curve": [1.5] + [1] * 23}, "im-platform:cost.curve[0]"),
    ({"egressGiBPerMonth": -1}, "im-platform:cost.egressGiBPerMonth"),
    ({"curv": []}, "did you mean im-platform:cost.curve?"),
])
def test_a_bad_cost_block_is_one_config_error(tmp_path: Path, block: dict[str, Any], fragment: str) -> None:
    path = copy_stack(tmp_path, "bad-aws", lambda c: c.update({"im-platform:cost": block}))
    result = cli_in_process("cost", "--config-file", str(path))
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert result.stderr.startswith("config error: ")


# -- the guardrail -----------------------------------------------------------------------------------------


def test_check_fails_a_stack_over_its_max_monthly_cost_naming_the_limit_and_the_figure(tmp_path: Path) -> None:
    figure = Decimal(cost_json("--stack", "dev-aws")["totals"]["max"])
    at_limit = copy_stack(tmp_path, "even-aws", lambda c: c["im-platform:guardrails"].update(maxMonthlyCost=str(figure)))
    assert cli_in_process("check", "--config-file", str(at_limit)).returncode == 0
    below = figure - Decimal("0.01")
    over = copy_stack(tmp_path, "over-aws", lambda c: c["im-platform:guardrails"].update(maxMonthlyCost=str(below)))
    result = cli_in_process("check", "--config-file", str(over))
    assert result.returncode == 1
    assert "max-monthly-cost" in result.stdout and "maxMonthlyCost" in result.stdout
    assert f"({model.money(below)})" in result.stdout and model.money(figure.quantize(Decimal("0.01"))) in result.stdout


def test_a_bad_max_monthly_cost_is_a_config_error(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "bad-aws", lambda c: c["im-platform:guardrails"].update(maxMonthlyCost="lots"))
    result = cli_in_process("check", "--config-file", str(path))
    assert result.returncode == 2 and "im-platform:guardrails.maxMonthlyCost" in result.stderr


def test_a_traffic_stack_costs_its_health_checks_by_type_interval_and_endpoint() -> None:
    doc = cost_json("--stack", "prod-traffic")
    assert doc["pools"] == [] and (doc["cloud"], doc["region"]) == ("aws", "us-east-1")
    checks = {f["name"]: f["monthlyCost"] for f in doc["fixed"] if f["name"].startswith("health check")}
    # Route 53: $0.50 + 2 x $1.00 (HTTPS, 10 s) for the ELB endpoint; $0.75 + 2 x $2.00 for the Azure one.
    assert checks == {"health check (AWS endpoint, HTTPS + 10 s interval)": "2.50",
                      "health check (non-AWS endpoint, HTTPS + 10 s interval)": "4.75"}
    assert doc["totals"]["min"] == doc["totals"]["max"] == doc["totals"]["fixedCapacity"] == "7.25"
    result = cli_in_process("cost", "--stack", "prod-traffic", "--compare")
    assert result.returncode == 2 and "traffic stack" in result.stderr, result.stderr


def test_a_traffic_stack_outside_stacks_is_priced_with_its_pair_beside_it(tmp_path: Path) -> None:
    for name in ("prod-traffic", "prod-aws", "prod-azure"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    doc = cost_json("--config-file", str(tmp_path / "Pulumi.prod-traffic.yaml"))
    assert doc["totals"]["modeled"] == cost_json("--stack", "prod-traffic")["totals"]["modeled"]
