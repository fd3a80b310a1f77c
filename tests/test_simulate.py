"""The simulated day (infra/simulate): hand arithmetic on crafted tiers, the HPA's own rules, the
stacks' inputs held to their planned objects, and the command."""

from __future__ import annotations

import json
import math

import pytest

from infra.config.loader import load_spec
from infra.cost.rightsize import pod_requests, workloads
from infra.offline.plan import project_name, read_stack_config, stack_file
from infra.simulate import engine, hpa, inputs
from tests.plans import stack_plan
from tests.test_cli import cli_in_process

TARGET = 100.0


def tier(**kw) -> engine.Tier:
    base = dict(name="t", pool="p", min_replicas=2, max_replicas=40, target=TARGET, peak=4000.0, metric="conns",
                cpu_trigger=False, cpu_target=70.0, windows=(), ready_seconds=30, pod_cpu=1.0, pod_memory=2.0)
    base.update(kw)
    return engine.Tier(**base)


POOL = engine.Pool("p", 7.5, 14.0, 1, 20, 120, 600, 600, 0.5)


def test_a_flat_day_sits_in_the_tolerance_band_around_ceil_load_over_target():
    # 0.37 x 4000 = 1480 a second all day: ceil(1480 / 100) = 15 pods; the HPA holds any n with
    # |1 - 1480 / (100 n)| <= 0.1, i.e. 14 <= n <= 16.
    out = engine.simulate([tier()], [POOL], [0.37] * 23 + [1.0])
    flat = [n for k, n in enumerate(out.tiers[0].replicas) if 2 * 3600 <= k * engine.STEP < 22 * 3600]
    assert set(flat) <= {14, 15, 16} and 15 in flat or set(flat) <= {14, 15, 16}
    assert min(flat) >= math.ceil(1480 / (1.1 * TARGET)) and max(flat) <= math.floor(1480 / (0.9 * TARGET))


