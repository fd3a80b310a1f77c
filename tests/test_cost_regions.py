"""Every public region priced: new regions held to the tables they are read from (file and line),
derived figures to their rule, equivalent regions by geography, and held-out stacks in regions the
examples do not use costed, compared and checked with every price marked listed or derived."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cost import catalog, command, locations
from tests.conftest import ROOT
from tests.test_cli import cli_in_process

TOLERANCE = Decimal("0.03")


def close(got: Decimal | str, want: str) -> bool:
    return abs(Decimal(got) - Decimal(want)) <= TOLERANCE * Decimal(want)


# (cloud, region, type, on-demand, spot or None), each read in the named table by hand.
NEW_REGION_ROWS = [
    # github.com/Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml, commit fd66b26 (generated
    # 2026-07-30), n2-standard-8: lines 92246-92247 (asia-southeast1), 92393-92394 (southamerica-east1),
    # 92232-92233 (asia-south1), 92365-92366 (me-central2).
    ("gcp", "asia-southeast1", "n2-standard-8", "0.479224", "0.18664"),
    ("gcp", "southamerica-east1", "n2-standard-8", "0.61664", "0.125088"),
    ("gcp", "asia-south1", "n2-standard-8", "0.466576", "0.141936"),
    ("gcp", "me-central2", "n2-standard-8", "0.6215552", "0.094144"),
    # github.com/Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go, commit
    # 2b431da (generated 2026-06-18), Standard_D8s_v5: lines 47146 (southeastasia), 5574
    # (brazilsouth), 10240 (centralindia).
    ("azure", "southeastasia", "Standard_D8s_v5", "0.48", None),
    ("azure", "brazilsouth", "Standard_D8s_v5", "0.612", None),
    ("azure", "centralindia", "Standard_D8s_v5", "0.404", None),
    # github.com/skypilot-org/skypilot-catalog catalogs/v7/aws/vms.csv, commit 001367d, the rows
    # `c6i.2xlarge,,,8.0,16.0,,0.34,...,ap-south-1` and `m6i.2xlarge,,,8.0,32.0,,0.404,...,ap-south-1`,
    # `m6i.2xlarge,,,8.0,32.0,,0.4708,...,me-central-1`, `m6i.2xlarge,,,8.0,32.0,,0.48,...,ap-southeast-1`.
    ("aws", "ap-south-1", "c6i.2xlarge", "0.34", None),
    ("aws", "ap-south-1", "m6i.2xlarge", "0.404", None),
    ("aws", "me-central-1", "m6i.2xlarge", "0.4708", None),
    ("aws", "ap-southeast-1", "m6i.2xlarge", "0.48", None),
]


@pytest.mark.parametrize(("cloud", "region", "instance_type", "on_demand", "spot"), NEW_REGION_ROWS)
def test_new_regions_match_the_tables_they_name(cloud: str, region: str, instance_type: str, on_demand: str,
                                                spot: str | None) -> None:
    prices = catalog.region_prices(cloud, region)
    assert close(prices.node_price(instance_type, False), on_demand), (region, instance_type)
    assert not prices.is_derived(instance_type), (region, instance_type, "a row the table lists is listed")
    if spot:
        assert close(prices.node_price(instance_type, True), spot), (region, instance_type, "spot")


def test_derived_aws_rows_follow_their_rule() -> None:
    """Karpenter's us-east-1 price (zz_generated.pricing_aws.go line 102: c7i.2xlarge 0.357, line 337:
    m7i.2xlarge 0.4032) x the region's ratio of c6i/m6i.2xlarge to us-east-1's (0.34 / 0.384)."""
    mumbai = catalog.region_prices("aws", "ap-south-1")
    assert mumbai.is_derived("c7i.2xlarge") and mumbai.is_derived("m7i.2xlarge")
    assert close(mumbai.node_price("c7i.2xlarge", False), str(Decimal("0.357") * Decimal("0.34") / Decimal("0.34")))
    assert close(mumbai.node_price("m7i.2xlarge", False), str(Decimal("0.4032") * Decimal("0.404") / Decimal("0.384")))
    # sa-east-1 is in no regional table: af-south-1, the nearest region that is (Cape Town), gives
    # the ratios (c6i.2xlarge 0.456, m6i.2xlarge 0.508); the rule says so.
    saopaulo = catalog.region_prices("aws", "sa-east-1")
    assert close(saopaulo.node_price("c7i.2xlarge", False), str(Decimal("0.357") * Decimal("0.456") / Decimal("0.34")))
    assert "af-south-1" in saopaulo.derivation["instances"] and "nearest" in saopaulo.derivation["instances"]
    assert "us-east-1" not in {r for r in catalog.regions("aws") if catalog.region_prices("aws", r).derived_types
                               and r == "us-east-1"}


def test_derived_gcp_rows_follow_their_rule() -> None:
    """northamerica-south1 lists no N2: us-central1's n2 price x us-south1's n2-standard-8 over
    us-central1's (pricing.yml: 0.45839696 / 0.388472)."""
    mexico = catalog.region_prices("gcp", "northamerica-south1")
    iowa = catalog.region_prices("gcp", "us-central1")
    assert mexico.is_derived("n2-standard-8") and not iowa.is_derived("n2-standard-8")
    factor = Decimal("0.45839696") / Decimal("0.388472")
    assert close(mexico.node_price("n2-standard-4", False), str(iowa.node_price("n2-standard-4", False) * factor))
    assert "us-south1" in mexico.derivation["instances"]


