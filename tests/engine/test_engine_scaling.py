"""Scaling on load, for real: the program's ScaledObject for the `dev-kubernetes` example's
gateway, deployed by the real engine to a local control plane with KEDA built from its Go module
(operator and metrics server out of cluster, behind the external metrics APIService), the real HPA
controller of kube-controller-manager, and a fake Prometheus the tests script (tests/engine/keda.py).

The stack is the example's, with the two values a user of an existing KEDA and Prometheus sets
(`monitoring.keda: existing`, `monitoring.prometheus.url`), the gateway's CPU trigger off (there is
no metrics-server here, and the HPA never scales down while one of its metrics is invalid) and its
schedule window moved where the test needs it. The tests run in order on one stack.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pulumi import automation as auto

from tests.engine.engine import ROOT, inline_stack, kubernetes_project, offline_plan
from tests.engine.keda import FakePrometheus, ScalingRig

STACK = "dev-kubernetes"
TIER = "gateway"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
# The scale-down of the test variant: the program's behaviour with every window and period divided
# by this, none shorter than three HPA syncs, so the slow scale-down is watched in a minute.
TIME_DIVISOR = 30


# -- the stack ------------------------------------------------------------------------------------


def example_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{STACK}.yaml").read_text())["config"]
    return config


pytestmark = pytest.mark.engine


def window_at(now: dt.datetime, covers_now: bool, replicas: int) -> dict[str, Any]:
    """A schedule window that covers `now` (from two minutes ago for an hour) or lies twelve hours
    away, in the first of a few zones where it does not cross midnight (KEDA's cron pairs one
    start with the next end)."""
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        local = now.astimezone(ZoneInfo(zone)) + (dt.timedelta(0) if covers_now else dt.timedelta(hours=12))
        start, end = local - dt.timedelta(minutes=2), local + dt.timedelta(hours=1)
        if start.date() == end.date():
            return {"start": f"{start.minute} {start.hour} * * *", "end": f"{end.minute} {end.hour} * * *",
                    "timezone": zone, "replicas": replicas}
    raise AssertionError("no zone keeps the window within one day")


def stack_config(prometheus: FakePrometheus, window_covers_now: bool) -> dict[str, Any]:
    config = copy.deepcopy(example_config())
    gateway = config["im-platform:services"][TIER]
    scaling = gateway.get("scaling")
    assert scaling, f"the {STACK} example scales its {TIER} on load (im-platform:services.{TIER}.scaling)"
    scaling["cpu"] = False
    windows = scaling.get("schedule") or []
    assert windows, f"the {STACK} example's {TIER} has a schedule window before its peak"
    scaling["schedule"] = [window_at(dt.datetime.now(dt.UTC), window_covers_now, windows[0]["replicas"])]
    config["im-platform:monitoring"] = {"prometheus": {"url": prometheus.url}, "keda": "existing"}
    return config


def write_stack(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / f"Pulumi.{STACK}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def project(scaling: ScalingRig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = write_stack(tmp_path_factory.mktemp("source"), stack_config(scaling.prometheus, window_covers_now=False))
    return kubernetes_project(tmp_path_factory.mktemp("project"), scaling.cluster, source=source)


@pytest.fixture(scope="module")
def stack_file(project: Path) -> Path:
    return project / "stacks" / f"Pulumi.{STACK}.yaml"


@pytest.fixture(scope="module")
def stack(project: Path, env: dict[str, str], tools: Path) -> auto.Stack:
    return inline_stack(STACK, project, env, tools)


@pytest.fixture(scope="module")
def plan(stack_file: Path) -> dict[str, Any]:
    return offline_plan(stack_file, STACK)


@pytest.fixture(scope="module")
def declared(plan: dict[str, Any]) -> dict[str, Any]:
    """The gateway's ScaledObject as the program declares it (the offline plan's inputs)."""
    found = [r["inputs"] for r in plan["resources"] if r["type"] == SCALED_OBJECT]
    gateway = [so for so in found if so["spec"]["scaleTargetRef"]["name"] == TIER]
    assert len(gateway) == 1, f"one ScaledObject for the {TIER}: {[so['metadata'] for so in found]}"
    return dict(gateway[0])


@pytest.fixture(scope="module", autouse=True)
def scripted(scaling: ScalingRig, declared: dict[str, Any]) -> None:
    """The script drives the gateway's query; the other tiers' queries read 0 (they stay at their floor)."""
    (prometheus,) = trigger(declared, "prometheus")
    scaling.prometheus.script_only(prometheus["metadata"]["query"])


def trigger(scaled_object: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in scaled_object["spec"]["triggers"] if t["type"] == kind]


def target_per_pod(scaled_object: dict[str, Any]) -> float:
    (prometheus,) = trigger(scaled_object, "prometheus")
    return float(prometheus["metadata"]["threshold"])


def declared_behavior(scaled_object: dict[str, Any]) -> dict[str, Any]:
    behavior: dict[str, Any] = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    return behavior


def quantity(text: str) -> float:
    """A Kubernetes quantity as the HPA writes metric values ("20k", "2500m", "3")."""
    for suffix, factor in (("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def assert_kept(live: Any, declared: Any, where: str = "spec") -> None:
    """Everything declared is on the API server as declared: a CRD's structural schema silently
    prunes a field it does not know, which a create that succeeds does not show."""
    if isinstance(declared, dict):
        assert isinstance(live, dict), f"{where}: {live!r}"
        for key, value in declared.items():
            assert key in live, f"{where}.{key} was pruned by the CRD schema (declared {value!r})"
            assert_kept(live[key], value, f"{where}.{key}")
    elif isinstance(declared, list):
        assert isinstance(live, list) and len(live) == len(declared), f"{where}: {live!r} != {declared!r}"
        for i, (a, b) in enumerate(zip(live, declared, strict=True)):
            assert_kept(a, b, f"{where}[{i}]")
    else:
        assert live == declared, f"{where}: {live!r} on the API server, {declared!r} declared"


def shortened(behavior: dict[str, Any], sync_s: float) -> dict[str, Any]:
    """The behaviour with every window and period divided by TIME_DIVISOR (a window of 0 stays 0,
    a period at least three HPA syncs)."""
    short = copy.deepcopy(behavior)
    for rules in short.values():
        if rules.get("stabilizationWindowSeconds"):
            rules["stabilizationWindowSeconds"] = max(math.ceil(rules["stabilizationWindowSeconds"] / TIME_DIVISOR),
                                                      math.ceil(3 * sync_s))
        for policy in rules.get("policies", []):
            policy["periodSeconds"] = max(math.ceil(policy["periodSeconds"] / TIME_DIVISOR), math.ceil(3 * sync_s))
    return short


def scale_down_floor(period_start: int, rules: dict[str, Any]) -> int:
    """The fewest replicas one scale-down period may end at, as the HPA controller computes it
    (kubernetes pkg/controller/podautoscaler/horizontal.go, calculateScaleDownLimitWithBehaviors:
    Pods: start - value; Percent: int32(start * (1 - value/100)); selectPolicy Max takes the
    lowest floor (the biggest change), Min the highest)."""
    floors = []
    for policy in rules["policies"]:
        if policy["type"] == "Pods":
            floors.append(period_start - policy["value"])
        else:
            floors.append(int(period_start * (1 - policy["value"] / 100)))
    return max(floors) if rules.get("selectPolicy") == "Min" else min(floors)


def watch(rig: ScalingRig, namespace: str, seconds: float) -> list[int]:
    """The gateway's replicas, sampled twice a second for `seconds`."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        rig.keda.check_running()
        seen.append(rig.replicas(TIER, namespace))
        time.sleep(0.5)
    return seen