def test_a_schedule_window_is_a_floor():
    window = engine.Window.between(10 * 3600, 12 * 3600, 30)
    out = engine.simulate([tier(windows=(window,))], [POOL], [0.1] * 23 + [1.0])
    r = out.tiers[0]
    inside = [n for k, n in enumerate(r.replicas) if 10 * 3600 + 60 <= k * engine.STEP < 12 * 3600]
    assert min(inside) >= 30
    # Outside it the load (400: 4 pods) and the slow scale-down bring it back below.
    assert r.replicas[(15 * 3600) // engine.STEP] < 30


def test_a_plateau_reaches_ceil_peak_over_target():
    # 2300 at the plateau: ceil(2300/100) = 23; a jump from far below lands exactly there.
    assert hpa.external_per_pod(5, 2300.0, TARGET) == 23
    assert hpa.external_per_pod(22, 2300.0, TARGET) == 22  # 2300 / 2200 = 1.045: inside the tolerance
    curve = [0.05] * 10 + [1.0] * 6 + [0.05] * 8
    out = engine.simulate([tier(peak=2300.0)], [POOL], curve)
    r = out.tiers[0]
    plateau = [n for k, n in enumerate(r.replicas) if 11 * 3600 <= k * engine.STEP < 15 * 3600]
    assert max(plateau) == 23 and min(plateau) >= math.ceil(2300 / (1.1 * TARGET))


def test_bounds_ready_and_seconds_over_target_match_the_series():
    for name in ("prod-aws", "staging-gcp"):
        values, _ = read_stack_config(stack_file(name), project_name())
        spec = load_spec(values, project=project_name(), stack=name)
        tiers, pools = inputs.tiers_and_pools(spec)
        out = engine.simulate(tiers, pools, inputs.curve(spec))
        for r in out.tiers:
            assert all(r.tier.min_replicas <= n <= r.tier.max_replicas for n in r.replicas), r.tier.name
            assert all(ready <= n for ready, n in zip(r.ready, r.replicas, strict=True)), r.tier.name
            over = sum(engine.STEP for load, ready in zip(r.load, r.ready, strict=True)
                       if load > r.tier.target * ready)
            assert r.seconds_over_target == over
        for p in out.pools:
            assert all(p.pool.min_nodes <= n <= p.pool.max_nodes for n in p.nodes), p.pool.name


def test_scale_down_follows_the_connection_tiers_policy_and_window():
    # holds_connections: stabilization 600 s, then max(1 pod, 10%) every 120 s (selectPolicy Max).
    up, down = inputs.behavior(type("S", (), {"holds_connections": True})())
    state = hpa.HpaState(1, 100, up, down)
    assert state.sync(0, 50, [50]) == 50
    assert state.sync(15, 50, [10]) == 50  # the window still holds 50
    assert state.sync(615, 50, [10]) == 45  # 10% of 50 in one go
    assert state.sync(630, 45, [10]) == 45  # the period's change is spent
    assert state.sync(720, 45, [10]) == 45
    # 120 s after the first step its event is out of the period (After(cutoff) is strict):
    # max(1 pod, 10%) of 45 is int32(45 x 0.9) = 40 against 44, and selectPolicy Max takes 40.
    assert state.sync(735, 45, [10]) == 40


def test_a_replay_steps_at_the_sync_period_it_is_given():
    """engine.replay: a scripted load at a 2 s sync period (what the engine test runs the real
    controller at). 150 a second from 0 s, 550 from 10 s, 950 from 20 s; min 2, target 100; scale-up
    Pods 4 or 100 % per 2 s, down after a 6 s window, one pod per 4 s."""
    up = hpa.Rules(0, "Max", (hpa.Policy("Percent", 100, 2), hpa.Policy("Pods", 4, 2)))
    down = hpa.Rules(6, "Max", (hpa.Policy("Pods", 1, 4),))
    script = [(0, 150.0), (10, 550.0), (20, 950.0), (30, 150.0)]
    t = tier(peak=950.0, ready_seconds=0, up=up, down=down, max_replicas=20)

    def fraction(s: int) -> float:
        return [load for at, load in script if at <= s][-1] / 950.0

    room = engine.Pool("p", 64.0, 256.0, 1, 1, 0, 10**9, 0, 0.0)  # every pod fits at once
    out = engine.replay([t], [room], fraction, 50, step=2).tiers[0]
    assert out.step == 2 and len(out.replicas) == 26  # 0, 2, ..., 50
    by_second = dict(zip(range(0, 51, 2), out.replicas, strict=True))
    assert by_second[8] == 2  # ceil(150 / 100)
    assert by_second[10] == 6  # ceil(550 / 100) = 6 = 2 + 4, in the sync that reads it
    assert (by_second[20], by_second[22]) == (10, 10)  # 6 + 4, then ceil(950 / 100) = 10 (in the band)
    # Down from 30 s: the 10 recorded at 28 s leaves the 6 s window at 34 s, then one pod per 4 s.
    assert [by_second[s] for s in (32, 34, 36, 38, 40, 42)] == [10, 9, 9, 8, 8, 7]
    # Over target in the steps whose pods were placed in that very step (ready at the next): the
    # floor's 2 at 0 s, 550 on 2 ready at 10 s, 950 on 6 at 20 s; a step counts 2 s.
    assert (out.ready[0], out.ready[5], out.ready[10]) == (0, 2, 6)
    assert out.seconds_over_target == 3 * 2


def test_the_cpu_proxy_ignores_starting_pods_on_a_scale_up():
    # 3 ready at 140% of a 70% target, 1 still starting: ratio 2 -> rebalanced as 0% for the
    # starter: 420 / 4 / 70 = 1.5 -> ceil(1.5 x 4) = 6.
    assert hpa.resource_utilization(4, 3, 1, 0, 420.0, 70.0) == 6
    assert hpa.resource_utilization(4, 4, 0, 0, 4 * 70 * 1.05, 70.0) == 4  # inside the tolerance


@pytest.mark.parametrize("name", ["prod-aws"])
def test_pod_requests_and_behaviour_are_the_planned_ones(name):
    plan = stack_plan(name)
    values, _ = read_stack_config(stack_file(name), project_name())
    spec = load_spec(values, project=project_name(), stack=name)
    tiers, _ = inputs.tiers_and_pools(spec)
    planned = {w.name.split("/")[1]: w for w in workloads(plan.resources)}
    assert tiers
    for t in tiers:
        w = planned[t.name]
        assert (t.pod_cpu, round(t.pod_memory, 6)) == (float(w.cpu), round(float(w.memory_gib), 6)), t.name
    # A tier scaled on load has KEDA's ScaledObject (the behaviour KEDA copies into the HPA it makes),
    # any other its own HPA.
    hpas = {r["inputs"]["spec"]["scaleTargetRef"]["name"]: r["inputs"]["spec"]["behavior"] for r in plan.resources
            if r["type"] == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"}
    hpas |= {r["inputs"]["spec"]["scaleTargetRef"]["name"]:
             r["inputs"]["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] for r in plan.resources
             if r["type"] == "kubernetes:keda.sh/v1alpha1:ScaledObject"}
    assert set(hpas) >= {t.name for t in tiers}
    for t in tiers:
        b = hpas[t.name]
        for rules, side in ((t.up, b["scaleUp"]), (t.down, b["scaleDown"])):
            assert rules.stabilization_seconds == side["stabilizationWindowSeconds"]
            assert rules.select_policy == side["selectPolicy"]
            assert sorted((p.type, p.value, p.period_seconds) for p in rules.policies) == sorted(
                (p["type"], p["value"], p["periodSeconds"]) for p in side["policies"])
    _ = pod_requests


def test_simulate_json_text_chart_and_errors(tmp_path):
    out = cli_in_process("simulate", "--stack", "prod-aws", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["stack"] == "prod-aws" and doc["stepSeconds"] == 15 and doc["timezone"] == "UTC"
    gateway = next(t for t in doc["tiers"] if t["name"] == "gateway")
    assert len(gateway["series"]["t"]) == 5760 and gateway["series"]["t"][:2] == [0, 15]
    assert gateway["secondsOverTarget"] == 15 * sum(
        1 for load, ready in zip(gateway["series"]["load"], gateway["series"]["ready"], strict=True)
        if load > gateway["targetPerPod"] * ready)
    assert {"day", "month", "fixedCapacity", "savingVsFixedCapacityPercent"} <= set(doc["cost"])
    text = cli_in_process("simulate", "--stack", "prod-aws")
    assert text.returncode == 0 and "over target" in text.stdout and "node-hours" in text.stdout
    svg = tmp_path / "day.svg"
    assert cli_in_process("simulate", "--stack", "dev-aws", "--chart", str(svg)).returncode == 0
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    bad = cli_in_process("simulate", "--stack", "dev-aws", "--chart", str(tmp_path / "day.gif"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--chart" in bad.stderr
    traffic = cli_in_process("simulate", "--stack", "prod-traffic")
    assert traffic.returncode == 2 and "traffic stack" in traffic.stderr and traffic.stderr.count("\n") == 1


def test_standby_simulates_at_its_floors():
    doc = json.loads(cli_in_process("simulate", "--stack", "prod-azure", "--json").stdout)
    assert doc.get("standby") is True
    for t in doc["tiers"]:
        assert t["peakLoad"] == 0 and t["replicas"]["peak"] == t["replicas"]["min"] and t["secondsOverTarget"] == 0


def test_check_names_a_tier_whose_max_cannot_fit_its_pool(tmp_path):
    from infra.policy.check import TIER_FITS_POOL, check_stack

    text = stack_file("dev-aws").read_text()
    values, _ = read_stack_config(stack_file("dev-aws"), project_name())
    assert "im-platform:services" in values
    spec = load_spec(values, project=project_name(), stack="dev-aws")
    gateway = next(s for s in spec.services if s.name == "gateway")
    pool = spec.pool(gateway.pool)
    # The same pool with a single node: gateway's replicas.max no longer fits at maxNodes.
    block = f"minNodes: {pool.min_nodes}\n        maxNodes: {pool.max_nodes}\n        labels: {{im-platform/tier: gateway}}"
    assert block in text
    crowded = text.replace(block, block.replace(f"maxNodes: {pool.max_nodes}", "maxNodes: 1").replace(
        f"minNodes: {pool.min_nodes}", "minNodes: 1"))
    path = tmp_path / "Pulumi.dev-aws.yaml"
    path.write_text(crowded)
    clean = check_stack("dev-aws", None)
    assert not [v for v in clean.violations if v.rule == TIER_FITS_POOL]
    found = [v for v in check_stack(None, path).violations if v.rule == TIER_FITS_POOL]
    assert found and any("tier gateway" in v.message and f"pool {gateway.pool}" in v.message for v in found)