@pytest.mark.parametrize(("cloud", "saopaulo", "instance_type"), [
    ("aws", "sa-east-1", "m7i.2xlarge"), ("gcp", "southamerica-east1", "n2-standard-8"),
    ("azure", "brazilsouth", "Standard_D8s_v5")])
def test_sao_paulo_costs_more_than_the_cheapest_us_region(cloud: str, saopaulo: str, instance_type: str) -> None:
    us = [r for r in catalog.regions(cloud) if r.startswith(("us-", "east", "west", "central", "north", "south"))
          and (locations.location(cloud, r) or (0, 0, ""))[1] < -60 and (locations.location(cloud, r) or (0, 0, ""))[0] > 24]
    assert len(us) >= 4, us
    cheapest = min(catalog.region_prices(cloud, r).node_price(instance_type, False) for r in us)
    assert catalog.region_prices(cloud, saopaulo).node_price(instance_type, False) > cheapest


@pytest.mark.parametrize(("cloud", "region", "expected"), [
    ("aws", "ap-southeast-1", {"gcp": "asia-southeast1", "azure": "southeastasia"}),
    ("gcp", "asia-southeast1", {"aws": "ap-southeast-1", "azure": "southeastasia"}),
    ("azure", "brazilsouth", {"aws": "sa-east-1", "gcp": "southamerica-east1"}),
    ("aws", "ap-south-1", {"gcp": "asia-south1", "azure": "westindia"}),
    ("aws", "me-central-1", {"gcp": "me-central1", "azure": "uaenorth"}),
])
def test_equivalent_regions_are_the_nearest_by_the_vendors_locations(cloud: str, region: str,
                                                                      expected: dict[str, str]) -> None:
    for other, want in expected.items():
        assert command.equivalent_region(cloud, region, other) == want


def test_a_region_without_a_location_names_regions_only_when_given() -> None:
    with pytest.raises(catalog.PriceError) as plain:
        command.equivalent_region("aws", "xx-nowhere-1", "gcp")
    assert "--regions is" not in str(plain.value) and "pass --regions gcp=REGION" in str(plain.value)
    with pytest.raises(catalog.PriceError) as given:
        command.equivalent_region("aws", "xx-nowhere-1", "gcp", regions_given="azure=westeurope")
    assert str(given.value).startswith("config error: --regions is")


