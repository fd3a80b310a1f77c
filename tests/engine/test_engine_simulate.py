"""The simulator held to the real HPA controller. One scripted 30-minute load, in steps up and
down, goes through KEDA and kube-controller-manager's HPA controller (tests/engine/keda.py's rig:
its fake Prometheus serves the script) and through infra/simulate's model (`engine.replay`). Both
sides use the program's ScaledObject for the gateway of the dev-kubernetes example (its bounds, its
per-pod target and its behaviour, as the offline plan declares it). The test then holds the two
replica series to each other: within one sync period and one replica.

Time is compressed by SPEEDUP = 15 s / the rig's sync period (2 s) = 7.5, and both sides see the
same compression:
- the HPA controller syncs every 2 s (the rig's --horizontal-pod-autoscaler-sync-period), and the
  simulator steps every 2 s (its `step`) where the default sync period is 15 s;
- every stabilization window and policy period of the behaviour is divided by 7.5 (600 s -> 80 s,
  120 s -> 16 s, 15 s -> 2 s, all exact), in the ScaledObject on the API server (KEDA copies it
  into its HPA) and in the simulator's tier;
- the script changes every 15 s or more of the 30-minute day; compressed, that is every 2 s, 4 minutes in all.
The controller reads time only as differences measured against those windows and periods, and
counts syncs. The tolerance and the per-pod recommendation have no time in them. So the
compressed run is the 30-minute run with every time multiplied by 2/15, sync for sync. KEDA's
polling interval (activation from zero and the fallback's count) does not move an HPA whose
minReplicaCount is at least 1, so it is left as the program sets it.

Both sides start at replicas.min with the load at the floor. Pods: the rig's fake kubelet binds
each pod to its one large node and makes it ready within a second. The simulator's tier has the
same node room and is ready at once. The recommendation from an external metric reads the count
of pods, not their readiness. The CPU trigger would read readiness, but it is off: the rig has no
metrics-server.

How the series are compared: each real sync reads the tier's query once (the fake Prometheus logs
when), and the Deployment's replicas are read half a period after it, once the controller has
written them. That sync is set against the simulator's step for the same moment, floor(t / 2 s):
the script changes only at whole periods, so the two read the same load. A real sync takes a few
milliseconds of its own on top of the period, so the real syncs drift slowly along the steps,
and the moment, not the count of syncs, pairs them. The check: every real (step, replicas) has a
simulated step at most one away whose replicas are at most one away, and the reverse. That one
sync of slack covers an event or recommendation exactly one period or window old: the
real controller counts it, or not, by a few milliseconds, and the simulator, at exact steps,
never does. The one replica covers the tolerance band, where the controller keeps any count
close enough.
"""

from __future__ import annotations

import copy
import time
from fractions import Fraction
from typing import Any

import pytest
import yaml

from infra.simulate import engine, hpa
from tests.engine.engine import offline_plan
from tests.engine.keda import HPA_SYNC_PERIOD_S, ReplicaSeries, ScalingRig
from tests.engine.test_engine_scaling import SCALED_OBJECT, declared_behavior, example_config, target_per_pod

pytestmark = pytest.mark.engine

STACK = "dev-kubernetes"
TIER = "gateway"
NS = "im"
DEFAULT_SYNC_S = 15  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period default
SPEEDUP = Fraction(DEFAULT_SYNC_S) / Fraction(HPA_SYNC_PERIOD_S)
REPLICAS = {"min": 2, "max": 20}
# The 30-minute script: (minute, second) of the day it starts, and the load in multiples of the
# per-pod target. The loads sit half a pod off a whole number, away from the 10 % tolerance at
# the counts the controller moves through.
SCRIPT = [((0, 0), 1.5),     # the floor: 2
          ((1, 0), 5.5),     # up to 6 in one sync (Pods 4 per 15 s)
          ((2, 30), 17.5),   # 6 -> 12 -> 18: Percent 100 per 15 s, two syncs
          ((5, 0), 30.0),    # capped at replicas.max
          ((7, 0), 9.5),     # down to 10: nothing for 10 minutes, then 10 % or 1 pod per 2 minutes
          ((26, 0), 13.5),   # back up at once, mid-way down
          ((28, 0), 9.5)]    # and held there by the stabilization window
