"""The simulated day: load, the HPA of each tier, pods, nodes and the node autoscaler. Pure.

The day (the load curve, linear between its hourly points, wrapping at midnight) runs twice at
STEP-second steps and the second is reported, so it starts as the day before ended. Each step:
1. each tier's HPA syncs (every 15 s: --horizontal-pod-autoscaler-sync-period) on the load it sees;
2. pods the HPA added are created (pending); pods it removed go, pending first, then unready, then
   the newest (the ReplicaSet controller's deletion order, pkg/controller/controller_utils.go ActivePods);
3. pending pods are placed on nodes with room (first fit), preempting capacity-buffer placeholders
   (priority -1, below every tier) which then wait for room themselves; a pod is ready
   `ready_seconds` after it lands on a node;
4. the node autoscaler asks for nodes for what is still pending (they join `scale_up_delay` later,
   up to maxNodes), and removes a node whose requests are below the utilisation threshold and whose
   pods fit on the other nodes, once it has been unneeded `unneeded_seconds` and no node was added
   for `delay_after_add` (the cluster autoscaler's scale-down, FAQ "How does scale-down work?").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from infra.simulate import hpa

STEP = 15
DAY = 86400
STEPS = DAY // STEP


@dataclass(frozen=True)
class Window:
    """A schedule window: the minutes of the simulated day (in the curve's zone) it is active."""

    replicas: int
    minutes: frozenset[int]
    start: int = 0  # seconds of the day, for reports (end < start: past midnight)
    end: int = 0

    @classmethod
    def between(cls, start: int, end: int, replicas: int) -> Window:
        a, b = start // 60, end // 60
        mins = range(a, b) if a <= b else [*range(a, 1440), *range(0, b)]
        return cls(replicas, frozenset(mins), start, end)

    def active(self, t: int) -> bool:
        return (t % DAY) // 60 in self.minutes


@dataclass(frozen=True)
class Tier:
    name: str
    pool: str
    min_replicas: int
    max_replicas: int
    target: float              # the load one pod is sized to carry (CPU tiers: targetCpuPercent)
    peak: float                # the load at the curve's 1.0 (0: a standby, no load)
    metric: str                # the load's name; "cpu" for a tier on its CPU proxy alone
    cpu_trigger: bool          # a load tier that keeps CPU as a second trigger (its proxy)
    cpu_target: float          # targetCpuPercent
    windows: tuple[Window, ...]
    ready_seconds: int
    pod_cpu: float             # one pod's requests (cores, GiB), sidecars included
    pod_memory: float
    up: hpa.Rules = hpa.DEFAULT_UP
    down: hpa.Rules = hpa.DEFAULT_DOWN


@dataclass(frozen=True)
class Pool:
    name: str
    node_cpu: float            # what a node offers pods: allocatable less the daemons
    node_memory: float
    min_nodes: int
    max_nodes: int
    scale_up_delay: int        # seconds from the autoscaler's request to a node taking pods
    unneeded_seconds: int
    delay_after_add: int
    threshold: float           # utilisation below which a node is a scale-down candidate
    buffer_pods: int = 0
    buffer_cpu: float = 0.0
    buffer_memory: float = 0.0


@dataclass
class TierResult:
    tier: Tier
    load: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    step: int = STEP  # seconds between two entries of the series

    @property
    def load_per_ready(self) -> list[float]:
        return [load / r if r else (math.inf if load > 0 else 0.0) for load, r in zip(self.load, self.ready, strict=True)]

    @property
    def seconds_over_target(self) -> int:
        """Steps whose load is above targetPerPod x ready pods (no ready pod and any load: over)."""
        t = self.tier.target
        return self.step * sum(1 for load, r in zip(self.load, self.ready, strict=True) if load > t * r)

    @property
    def max_load_per_ready(self) -> float:
        return max(self.load_per_ready, default=0.0)


@dataclass
class PoolResult:
    pool: Pool
    nodes: list[int] = field(default_factory=list)
    step: int = STEP

    @property
    def node_hours(self) -> float:
        return sum(self.nodes) * self.step / 3600


@dataclass
class Result:
    tiers: list[TierResult]
    pools: list[PoolResult]


def load_at(curve: Sequence[float], t: int) -> float:
    """The curve's fraction at second t of the day, linear between hourly points (the day wraps)."""
    t %= DAY
    h, rest = divmod(t, 3600)
    a, b = curve[h], curve[(h + 1) % 24]
    return a + (b - a) * rest / 3600


@dataclass
class _Node:
    ready_at: int
    cpu: float
    memory: float
    pods: list[list]  # [owner index (-1: placeholder), cpu, memory]
    unneeded_since: int | None = None


class _Sim:
    def __init__(self, tiers: Sequence[Tier], pools: Sequence[Pool], fraction: Callable[[int], float]) -> None:
        self.tiers = list(tiers)
        self.pools = {p.name: p for p in pools}
        self.fraction = fraction  # the load at second t, as a fraction of each tier's peak
        self.states = [hpa.HpaState(t.min_replicas, t.max_replicas, t.up, t.down) for t in tiers]
        self.replicas = [t.min_replicas for t in tiers]
        self.pending: list[int] = [t.min_replicas for t in tiers]     # pods with no node
        self.starting: list[list[tuple[int, _Node]]] = [[] for _ in tiers]  # (ready at, node)
        self.ready_pods: list[list[_Node]] = [[] for _ in tiers]
        self.nodes: dict[str, list[_Node]] = {p.name: [_Node(0, p.node_cpu, p.node_memory, []) for _ in range(p.min_nodes)]
                                              for p in pools}
        self.placeholders_pending = {p.name: p.buffer_pods for p in pools}
        self.last_add = {p.name: -10**9 for p in pools}

    # -- pods ------------------------------------------------------------------------------------
    def _fits(self, node: _Node, cpu: float, mem: float) -> bool:
        return node.cpu >= cpu - 1e-9 and node.memory >= mem - 1e-9

    def _place(self, node: _Node, owner: int, cpu: float, mem: float) -> None:
        node.cpu -= cpu
        node.memory -= mem
        node.pods.append([owner, cpu, mem])

    def _remove(self, node: _Node, owner: int) -> None:
        for i, (o, c, m) in enumerate(node.pods):
            if o == owner:
                node.pods.pop(i)
                node.cpu += c
                node.memory += m
                return

    def _schedule(self, now: int) -> None:
        for i, tier in enumerate(self.tiers):
            nodes = [n for n in self.nodes[tier.pool] if n.ready_at <= now]
            while self.pending[i]:
                node = next((n for n in nodes if self._fits(n, tier.pod_cpu, tier.pod_memory)), None)
                if node is None:
                    node = self._preempt(nodes, tier)
                if node is None:
                    break
                self._place(node, i, tier.pod_cpu, tier.pod_memory)
                self.pending[i] -= 1
                self.starting[i].append((now + tier.ready_seconds, node))
        for name, pool in self.pools.items():
            nodes = [n for n in self.nodes[name] if n.ready_at <= now]
            while self.placeholders_pending[name]:
                node = next((n for n in nodes if self._fits(n, pool.buffer_cpu, pool.buffer_memory)), None)
                if node is None:
                    break
                self._place(node, -1, pool.buffer_cpu, pool.buffer_memory)
                self.placeholders_pending[name] -= 1

    def _preempt(self, nodes: Sequence[_Node], tier: Tier) -> _Node | None:
        """The scheduler evicts lower-priority placeholders from a node where that makes room."""
        pool = self.pools[tier.pool]
        for n in nodes:
            held = sum(1 for p in n.pods if p[0] == -1)
            need = 0
            cpu, mem = n.cpu, n.memory
            while need < held and not (cpu >= tier.pod_cpu - 1e-9 and mem >= tier.pod_memory - 1e-9):
                need += 1
                cpu += pool.buffer_cpu
                mem += pool.buffer_memory
            if cpu >= tier.pod_cpu - 1e-9 and mem >= tier.pod_memory - 1e-9 and need:
                for _ in range(need):
                    self._remove(n, -1)
                self.placeholders_pending[tier.pool] += need
                return n
        return None

    def _delete(self, i: int, count: int) -> None:
        """ActivePods order: unscheduled first, then not ready (newest first), then ready (newest first)."""
        take = min(count, self.pending[i])
        self.pending[i] -= take
        count -= take
        while count and self.starting[i]:
            _, node = self.starting[i].pop()
            self._remove(node, i)
            count -= 1
        while count and self.ready_pods[i]:
            node = self.ready_pods[i].pop()
            self._remove(node, i)
            count -= 1

    # -- the node autoscaler ------------------------------------------------------------------------
    def _autoscale(self, now: int) -> None:
        for name, pool in self.pools.items():
            nodes = self.nodes[name]
            # Scale-up: pods still pending after scheduling, packed into the room of nodes on their way.
            coming = [[n.cpu, n.memory] for n in nodes if n.ready_at > now]
            wanted = [(t.pod_cpu, t.pod_memory) for i, t in enumerate(self.tiers) if t.pool == name
                      for _ in range(self.pending[i])]
            wanted += [(pool.buffer_cpu, pool.buffer_memory)] * self.placeholders_pending[name]
            new: list[list[float]] = []
            for cpu, mem in wanted:
                slot = next((s for s in coming + new if s[0] >= cpu - 1e-9 and s[1] >= mem - 1e-9), None)
                if slot is None:
                    if cpu > pool.node_cpu or mem > pool.node_memory or len(nodes) + len(new) >= pool.max_nodes:
                        continue
                    slot = [pool.node_cpu, pool.node_memory]
                    new.append(slot)
                slot[0] -= cpu
                slot[1] -= mem
            for _ in new:
                nodes.append(_Node(now + pool.scale_up_delay, pool.node_cpu, pool.node_memory, []))
            if new:
                self.last_add[name] = now
            self._scale_down(now, pool, nodes)

    def _scale_down(self, now: int, pool: Pool, nodes: list[_Node]) -> None:
        live = [n for n in nodes if n.ready_at <= now]
        if len(nodes) <= pool.min_nodes:
            for n in live:
                n.unneeded_since = None
            return
        candidate = None
        for n in live:
            used = max((pool.node_cpu - n.cpu) / pool.node_cpu, (pool.node_memory - n.memory) / pool.node_memory)
            movable = used < pool.threshold and self._room_elsewhere(n, live)
            if not movable:
                n.unneeded_since = None
                continue
            if n.unneeded_since is None:
                n.unneeded_since = now
            if (candidate is None and now - n.unneeded_since >= pool.unneeded_seconds
                    and now - self.last_add[pool.name] >= pool.delay_after_add):
                candidate = n
        if candidate is not None:
            nodes.remove(candidate)
            for owner, _c, _m in candidate.pods:
                if owner == -1:
                    self.placeholders_pending[pool.name] += 1
                    continue
                # Drained: the pod is recreated (pending) elsewhere.
                if any(node is candidate for node in self.ready_pods[owner]):
                    self.ready_pods[owner].remove(candidate)
                else:
                    self.starting[owner] = [(r, nd) for r, nd in self.starting[owner] if nd is not candidate] \
                        if sum(1 for _, nd in self.starting[owner] if nd is candidate) else self.starting[owner]
                self.pending[owner] += 1

    def _room_elsewhere(self, node: _Node, live: Sequence[_Node]) -> bool:
        """Whether this node's pods (placeholders included) fit on the others' free room, first fit."""
        room = [[n.cpu, n.memory] for n in live if n is not node]
        for _o, cpu, mem in sorted(node.pods, key=lambda p: -p[1]):
            slot = next((s for s in room if s[0] >= cpu - 1e-9 and s[1] >= mem - 1e-9), None)
            if slot is None:
                return False
            slot[0] -= cpu
            slot[1] -= mem
        return True

    # -- one step ---------------------------------------------------------------------------------
    def step(self, now: int) -> list[float]:
        fraction = self.fraction(now)
        loads = []
        for i, tier in enumerate(self.tiers):
            starting = self.starting[i]
            if starting:
                keep = []
                for ready_at, node in starting:
                    if ready_at <= now:
                        self.ready_pods[i].append(node)
                    else:
                        keep.append((ready_at, node))
                self.starting[i] = keep
            ready = len(self.ready_pods[i])
            # To the hundredth, as reported: the seconds over target can be recounted from the series.
            load = round(tier.peak * fraction, 2)
            loads.append(load)
            proposals = []
            current = self.replicas[i]
            if tier.metric != "cpu":
                proposals.append(hpa.external_per_pod(current, load, tier.target))
            if tier.metric == "cpu" or tier.cpu_trigger:
                # The CPU proxy: the curve as a fraction of replicas.max, in percent of a pod's request.
                usage = fraction * tier.max_replicas * tier.cpu_target if tier.peak else 0.0
                proposals.append(hpa.resource_utilization(current, ready, len(self.starting[i]), self.pending[i],
                                                          usage, tier.cpu_target))
            for w in tier.windows:
                value = w.replicas if w.active(now) else hpa.CRON_OUTSIDE_VALUE
                proposals.append(hpa.external_per_pod(current, value, 1))
            desired = self.states[i].sync(now, current, proposals)
            if desired > current:
                self.pending[i] += desired - current
            elif desired < current:
                self._delete(i, current - desired)
            self.replicas[i] = desired
        self._schedule(now)
        self._autoscale(now)
        return loads


def _record(sim: _Sim, now: int, loads: Sequence[float], results: Sequence[TierResult],
            pool_results: Sequence[PoolResult]) -> None:
    """Append this step's load, replicas, ready pods and ready nodes to the series."""
    for i, r in enumerate(results):
        r.load.append(loads[i])
        r.replicas.append(sim.replicas[i])
        r.ready.append(len(sim.ready_pods[i]))
    for pr in pool_results:
        pr.nodes.append(sum(1 for n in sim.nodes[pr.pool.name] if n.ready_at <= now))


def simulate(tiers: Sequence[Tier], pools: Sequence[Pool], curve: Sequence[float]) -> Result:
    """Two days at STEP seconds; the second reported."""
    sim = _Sim(tiers, pools, functools.partial(load_at, list(curve)))
    results = [TierResult(t) for t in tiers]
    pool_results = [PoolResult(p) for p in pools]
    for k in range(2 * STEPS):
        now = k * STEP
        loads = sim.step(now)
        if k < STEPS:
            continue
        _record(sim, now, loads, results, pool_results)
    return Result(results, pool_results)


def replay(tiers: Sequence[Tier], pools: Sequence[Pool], fraction: Callable[[int], float], seconds: int,
           step: int = STEP) -> Result:
    """A scripted load in place of the day: one run of `seconds` from every tier at its floor, one
    step every `step` seconds (each tier's HPA syncs once a step, as a controller whose
    --horizontal-pod-autoscaler-sync-period is `step`), every step reported from t = 0.
    `fraction(t)` is the load at second t as a fraction of each tier's peak. The engine tests run
    the same script through the real HPA controller and hold this model to it."""
    if step <= 0 or seconds < 0:
        raise ValueError(f"a replay needs step > 0 and seconds >= 0, not step={step}, seconds={seconds}")
    sim = _Sim(tiers, pools, fraction)
    results = [TierResult(t, step=step) for t in tiers]
    pool_results = [PoolResult(p, step=step) for p in pools]
    for now in range(0, seconds + 1, step):
        loads = sim.step(now)
        _record(sim, now, loads, results, pool_results)
    return Result(results, pool_results)
