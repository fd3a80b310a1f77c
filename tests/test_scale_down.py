"""How the tiers scale and stop, read from the registered objects: the HPA's scale-up and
scale-down rules per kind of tier, the scheduler's spread rules, the DNS the default deny still
lets through, and how long the EKS cluster autoscaler waits for a draining pod. Each assertion is
a behaviour a user would notice: a login burst met late, users cut off in one wave, pods pending
forever, name lookups over TCP failing, a scale-down that cuts a long drain short."""

from __future__ import annotations

from typing import Any

import pytest

from infra.offline.plan import Plan
from tests.conftest import plan_config
from tests.test_services import HPA, NETWORK_POLICY, RELEASE, named, pod_spec, services_plan
from tests.test_services_config import SERVICES, with_service

CONNECTION_TIERS = {"gateway"}            # public, drainSeconds 300
OTHER_TIERS = set(SERVICES) - CONNECTION_TIERS


def behavior(plan: Plan, name: str) -> dict[str, Any]:
    return named(plan, HPA, name)["inputs"]["spec"]["behavior"]


def policies(rules: dict[str, Any]) -> set[tuple[str, int, int]]:
    return {(p["type"], p["value"], p["periodSeconds"]) for p in rules["policies"]}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_scale_up_doubles_or_adds_four_pods_every_15_seconds(cloud: str, name: str) -> None:
    up = behavior(services_plan(cloud), name)["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0, "a login burst is met at once"
    assert policies(up) == {("Percent", 100, 15), ("Pods", 4, 15)}
    assert up["selectPolicy"] == "Max", "the faster of the two policies wins"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_scale_down_is_never_disabled(cloud: str, name: str) -> None:
    """Disabled would keep every pod of a burst forever (and the nodes under them)."""
    down = behavior(services_plan(cloud), name)["scaleDown"]
    assert down["selectPolicy"] == "Max"
    assert down["policies"], "a scale-down with no policy never happens"


def test_connection_tiers_lose_one_pod_or_a_tenth_every_two_minutes_after_ten_quiet_minutes(cloud: str) -> None:
    for name in CONNECTION_TIERS:
        down = behavior(services_plan(cloud), name)["scaleDown"]
        assert down["stabilizationWindowSeconds"] == 600
        assert policies(down) == {("Pods", 1, 120), ("Percent", 10, 120)}


def test_other_tiers_halve_at_most_once_a_minute_after_five_quiet_minutes(cloud: str) -> None:
    for name in OTHER_TIERS:
        down = behavior(services_plan(cloud), name)["scaleDown"]
        assert down["stabilizationWindowSeconds"] == 300, name
        assert policies(down) == {("Percent", 50, 60)}, name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_spread_over_zones_and_nodes_never_leaves_pods_pending(cloud: str, name: str) -> None:
    """ScheduleAnyway: a node group over three zones cannot be told where to grow, so a hard
    (DoNotSchedule) spread could leave pods pending while the autoscaler adds nodes elsewhere."""
    constraints = pod_spec(services_plan(cloud), name)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for c in constraints:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway", c["topologyKey"]
        assert c["maxSkew"] == 1 and c["matchLabelKeys"] == ["pod-template-hash"]


def test_default_deny_lets_dns_through_over_udp_and_tcp(cloud: str) -> None:
    """Answers over 512 bytes (and every truncated one) are retried over TCP: without TCP/53 such
    lookups fail under the default deny."""
    plan = services_plan(cloud)
    for namespace in ("gateway", "logic", "push", "im-capacity-buffer"):
        (rule,) = named(plan, NETWORK_POLICY, "allow-dns", namespace)["inputs"]["spec"]["egress"]
        assert {(p["protocol"], p["port"]) for p in rule["ports"]} == {("UDP", 53), ("TCP", 53)}, namespace
        (peer,) = rule["to"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
        assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


@pytest.mark.parametrize("drain, expected", [(300, 600), (1800, 1830)])
def test_eks_autoscaler_waits_as_long_as_the_slowest_tier_drains(drain: int, expected: int) -> None:
    """At least ten minutes; longer when a tier drains longer (drainSeconds + 30 s to close), or a
    scale-down kills its pods mid-drain."""
    services = with_service("gateway", drainSeconds=drain)
    plan = plan_config("aws", extra={"im-platform:services": services})
    release = next(r for r in plan.of_type(RELEASE) if r["inputs"]["name"] == "cluster-autoscaler")
    assert release["inputs"]["values"]["extraArgs"]["max-graceful-termination-sec"] == expected