SCRIPT_MINUTES = 30
SAMPLE_S = 0.25


def compressed(seconds: float) -> int:
    value = Fraction(seconds) / SPEEDUP
    assert value.denominator == 1, f"{seconds} s does not compress to whole seconds by {SPEEDUP}"
    return int(value)


def short(behavior: dict[str, Any]) -> dict[str, Any]:
    """The behaviour with every window and period divided by SPEEDUP."""
    out = copy.deepcopy(behavior)
    for rules in out.values():
        rules["stabilizationWindowSeconds"] = compressed(rules.get("stabilizationWindowSeconds", 0))
        for policy in rules["policies"]:
            policy["periodSeconds"] = compressed(policy["periodSeconds"])
    return out


def rules(behavior: dict[str, Any]) -> hpa.Rules:
    return hpa.Rules(behavior.get("stabilizationWindowSeconds", 0), behavior.get("selectPolicy", "Max"),
                     tuple(hpa.Policy(p["type"], p["value"], p["periodSeconds"]) for p in behavior["policies"]))


def script(target: float) -> list[tuple[float, float]]:
    """The script at the rig's time: (seconds since the start, the tier's total load)."""
    return [(compressed(60 * m + s), x * target) for (m, s), x in SCRIPT]


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory, scaling: ScalingRig) -> dict[str, Any]:
    """The gateway's ScaledObject as the program declares it for the example with a wider replica
    range, its load read from the fake Prometheus, the CPU trigger off and no schedule window."""
    config = copy.deepcopy(example_config())
    gateway = config["im-platform:services"][TIER]
    gateway["replicas"] = dict(REPLICAS)
    gateway["scaling"]["cpu"] = False
    gateway["scaling"].pop("schedule", None)
    config["im-platform:monitoring"] = {"prometheus": {"url": scaling.prometheus.url}, "keda": "existing"}
    path = tmp_path_factory.mktemp("stack") / f"Pulumi.{STACK}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    found = [r["inputs"] for r in offline_plan(path, STACK)["resources"]
             if r["type"] == SCALED_OBJECT and r["inputs"]["spec"]["scaleTargetRef"]["name"] == TIER]
    assert len(found) == 1, found
    so: dict[str, Any] = found[0]
    assert [t["type"] for t in so["spec"]["triggers"]] == ["prometheus"], so["spec"]["triggers"]
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (REPLICAS["min"], REPLICAS["max"])
    return so