@pytest.fixture(scope="module")
def short_behavior(scaling: ScalingRig, declared: dict[str, Any]) -> dict[str, Any]:
    """The test variant: the live ScaledObject's behaviour shortened, once KEDA's HPA carries it."""
    meta = declared["metadata"]
    short = shortened(declared_behavior(declared), scaling.sync_period_s)
    assert short != declared_behavior(declared), "the variant differs, or the tests below prove nothing new"
    scaling.cluster.request(
        "PATCH", f"/apis/keda.sh/v1alpha1/namespaces/{meta['namespace']}/scaledobjects/{meta['name']}",
        {"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": short}}}},
        content_type="application/merge-patch+json")
    deadline = time.monotonic() + 30
    while (behavior := scaling.hpa_of(meta["name"], meta["namespace"])["spec"].get("behavior")) != short:
        assert time.monotonic() < deadline, f"KEDA did not carry the shortened behaviour: {behavior}"
        time.sleep(0.5)
    return short


# -- the tests ----------------------------------------------------------------------------------


def test_the_scaled_object_is_admitted_and_keda_makes_the_hpa(stack: auto.Stack, declared: dict[str, Any],
                                                               scaling: ScalingRig) -> None:
    """(a) The program's ScaledObject through the real CRD schema; KEDA's HPA carries its external
    metric, bounds and the tier's behaviour exactly."""
    meta = declared["metadata"]
    ns, name = meta["namespace"], meta["name"]
    target = target_per_pod(declared)
    scaling.prometheus.answer_value(target * declared["spec"]["minReplicaCount"])
    result = stack.up(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    assert scaling.scaled_object(name, ns) is not None
    # Strict field validation refuses an unknown or duplicate field where a plain create prunes it;
    # the dry run answers what would be stored (the live object is KEDA's rewrite, its Go types
    # dropping false and empty values).
    probe = copy.deepcopy(declared)
    probe["metadata"] = {"name": f"{name}-probe", "namespace": ns}
    path = f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects?dryRun=All&fieldValidation=Strict"
    assert_kept(scaling.cluster.request("POST", path, probe)[1]["spec"], declared["spec"])
    # And the schema is enforced at all: a wrong type is refused.
    probe["spec"]["minReplicaCount"] = "two"
    status, body = scaling.cluster.request("POST", path, probe, ok=(201, 422))
    assert status == 422 and "minReplicaCount" in str(body), body

    hpa = scaling.hpa_of(name, ns)
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": TIER}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (declared["spec"]["minReplicaCount"],
                                                          declared["spec"]["maxReplicaCount"])
    assert spec["behavior"] == declared_behavior(declared)
    # The connection tier's slow, draining scale-down (today's hpa_behavior()).
    down, up = spec["behavior"]["scaleDown"], spec["behavior"]["scaleUp"]
    assert down["stabilizationWindowSeconds"] > up.get("stabilizationWindowSeconds", 0)
    assert any(p["type"] == "Pods" and p["value"] == 1 for p in down["policies"]), down
    assert [m["type"] for m in spec["metrics"]] == ["External"] * len(declared["spec"]["triggers"])
    averages = sorted(quantity(m["external"]["target"]["averageValue"]) for m in spec["metrics"])
    assert all(m["external"]["target"]["type"] == "AverageValue" for m in spec["metrics"])
    assert target in averages, (averages, target)
    # The whole chain reads: the HPA controller -> aggregator -> KEDA's metrics server -> operator
    # -> this Prometheus, with the query the program wrote.
    (prometheus,) = trigger(declared, "prometheus")
    deadline = time.monotonic() + 60
    while True:
        hpa = scaling.hpa_of(name, ns)
        conditions = {c["type"]: c["status"] for c in hpa.get("status", {}).get("conditions", [])}
        if conditions.get("ScalingActive") == "True" and hpa["status"].get("currentMetrics"):
            break
        assert time.monotonic() < deadline, hpa.get("status")
        time.sleep(0.5)
    assert prometheus["metadata"]["query"] in {q.promql for q in scaling.prometheus.queries}


