"""The simulated day through the commands, on held-out stack files: hand arithmetic on what
`simulate` prints, `cost`'s modeled month held to the simulation's, `--base` moved by a tier's
replicas, `--recommend`'s fixes applied to the stack file and simulated again, and a DR pair's cost."""

from __future__ import annotations

import dataclasses
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from infra.config.loader import load_spec
from infra.cost.command import cents
from infra.offline.plan import project_name, read_stack_config, stack_file
from infra.simulate import engine
from infra.simulate.recommend import recommend
from tests.test_cli import cli_in_process, copy_stack

CENT = Decimal("0.01")


def held_out(tmp_path: Path, name: str, curve: list[float], gateway: dict[str, Any], **pool: Any) -> Path:
    """dev-aws with this curve and gateway tier (no other tier: the gateway pool is the one simulated)."""
    def edit(config: dict[str, Any]) -> None:
        config["im-platform:cost"] = {**(config.get("im-platform:cost") or {}), "curve": curve}
        services = config["im-platform:services"]
        services["gateway"].update(gateway)
        config["im-platform:services"] = {"gateway": services["gateway"]}
        config["im-platform:cluster"]["nodePools"]["gateway"].update(pool or {"maxNodes": 12})
    return copy_stack(tmp_path, name, edit)


def simulate_json(path: Path, *extra: str) -> dict[str, Any]:
    out = cli_in_process("simulate", "--config-file", str(path), "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def cost_json(*args: str) -> dict[str, Any]:
    out = cli_in_process("cost", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def tier_of(doc: dict[str, Any], name: str = "gateway") -> dict[str, Any]:
    return next(t for t in doc["tiers"] if t["name"] == name)


def at(series: dict[str, Any], key: str, start_h: float, end_h: float) -> list[Any]:
    return [v for t, v in zip(series["t"], series[key], strict=True) if start_h * 3600 <= t < end_h * 3600]


def test_a_flat_day_sits_in_the_tolerance_band_and_the_series_add_up(tmp_path: Path) -> None:
    # 1480 connections all day at 100 a pod: ceil(1480 / 100) = 15; the HPA's 10% tolerance holds
    # any n with 1480 / (110 n) <= 1 <= 1480 / (90 n): 14..16.
    path = held_out(tmp_path, "flat-aws", [1.0] * 24, {
        "replicas": {"min": 2, "max": 40},
        "scaling": {"metric": "im_gateway_connections", "targetPerPod": 100, "metricsPort": 9102, "cpu": False, "peakLoad": 1480}})
    doc = simulate_json(path)
    gw = tier_of(doc)
    assert gw["peakLoad"] == 1480 and gw["targetPerPod"] == 100
    replicas = gw["series"]["replicas"]
    assert set(replicas) <= {14, 15, 16}, sorted(set(replicas))
    assert all(2 <= n <= 40 for n in replicas)
    assert all(ready <= n for ready, n in zip(gw["series"]["ready"], replicas, strict=True))
    over = sum(15 for load, ready in zip(gw["series"]["load"], gw["series"]["ready"], strict=True) if load > 100 * ready)
    assert gw["secondsOverTarget"] == over
    pool = next(p for p in doc["pools"] if p["name"] == "gateway")
    assert all(1 <= n <= 12 for n in pool["series"]["nodes"])
    assert pool["nodeHours"] == round(sum(pool["series"]["nodes"]) * 15 / 3600, 2)


def test_a_window_is_a_floor_and_a_plateau_reaches_ceil_peak_over_target(tmp_path: Path) -> None:
    # A plateau of 2300 from 10:00 to 16:00 (ceil(2300 / 100) = 23 pods), 115 the rest of the day (2
    # pods), and a window 19:00-21:00 at 30 replicas.
    curve = [0.05] * 10 + [1.0] * 6 + [0.05] * 8
    path = held_out(tmp_path, "plateau-aws", curve, {
        "replicas": {"min": 2, "max": 40},
        "scaling": {"metric": "im_gateway_connections", "targetPerPod": 100, "metricsPort": 9102, "cpu": False, "peakLoad": 2300,
                    "schedule": [{"start": "0 19 * * *", "end": "0 21 * * *", "timezone": "UTC", "replicas": 30}]}})
    gw = tier_of(simulate_json(path))
    plateau = at(gw["series"], "replicas", 11, 15)
    assert max(plateau) == 23 and min(plateau) >= math.ceil(2300 / 110)
    assert min(at(gw["series"], "replicas", 19 + 1 / 60, 21)) >= 30
    assert max(at(gw["series"], "replicas", 23, 24)) < 30


def test_costs_modeled_month_is_the_simulated_day(tmp_path: Path) -> None:
    curve = [0.05] * 10 + [1.0] * 6 + [0.05] * 8
    path = held_out(tmp_path, "month-aws", curve, {
        "replicas": {"min": 2, "max": 40},
        "scaling": {"metric": "im_gateway_connections", "targetPerPod": 100, "metricsPort": 9102, "cpu": False, "peakLoad": 2300}})
    sim = simulate_json(path)
    nodes = next(p for p in sim["pools"] if p["name"] == "gateway")["series"]["nodes"]
    doc = cost_json("--config-file", str(path))
    pools = {p["name"]: p for p in doc["pools"]}
    gateway = pools["gateway"]
    assert gateway["modeledBy"] == "simulation" and pools["system"]["modeledBy"] == "curve"
    # Node-hours a month: the simulated day's node-steps x 15 s, x 730 / 24.
    node_hours = Decimal(sum(nodes)) * 15 / 3600 * 730 / 24
    assert Decimal(gateway["modeledNodeHours"]) == node_hours.quantize(CENT)
    assert not gateway["spot"] and "commitment" not in doc  # priced on demand: node-hours x (node + disk)
    per_hour = Decimal(gateway["nodeHourlyCost"]) + Decimal(gateway["disk"]["hourlyCost"])
    assert abs(Decimal(gateway["monthlyCost"]["modeled"]) - node_hours * per_hour) < CENT
    assert Decimal(gateway["monthlyCost"]["modeled"]) < Decimal(gateway["monthlyCost"]["max"])
    text = cli_in_process("cost", "--config-file", str(path)).stdout
    assert "gateway: modeled on the simulated day" in text and "system: modeled on the load curve" in text


def test_a_tiers_replicas_move_cost_base(tmp_path: Path) -> None:
    def replicas(low: int, high: int, folder: Path) -> Path:
        folder.mkdir(exist_ok=True)
        return held_out(folder, "base-aws", [0.5] * 23 + [1.0], {
            "replicas": {"min": low, "max": high},
            "scaling": {"metric": "im_gateway_connections", "targetPerPod": 20000, "metricsPort": 9102}}, maxNodes=40)
    base = tmp_path / "base.json"
    base.write_text(json.dumps(cost_json("--config-file", str(replicas(2, 20, tmp_path / "before")))))
    doc = cost_json("--config-file", str(replicas(30, 100, tmp_path)), "--base", str(base))
    gateway = next(p for p in doc["change"]["pools"] if p["name"] == "gateway")
    assert Decimal(gateway["modeled"]["change"]) > 0
    assert Decimal(doc["change"]["totals"]["modeled"]["change"]) == Decimal(gateway["modeled"]["change"])
    assert Decimal(doc["change"]["totals"]["max"]["change"]) == 0  # the guardrail's max: maxNodes, unchanged


def test_recommend_weighs_a_window_against_a_buffer() -> None:
    # The tier's window lifts it to 22 at 14:00, as the load climbs from 200 to 2000 in that hour;
    # nodes take 15 minutes to join, so pods wait and the ready ones run over target. An earlier
    # window or warm placeholders both fix it; the window costs less, and is chosen.
    values, _ = read_stack_config(stack_file("dev-aws"), project_name())
    spec = load_spec(values, project=project_name(), stack="dev-aws")
    curve = [0.1] * 15 + [1.0] * 9
    spec = dataclasses.replace(spec, cost=dataclasses.replace(spec.cost, curve=tuple(Decimal(str(c)) for c in curve)))
    tier = engine.Tier("gateway", "gateway", 3, 40, 100.0, 2000.0, "conns", False, 70.0,
                       (engine.Window.between(14 * 3600, 0, 22),), 30, 1.0, 2.0)
    pool = engine.Pool("gateway", 3.5, 6.0, 1, 12, 900, 600, 600, 0.5)
    out = engine.simulate([tier], [pool], curve)
    assert out.tiers[0].seconds_over_target > 0
    [found] = recommend(spec, [tier], [pool], out)
    assert found["choice"] == "window" and [a["choice"] for a in found["alternatives"]] == ["buffer"]
    assert Decimal(found["monthlyCost"]) <= Decimal(found["alternatives"][0]["monthlyCost"])
    w, b = found["window"], found["alternatives"][0]["buffer"]
    hours = [int(x[:2]) * 3600 + int(x[3:]) * 60 for x in (w["start"], w["end"])]
    fixed = dataclasses.replace(tier, windows=(*tier.windows, engine.Window.between(*hours, w["replicas"])))
    assert engine.simulate([fixed], [pool], curve).tiers[0].seconds_over_target == 0
    warm = dataclasses.replace(pool, buffer_pods=b["pods"], buffer_cpu=1.0, buffer_memory=2.0)
    assert engine.simulate([tier], [warm], curve).tiers[0].seconds_over_target == 0
    fewer = dataclasses.replace(warm, buffer_pods=b["pods"] - 1)
    assert engine.simulate([tier], [fewer], curve).tiers[0].seconds_over_target > 0  # the fewest that reach 0


def test_recommended_window_applied_to_the_stack_file_brings_it_to_zero(tmp_path: Path) -> None:
    path = held_out(tmp_path, "rec-aws", [0.2] * 8 + [0.6, 1.0] + [1.0] * 14, {
        "replicas": {"min": 2, "max": 40},
        "scaling": {"metric": "im_gateway_connections", "targetPerPod": 100, "metricsPort": 9102, "cpu": False, "peakLoad": 3000}})
    doc = simulate_json(path, "--recommend")
    assert tier_of(doc)["secondsOverTarget"] > 0
    [rec] = doc["recommendations"]
    assert rec["tier"] == "gateway" and rec["choice"] == "window", rec
    w = rec["window"]
    config = yaml.safe_load(path.read_text())
    (h1, m1), (h2, m2) = (map(int, w[k].split(":")) for k in ("start", "end"))
    config["config"]["im-platform:services"]["gateway"]["scaling"]["schedule"] = [
        {"start": f"{m1} {h1} * * *", "end": f"{m2} {h2} * * *", "timezone": w["timezone"], "replicas": w["replicas"]}]
    path.write_text(yaml.safe_dump(config))
    after = simulate_json(path)
    assert tier_of(after)["secondsOverTarget"] == 0
    added = Decimal(after["cost"]["month"]) - Decimal(doc["cost"]["month"])
    assert abs(added - Decimal(rec["monthlyCost"])) <= CENT
    text = cli_in_process("simulate", "--config-file", str(path), "--recommend").stdout
    assert "nothing: no tier runs over its target" in text


def test_a_standby_costs_its_floors_and_a_pair_member_shows_the_pairs_total() -> None:
    doc = cost_json("--stack", "prod-azure")
    assert {p["modeledBy"] for p in doc["pools"] if p["name"] != "system"} == {"simulation"}
    pair = doc["pair"]
    members = {m["stack"]: m for m in pair["members"]}
    assert set(members) == {"prod-azure", "prod-aws"}
    assert members["prod-azure"]["role"] == "standby" and members["prod-aws"]["role"] == "primary"
    assert members["prod-azure"]["totals"]["modeled"] == doc["totals"]["modeled"]
    for key in ("min", "modeled", "max", "fixedCapacity"):
        assert Decimal(pair["totals"][key]) == sum(Decimal(m["totals"][key]) for m in pair["members"])
    # The standby runs its floors: below the primary's modeled month, and at its own min for its pools.
    assert Decimal(members["prod-azure"]["totals"]["modeled"]) < Decimal(members["prod-aws"]["totals"]["modeled"])
    for p in doc["pools"]:
        if p["modeledBy"] == "simulation":  # no load, no change: the same nodes all day
            assert Decimal(p["modeledNodeHours"]) % 730 == 0, p["name"]
    text = cli_in_process("cost", "--stack", "prod-azure").stdout
    line = next(x for x in text.splitlines() if "DR pair" in x)
    assert line.lstrip().startswith("DR pair prod-azure (standby") and f"modeled {cents(pair['totals']['modeled'])}" in line