@pytest.fixture(scope="module")
def variant(scaling: ScalingRig, declared: dict[str, Any]) -> dict[str, Any]:
    """The program's ScaledObject with the behaviour compressed, on the API server beside a
    Deployment `gateway` at the floor, once KEDA's HPA carries that behaviour and reads the floor."""
    cluster, floor = scaling.cluster, declared["spec"]["minReplicaCount"]
    so = copy.deepcopy(declared)
    so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] = short(declared_behavior(declared))
    (query,) = [t["metadata"]["query"] for t in so["spec"]["triggers"]]
    scaling.prometheus.script_only(query)
    scaling.prometheus.answer_value(SCRIPT[0][1] * target_per_pod(declared))
    cluster.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TIER},
        "spec": {"replicas": floor, "selector": {"matchLabels": {"app": TIER}},
                 "template": {"metadata": {"labels": {"app": TIER}},
                              "spec": {"containers": [{"name": TIER, "image": "registry.invalid/gateway:1"}]}}}})
    cluster.request("POST", f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects?fieldValidation=Strict", so)
    name = so["metadata"]["name"]
    deadline = time.monotonic() + 60
    while True:
        hpa_object = scaling.hpa_of(name, NS)
        conditions = {c["type"]: c["status"] for c in hpa_object.get("status", {}).get("conditions", [])}
        if (hpa_object["spec"].get("behavior") == so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
                and conditions.get("ScalingActive") == "True"):
            break
        assert time.monotonic() < deadline, hpa_object
        time.sleep(0.5)
    scaling.wait_replicas(TIER, NS, floor, timeout_s=30)
    return so


def real_after_reads(series: ReplicaSeries, reads: list[float]) -> list[int]:
    """The Deployment's replicas after each read of the tier's query (each HPA sync reads it once),
    taken half a sync period after the read: the controller writes the scale within milliseconds
    of its read, and its next sync is a period away."""
    return [series.at(at + series.sync_period_s / 2) for at in reads]


def misses(first: list[tuple[int, int]], second: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """(step, replicas) of `first` for which no entry of `second` at a step at most one away holds
    replicas at most one away, with the values `second` had near it."""
    out = []
    for step, value in first:
        near = [other for at, other in second if abs(at - step) <= 1]
        if not any(abs(value - other) <= 1 for other in near):
            out.append((step, value, near))
    return out


def test_the_simulator_follows_the_real_hpa_controller_through_a_scripted_half_hour(
        scaling: ScalingRig, declared: dict[str, Any], variant: dict[str, Any]) -> None:
    target = target_per_pod(declared)
    spec = declared["spec"]
    behavior = variant["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    steps = script(target)
    seconds = compressed(60 * SCRIPT_MINUTES)
    period = scaling.sync_period_s
    assert period == HPA_SYNC_PERIOD_S and float(period).is_integer()

    # The simulator: the same bounds, target and (compressed) behaviour, one large node like the
    # rig's (the fake kubelet's 64 cores), pods ready at once, a step per sync period.
    peak = max(load for _, load in steps)
    tier = engine.Tier(name=TIER, pool="node", min_replicas=spec["minReplicaCount"],
                       max_replicas=spec["maxReplicaCount"], target=target, peak=peak, metric="load",
                       cpu_trigger=False, cpu_target=70.0, windows=(), ready_seconds=0, pod_cpu=0.5,
                       pod_memory=1.0, up=rules(behavior["scaleUp"]), down=rules(behavior["scaleDown"]))
    node = engine.Pool("node", node_cpu=64.0, node_memory=256.0, min_nodes=1, max_nodes=1, scale_up_delay=0,
                       unneeded_seconds=10**9, delay_after_add=0, threshold=0.0)

    def fraction(t: int) -> float:
        return [load for at, load in steps if at <= t][-1] / peak

    simulated = engine.replay([tier], [node], fraction, seconds, step=int(period)).tiers[0]

    # The real controller, and what it did after each of its syncs (one read of the query each).
    (query,) = [t["metadata"]["query"] for t in spec["triggers"]]
    began = time.monotonic()
    series = scaling.replay(TIER, NS, steps, until_s=seconds + period, sample_s=SAMPLE_S)
    reads = [q.at - began for q in scaling.prometheus.queries_since(began, query)]
    reads = [at for at in reads if at <= seconds]
    assert len(reads) >= 0.9 * seconds / period, f"the HPA read the load {len(reads)} times in {seconds} s"
    # Each real sync against the simulator's step of the same moment: the step that read the same
    # load (the script changes at whole periods only). The real controller's period is its sync
    # period plus the sync's own time, so its syncs drift along the simulator's steps; a sync and
    # a step a period apart still read the same load.
    real = [(int(at // period), replicas) for at, replicas in zip(reads, real_after_reads(series, reads), strict=True)]
    sim = list(enumerate(simulated.replicas))
    report = f"real (step, replicas) {real}\nsimulated {simulated.replicas}"
    assert not misses(real, sim), f"real, not followed by the simulator: {misses(real, sim)}\n{report}"
    assert not misses(sim[: real[-1][0] + 1], real), f"simulated, not by the real: {misses(sim[: real[-1][0] + 1], real)}\n{report}"

    # And the script moved both through what it is for: the rate limit, the cap, the slow way down.
    replicas = [r for _, r in real]
    assert simulated.replicas[0] == spec["minReplicaCount"] == replicas[0], report
    assert max(replicas) == max(simulated.replicas) == spec["maxReplicaCount"], report
    down_from = compressed(7 * 60) // int(period)
    window = behavior["scaleDown"]["stabilizationWindowSeconds"] // int(period)
    assert {r for k, r in real if down_from <= k < down_from + window - 1} == {spec["maxReplicaCount"]}, report
    assert len(set(simulated.replicas)) >= 8, report