def test_a_load_of_two_and_a_half_times_the_target_raises_the_replicas(declared: dict[str, Any],
                                                                       scaling: ScalingRig) -> None:
    """(b) ceil(2.5 x target x replicas / target) through the real HPA controller, no further."""
    ns = declared["metadata"]["namespace"]
    current = scaling.replicas(TIER, ns)
    assert current == declared["spec"]["minReplicaCount"]
    expected = min(math.ceil(2.5 * current), declared["spec"]["maxReplicaCount"])
    assert expected > current
    scaling.prometheus.answer_value(2.5 * target_per_pod(declared) * current)
    scaling.wait_replicas(TIER, ns, expected, timeout_s=60)
    assert set(watch(scaling, ns, 4 * scaling.sync_period_s)) == {expected}


@pytest.mark.parametrize("outage", ["503", "empty result"])
def test_a_metrics_outage_holds_the_replicas(outage: str, declared: dict[str, Any], scaling: ScalingRig,
                                              short_behavior: dict[str, Any]) -> None:
    """(d) Prometheus failing, or answering nothing, never lowers the replicas: watched for longer
    than a load of 0 would take to lower them under the shortened behaviour."""
    ns = declared["metadata"]["namespace"]
    held = scaling.replicas(TIER, ns)
    assert held > declared["spec"]["minReplicaCount"], "the outage starts above the floor, or it proves nothing"
    down = short_behavior["scaleDown"]
    longest_period = max(p["periodSeconds"] for p in down["policies"])
    since = time.monotonic()
    if outage == "503":
        scaling.prometheus.answer_status(503)
    else:
        scaling.prometheus.answer_empty()
    seen = watch(scaling, ns, down["stabilizationWindowSeconds"] + longest_period + 4 * scaling.sync_period_s)
    assert min(seen) >= held, f"lowered during the outage: {seen}"
    (prometheus,) = trigger(declared, "prometheus")
    answered = {q.answered for q in scaling.prometheus.queries_since(since, prometheus["metadata"]["query"])}
    assert answered == {"HTTP 503" if outage == "503" else "empty"}, answered


