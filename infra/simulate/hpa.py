"""The HorizontalPodAutoscaler controller's algorithm, as Kubernetes 1.36 implements it. Pure.

Read from kubernetes/kubernetes pkg/controller/podautoscaler: each function below names the Go
function it follows. Times are seconds; one controller sync is one call of `HpaState.sync`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# replica_calculator.go: the default tolerance (--horizontal-pod-autoscaler-tolerance, 0.1), the
# same both ways unless a behaviour sets its own (Tolerances.isWithin: 1-down <= ratio <= 1+up).
TOLERANCE = 0.1
# KEDA's cron scaler (kedacore/keda pkg/scalers/cron_scaler.go): an External metric whose target
# is AverageValue 1 and whose value is desiredReplicas inside the window, else 1 (defaultDesiredReplicas).
CRON_OUTSIDE_VALUE = 1


@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" | "Percent"
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    """HPAScalingRules: the stabilization window, selectPolicy and the policies."""

    stabilization_seconds: int
    select_policy: str  # "Max" | "Min" | "Disabled"
    policies: tuple[Policy, ...]


# The API's defaults when a behaviour leaves a direction unset (autoscaling/v2 defaults.go).
DEFAULT_UP = Rules(0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
DEFAULT_DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


def within_tolerance(ratio: float, tolerance: float = TOLERANCE) -> bool:
    """Tolerances.isWithin (replica_calculator.go)."""
    return (1.0 - tolerance) <= ratio <= (1.0 + tolerance)


def external_per_pod(status_replicas: int, usage: float, target_per_pod: float) -> int:
    """GetExternalPerPodMetricReplicas: the metric's total against target x statusReplicas; outside
    the tolerance, ceil(total / target) (an AverageValue target of an External metric: KEDA's triggers)."""
    if status_replicas <= 0:
        return math.ceil(usage / target_per_pod)
    ratio = usage / (target_per_pod * status_replicas)
    if within_tolerance(ratio):
        return status_replicas
    return math.ceil(usage / target_per_pod)


def resource_utilization(current: int, ready: int, ignored: int, missing: int, usage: float, target: float) -> int:
    """GetResourceReplicas (replica_calculator.go) for a Utilization target over pods that share
    `usage` (the sum, in percent of one pod's request) evenly among the `ready` ones: unready pods
    still starting are ignored (groupPods: in the CPU initialization period), pods with no metrics
    (pending) are missing; on a scale-up both count as 0%, on a scale-down missing ones as 100%."""
    if ready <= 0:
        return current  # "did not receive metrics for any ready pods": the metric is invalid, no change
    ratio = usage / ready / target
    rebalance = ignored > 0 and ratio > 1.0
    if not rebalance and missing == 0:
        if within_tolerance(ratio):
            return current
        return math.ceil(ratio * ready)
    pods = ready + missing + (ignored if rebalance else 0)
    total = usage + (missing * target if ratio < 1.0 else 0.0)
    new_ratio = total / pods / target
    if within_tolerance(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposed = math.ceil(new_ratio * pods)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


@dataclass
class HpaState:
    """What the controller keeps per HPA: past recommendations and scale events (horizontal.go's
    `recommendations` and `scaleUpEvents`/`scaleDownEvents`)."""

    min_replicas: int
    max_replicas: int
    up: Rules = DEFAULT_UP
    down: Rules = DEFAULT_DOWN
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    def sync(self, now: float, current: int, proposals: Sequence[int]) -> int:
        """reconcileAutoscaler: outside min..max, back inside; else computeReplicasForMetrics (the
        highest proposal wins) and normalizeDesiredReplicasWithBehaviors. Records the scale event."""
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            metric = max(proposals) if proposals else current
            desired = self.normalize(now, current, max(metric, 0))
        if desired != current:
            self._store_event(now, desired - current)
        return desired

    def normalize(self, now: float, current: int, desired: int) -> int:
        """normalizeDesiredReplicasWithBehaviors: stabilize, then limit the rate."""
        stabilized = self._stabilize(now, current, desired)
        return self._rate(now, current, stabilized)

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        """stabilizeRecommendationWithBehaviors: the lowest recommendation of the scale-up window and
        the highest of the scale-down window bound the change; the raw recommendation is recorded,
        reusing the slot of one older than both windows."""
        up_cutoff = now - self.up.stabilization_seconds
        down_cutoff = now - self.down.stabilization_seconds
        up_rec = down_rec = desired
        old = -1
        for i, (ts, rec) in enumerate(self.recommendations):
            if ts > up_cutoff:
                up_rec = min(rec, up_rec)
            if ts > down_cutoff:
                down_rec = max(rec, down_rec)
            if ts < up_cutoff and ts < down_cutoff:
                old = i
        result = current
        if result < up_rec:
            result = up_rec
        if result > down_rec:
            result = down_rec
        if old >= 0:
            self.recommendations[old] = (now, desired)
        else:
            self.recommendations.append((now, desired))
        return result

    def _rate(self, now: float, current: int, desired: int) -> int:
        """convertDesiredReplicasWithBehaviorRate: bounded by min..max and the policies' limits."""
        if desired > current:
            limit = max(scale_up_limit(now, current, self.up_events, self.down_events, self.up), current)
            return min(desired, self.max_replicas, limit)
        if desired < current:
            limit = min(scale_down_limit(now, current, self.up_events, self.down_events, self.down), current)
            return max(desired, self.min_replicas, limit)
        return desired

    def _store_event(self, now: float, change: int) -> None:
        """storeScaleEvent: events older than the longest policy period are dropped."""
        events = self.up_events if change > 0 else self.down_events
        rules = self.up if change > 0 else self.down
        longest = max((p.period_seconds for p in rules.policies), default=0)
        events[:] = [e for e in events if e[0] > now - longest]
        events.append((now, abs(change)))


def _changed(now: float, period: int, events: Sequence[tuple[float, int]]) -> int:
    """getReplicasChangePerPeriod: replicas changed within the period before now."""
    cutoff = now - period
    return sum(n for ts, n in events if ts > cutoff)


def scale_up_limit(now: float, current: int, ups: Sequence[tuple[float, int]], downs: Sequence[tuple[float, int]],
                   rules: Rules) -> int:
    """calculateScaleUpLimitWithScalingRules: per policy, from the replicas at the period's start;
    selectPolicy Max takes the largest, Min the smallest, Disabled none."""
    if rules.select_policy == "Disabled":
        return current
    results = []
    for p in rules.policies:
        start = current - _changed(now, p.period_seconds, ups) + _changed(now, p.period_seconds, downs)
        if p.type == "Pods":
            results.append(start + p.value)
        else:
            results.append(math.ceil(start * (1 + p.value / 100)))
    if not results:
        return current
    return min(results) if rules.select_policy == "Min" else max(results)


def scale_down_limit(now: float, current: int, ups: Sequence[tuple[float, int]], downs: Sequence[tuple[float, int]],
                     rules: Rules) -> int:
    """calculateScaleDownLimitWithBehaviors: Percent rounds down (int32 of the float); selectPolicy Max
    takes the largest change (the lowest limit)."""
    if rules.select_policy == "Disabled":
        return current
    results = []
    for p in rules.policies:
        start = current - _changed(now, p.period_seconds, ups) + _changed(now, p.period_seconds, downs)
        if p.type == "Pods":
            results.append(start - p.value)
        else:
            results.append(int(start * (1 - p.value / 100)))
    if not results:
        return current
    return max(results) if rules.select_policy == "Min" else min(results)
