"""What a finance review checks in `cost`: the fixed-capacity baseline, every fee by its vendor's
rule, the support window, commitments, right-sizing, and the levers on the example prod stacks."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from infra.cost import catalog, model, rightsize
from infra.cost.command import chart
from tests.conftest import ROOT
from tests.test_cli import cli_in_process, copy_stack
from tests.test_cost import FlatPrices, cost_json


def flat_curve(load: str = "1") -> tuple[Decimal, ...]:
    return (Decimal(load),) * 24


# -- the model, pure -----------------------------------------------------------------------------------


def test_fixed_capacity_is_max_nodes_on_demand_all_month_even_for_a_spot_pool() -> None:
    prices = FlatPrices({"a": "1.00"}, spot={"a": "0.30"})
    half = (Decimal("0.5"),) * 24
    pool = model.pool_cost("w", ("a",), True, 0, 10, half, prices)
    assert pool.fixed_capacity == Decimal("7300.00")  # 10 nodes x $1.00 x 730 h, on demand
    assert pool.at_max == Decimal("2190.00") and pool.modeled == Decimal("1095.00")  # spot, 5 nodes


def test_a_commitment_prices_the_always_on_floor_at_its_discount_and_never_fixed_capacity() -> None:
    prices = FlatPrices({"a": "1.00"})
    curve = (Decimal("0.2"),) * 12 + (Decimal(1),) * 12  # 2 nodes all day, 10 for half of it
    plain = model.pool_cost("g", ("a",), False, 2, 10, curve, prices)
    deal = model.Commitment("3y", Decimal(1), Decimal("0.5"))
    committed = model.pool_cost("g", ("a",), False, 2, 10, curve, prices, commitment=deal)
    assert plain.floor_nodes == committed.floor_nodes == 2
    assert plain.modeled - committed.modeled == Decimal(2) * Decimal("0.5") * 730  # two floor nodes at half price
    assert plain.fixed_capacity == committed.fixed_capacity == Decimal("7300.00")
    half = model.pool_cost("g", ("a",), False, 2, 10, curve, prices,
                           commitment=model.Commitment("1y", Decimal("0.5"), Decimal("0.5")))
    assert plain.modeled - half.modeled == Decimal("0.5") * 730


def test_gcp_sustained_use_follows_the_quarter_tiers_per_node() -> None:
    full = model.sud_factor(Decimal(1), model.SUD_TIERS["n2"])
    assert full == (Decimal(1) + Decimal("0.8678") + Decimal("0.733") + Decimal("0.6")) / 4  # 20% off at 100%
    assert model.sud_factor(Decimal("0.25"), model.SUD_TIERS["n2"]) == Decimal("0.25")  # the first quarter is full price
    assert model.sud_tiers("gcp", "e2-standard-8") is None and model.sud_tiers("aws", "n2-standard-8") is None
    prices = FlatPrices({"n2-standard-8": "1.00"})
    pool = model.pool_cost("p", ("n2-standard-8",), False, 1, 1, flat_curve(), prices, cloud="gcp")
    assert pool.modeled == pool.at_max == pool.fixed_capacity == (full * 730).quantize(Decimal("0.01"))


def test_internet_egress_is_priced_by_tier_of_volume() -> None:
    aws = catalog.region_prices("aws", "eu-west-1")
    fees = model.internet_egress_fees(Decimal(60000), aws.egress_tiers)
    assert [(f.quantity, f.price) for f in fees] == [(Decimal(10240), Decimal("0.09")), (Decimal(40960), Decimal("0.085")),
                                                     (Decimal(8800), Decimal("0.07"))]
    assert sum(f.monthly for f in fees) == Decimal("921.60") + Decimal("3481.60") + Decimal("616.00")


@pytest.mark.parametrize(("props", "aws_endpoint", "monthly"), [
    ({"type": "HTTP", "requestInterval": 30, "fqdn": "x.elb.amazonaws.com"}, True, "0.50"),
    ({"type": "HTTPS", "requestInterval": 30, "fqdn": "x.elb.amazonaws.com"}, True, "1.50"),
    ({"type": "HTTPS", "requestInterval": 10, "fqdn": "x.elb.amazonaws.com"}, True, "2.50"),
    ({"type": "HTTP", "requestInterval": 30, "ipAddress": "203.0.113.9"}, False, "0.75"),
    ({"type": "HTTPS_STR_MATCH", "requestInterval": 10, "fqdn": "a.example.com"}, False, "6.75"),
])
def test_route53_health_checks_are_priced_by_type_interval_and_endpoint(props: dict[str, object], aws_endpoint: bool,
                                                                         monthly: str) -> None:
    counts = model.count_fixed([("aws:route53/healthCheck:HealthCheck", props)])
    assert counts.health_check_kinds[0][0] is aws_endpoint
    fees = model.fixed_fees(counts, catalog.region_prices("aws", "us-east-1"), Decimal(0))
    assert [f.monthly for f in fees] == [Decimal(monthly)]


# -- right-sizing, pure, against a planned Deployment ---------------------------------------------------


def deployment(name: str, pool: str, cpu: str, memory: str, *, sidecar: tuple[str, str] | None = None) -> dict[str, object]:
    pod: dict[str, object] = {"nodeSelector": {"im-platform/pool": pool},
                              "containers": [{"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if sidecar:
        pod["initContainers"] = [{"name": "tls", "restartPolicy": "Always",
                                  "resources": {"requests": {"cpu": sidecar[0], "memory": sidecar[1]}}},
                                 {"name": "once", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]
    return {"type": rightsize.DEPLOYMENT, "inputs": {"metadata": {"name": name, "namespace": name},
                                                     "spec": {"template": {"spec": pod}}}}


def hpa(name: str, most: int) -> dict[str, object]:
    return {"type": rightsize.HPA, "inputs": {"metadata": {"namespace": name},
                                              "spec": {"maxReplicas": most, "scaleTargetRef": {"name": name}}}}


def test_a_pool_far_beyond_its_tiers_is_named_with_the_max_nodes_that_fit() -> None:
    resources = [deployment("gateway", "gateway", "1", "2Gi"), hpa("gateway", 60)]
    (fit,) = rightsize.fits([("gateway", 8, 16, 40)], resources)
    assert fit.nodes_needed == 10 and fit.oversized  # 6 pods a node (12.8 GiB allocatable / 2 GiB)
    line = fit.warning("held-out")
    assert "nodePools.gateway.maxNodes is 40" in line and "maxNodes 10 would fit" in line
    assert not rightsize.fits([("gateway", 8, 16, 12)], resources)[0].oversized  # within the 25% margin


def test_native_sidecars_count_in_a_tiers_requests_and_plain_init_containers_do_not_add() -> None:
    plain = rightsize.workloads([deployment("gateway", "gateway", "1", "2Gi")])[0]
    with_tls = rightsize.workloads([deployment("gateway", "gateway", "1", "2Gi", sidecar=("500m", "512Mi"))])[0]
    assert (plain.cpu, plain.memory_gib) == (Decimal(1), Decimal(2))
    assert (with_tls.cpu, with_tls.memory_gib) == (Decimal("1.5"), Decimal("2.5"))
    fit = rightsize.fits([("gateway", 8, 16, 40)], [deployment("gateway", "gateway", "1", "2Gi", sidecar=("500m", "512Mi")),
                                                    hpa("gateway", 60)])[0]
    assert fit.nodes_needed == 12  # 5 pods a node now (7.66 cores / 1.5)


# -- the command, on real plans -------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod-aws", "prod-azure"])
def test_the_example_prod_stacks_model_at_least_60_percent_below_fixed_capacity_with_their_levers(stack: str) -> None:
    text = (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    assert "commitment:" in text and "spot: true" in text, "the levers are visible in the stack file"
    doc = cost_json("--stack", stack)
    assert Decimal(doc["totals"]["savingVsFixedCapacityPercent"]) >= 60, doc["totals"]
    assert doc["commitment"]["term"] == "3y" and any(Decimal(p["committedNodes"]) for p in doc["pools"])
    assert doc["rightSizing"] == [], "the example pools are right-sized"
    band = doc["totals"]["modeledBand"]
    assert Decimal(band["low"]) <= Decimal(doc["totals"]["modeled"]) <= Decimal(band["high"])
    # The picture of the day: 24 hourly bars against the fixed-capacity line, in Mermaid.
    picture = chart(doc)
    assert picture.startswith("```mermaid\nxychart-beta") and picture.count(",") >= 46 and "line [" in picture


def test_an_eks_stack_past_standard_support_pays_the_extended_control_plane(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "old-aws", lambda c: c["im-platform:cluster"].update(kubernetesVersion="1.33"))
    result = cli_in_process("cost", "--config-file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    plane = doc["fixed"][0]
    assert plane["price"] == "0.60" and plane["monthlyCost"] == "438.00" and "2026-07-29" in plane["name"]
    assert doc["kubernetes"] == {"version": "1.33", "supportWindow": "extended"}
    assert "past standard support" in result.stderr and "$0.60/h" in result.stderr


def test_a_base_of_another_stack_is_refused_naming_both(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps(cost_json("--stack", "prod-traffic")))
    result = cli_in_process("cost", "--stack", "dev-aws", "--base", str(other))
    assert result.returncode == 2 and result.stderr.startswith("config error: --base")
    assert "prod-traffic" in result.stderr and "dev-aws" in result.stderr
    doc = json.loads(other.read_text())
    doc["stack"], doc["fixed"][0]["monthlyCost"] = "dev-aws", "99.00"
    doc["cloud"] = "aws"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**doc, "region": "eu-west-1"}))
    result = cli_in_process("cost", "--stack", "dev-aws", "--base", str(tampered))
    assert result.returncode == 2 and "add up to" in result.stderr, result.stderr


def test_regions_without_compare_is_an_error() -> None:
    result = cli_in_process("cost", "--stack", "dev-aws", "--regions", "gcp=asia-east1")
    assert result.returncode == 2 and result.stderr.startswith("config error: --regions"), result.stderr


def test_check_warns_about_an_oversized_pool(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "wide-aws", lambda c: c["im-platform:cluster"]["nodePools"]["gateway"].update(maxNodes=40))
    result = cli_in_process("check", "--config-file", str(path))
    lines = [ln for ln in result.stderr.splitlines() if "nodePools.gateway.maxNodes is 40" in ln]
    assert len(lines) == 1 and "would fit" in lines[0], result.stderr


# -- arm64 pools -----------------------------------------------------------------------------------------


def test_an_arm64_pool_maps_through_the_shape_tables_and_refuses_a_single_arch_tier() -> None:
    from components import shapes
    from infra.config.errors import ConfigError
    from infra.config.loader import load_spec

    assert shapes.machine_types("aws", 8, 16, False, "arm64") == ("c7g.2xlarge",)
    assert shapes.machine_types("aws", 8, 32, True, "arm64") == ("m7g.2xlarge", "m6g.2xlarge")
    assert shapes.machine_types("azure", 8, 16, False, "arm64") == ("Standard_D8pls_v5",)
    with pytest.raises(shapes.ShapeError):
        shapes.machine_types("gcp", 8, 32, False, "arm64")
    from infra.offline.plan import project_name, read_stack_config, stack_file

    values, _ = read_stack_config(stack_file("prod-aws"), project_name())
    values = dict(values)
    services = json.loads(values["im-platform:services"])
    tier = next(n for n, s in services.items() if s.get("pool") == "gateway")
    del services[tier]["multiArch"]
    values["im-platform:services"] = json.dumps(services)
    with pytest.raises(ConfigError) as refused:
        load_spec(values, project="im-platform", stack="prod-aws")
    assert f"im-platform:services.{tier}.multiArch" in str(refused.value) and "arm64" in str(refused.value)
    services[tier]["multiArch"] = True
    values["im-platform:services"] = json.dumps(services)
    spec = load_spec(values, project="im-platform", stack="prod-aws")
    assert spec.pool("gateway").arch == "arm64" and spec.pool("gateway").machine_type.startswith("c7g.")
    assert next(s for s in spec.services if s.name == tier).multi_arch


def test_an_arm64_eks_pool_gets_the_arm_ami() -> None:
    from tests.plans import stack_plan

    groups = {r["inputs"]["instanceTypes"][0]: r["inputs"]["amiType"]
              for r in stack_plan("prod-aws").of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["c7g.2xlarge"] == "AL2023_ARM_64_STANDARD" and groups["m7i.2xlarge"] == "AL2023_x86_64_STANDARD"