def test_the_scale_down_is_as_slow_as_the_behaviour_says(declared: dict[str, Any], scaling: ScalingRig,
                                                         short_behavior: dict[str, Any]) -> None:
    """(e) Load back at the floor: nothing before the stabilization window, then no more per
    period than the policies allow, down to replicas.min."""
    ns = declared["metadata"]["namespace"]
    floor = declared["spec"]["minReplicaCount"]
    high = scaling.replicas(TIER, ns)
    down = short_behavior["scaleDown"]
    window = down["stabilizationWindowSeconds"]
    period = min(p["periodSeconds"] for p in down["policies"])
    steps = high - floor
    series = scaling.replay(TIER, ns, [(0, target_per_pod(declared) * floor)],
                            until_s=window + (steps + 1) * period + 6 * scaling.sync_period_s)
    changes = series.changes()[1:]
    assert series.samples[-1].replicas == floor, series.changes()
    assert changes[0].seconds >= window - scaling.sync_period_s, (window, series.changes())
    before = high
    for i, change in enumerate(changes):
        assert change.replicas >= scale_down_floor(before, down), (before, change, series.changes())
        if i:
            assert change.seconds - changes[i - 1].seconds >= period - 1, (period, series.changes())
        before = change.replicas


def test_a_schedule_window_covering_now_sets_the_floor(stack: auto.Stack, stack_file: Path, declared: dict[str, Any],
                                                        scaling: ScalingRig) -> None:
    """(c) The same stack with its window moved over now: the program's cron trigger lifts the
    tier to the window's replicas while the load asks for the floor."""
    meta = declared["metadata"]
    ns = meta["namespace"]
    floor = declared["spec"]["minReplicaCount"]
    assert scaling.replicas(TIER, ns) == floor
    scaling.prometheus.answer_value(target_per_pod(declared) * floor)
    # The program's behaviour back first: the engine's server-side apply would conflict with the
    # test variant's change to a field it owns.
    scaling.cluster.request(
        "PATCH", f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects/{meta['name']}",
        {"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": declared_behavior(declared)}}}},
        content_type="application/merge-patch+json")
    config = stack_config(scaling.prometheus, window_covers_now=True)
    window = config["im-platform:services"][TIER]["scaling"]["schedule"][0]
    assert window["replicas"] > floor
    # Still at the test cluster, as kubernetes_project pointed the stack.
    config["im-platform:cluster"].update(kubeconfig=str(scaling.cluster.kubeconfig), context=scaling.cluster.context)
    stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    result = stack.up(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    live = scaling.scaled_object(meta["name"], ns)
    assert live is not None
    assert live["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == declared_behavior(declared)
    (cron,) = trigger(live, "cron")
    assert (cron["metadata"]["start"], cron["metadata"]["end"]) == (window["start"], window["end"])
    scaling.wait_replicas(TIER, ns, window["replicas"], timeout_s=60)
    assert set(watch(scaling, ns, 4 * scaling.sync_period_s)) == {window["replicas"]}


def test_destroy_removes_the_scaled_object_and_keda_its_hpa(stack: auto.Stack, declared: dict[str, Any],
                                                             scaling: ScalingRig) -> None:
    """KEDA's finalizer lets the ScaledObject go (a destroy would otherwise wait on it), and its HPA with it."""
    meta = declared["metadata"]
    hpa_name = scaling.hpa_of(meta["name"], meta["namespace"])["metadata"]["name"]
    result = stack.destroy(on_output=lambda line: None)
    assert result.summary.result == "succeeded", result.stdout
    assert scaling.scaled_object(meta["name"], meta["namespace"]) is None
    assert not scaling.cluster.exists("autoscaling/v2", "HorizontalPodAutoscaler", hpa_name, meta["namespace"])