def _held_out(tmp_path: Path, example: str, name: str, key: str, region: str) -> Path:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{example}.yaml").read_text())
    doc["config"][key] = region
    doc["config"].pop("im-platform:dr", None)
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(("example", "name", "key", "region"), [
    ("dev-aws", "sg-aws", "aws:region", "ap-south-1"),
    ("staging-gcp", "sg-gcp", "gcp:region", "southamerica-east1"),
    ("prod-azure", "sg-azure", "azure-native:location", "brazilsouth"),
])
def test_held_out_regions_get_a_cost_a_comparison_and_each_price_says_listed_or_derived(
        tmp_path: Path, example: str, name: str, key: str, region: str) -> None:
    path = _held_out(tmp_path, example, name, key, region)
    result = cli_in_process("cost", "--config-file", str(path), "--compare", "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["region"] == region and Decimal(doc["totals"]["modeled"]) > 0
    for row in [doc, *doc["compare"]]:
        assert all(p["priceBasis"] in ("listed", "derived") and Decimal(p["nodeHourlyCost"]) > 0 for p in row["pools"])
        assert all(f["priceBasis"] in ("listed", "derived") for f in row["fixed"])
        # A derived figure comes with its rule; a row with none has every figure listed.
        has_derived = any(x["priceBasis"] == "derived" for x in [*row["pools"], *row["fixed"]])
        assert bool(row["derived"]) == has_derived, row.get("cloud", doc["cloud"])
    assert {r["cloud"] for r in doc["compare"]} == {"aws", "gcp", "azure"}
    # The text shows the same marks (rendered from this document, as `cost` without --json does).
    text = command.render(doc)
    assert ("~" in text) == bool(doc["derived"]) and all(d["rule"] in text for d in doc["derived"])


def test_check_judges_every_rule_it_can_and_names_the_guardrail_it_cannot(tmp_path: Path) -> None:
    """A pool type no catalog prices (a fixed instanceType) with maxMonthlyCost set: the cost rule is
    named as not judged, with how to supply the price; the other rules still run."""
    def edit(c: dict[str, Any]) -> None:
        c["im-platform:cluster"]["nodePools"]["gateway"]["instanceType"] = "x2iedn.2xlarge"
        c.setdefault("im-platform:guardrails", {})["maxMonthlyCost"] = "20000"
    from tests.test_cli import copy_stack

    path = copy_stack(tmp_path, "unpriced-aws", edit)
    result = cli_in_process("check", "--config-file", str(path), "--json")
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert [n["rule"] for n in doc["notJudged"]] == ["max-monthly-cost"]
    reason = doc["notJudged"][0]["reason"]
    assert "x2iedn.2xlarge" in reason and "im-platform:cost.catalog" in reason and "--export-catalog" in reason
    lines = [line for line in result.stderr.splitlines() if "not judged" in line]
    assert len(lines) == 1 and "max-monthly-cost" in lines[0]
    assert len(doc["rules"]) > 10  # the rest were evaluated


def test_an_exported_catalog_loaded_back_as_an_override_prices_the_same(tmp_path: Path) -> None:
    import dataclasses

    from infra.config.loader import load_spec
    from infra.cost import model
    from infra.offline.plan import project_name, read_stack_config, stack_file
    from tests.plans import stack_plan

    out = tmp_path / "negotiated.yaml"
    result = cli_in_process("cost", "--stack", "prod-aws", "--export-catalog", str(out), "--json")
    assert result.returncode == 0, result.stderr
    before = json.loads(result.stdout)
    exported = yaml.safe_load(out.read_text())
    assert exported["cloud"] == "aws" and set(exported["regions"]) == {"eu-west-1"}
    values, _ = read_stack_config(stack_file("prod-aws"), project_name())
    spec = load_spec(values, project=project_name(), stack="prod-aws")
    plan = stack_plan("prod-aws")
    counts = model.count_fixed(((r["type"], r.get("inputs") or {}) for r in plan.resources), [r["name"] for r in plan.resources])
    # The override path is read relative to the repository root; an absolute one is kept as it is.
    spec = dataclasses.replace(spec, cost=dataclasses.replace(spec.cost, catalog=str(out)))
    est, prices = command.price(spec, counts, spec.cloud, spec.region)
    assert command.totals_json(est) == {k: v for k, v in before["totals"].items() if k != "modeledBand"}
    assert [command.basis(command.pool_derived(p, prices)) for p in est.pools] == [p["priceBasis"] for p in before["pools"]]
    assert str(out) in prices.sources
