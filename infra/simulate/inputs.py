"""A ClusterSpec read into the simulation's tiers and pools. Pure: no Pulumi.

Each figure with its source:
- a pod's requests: the tier's `cpu`/`memory`, plus the TLS proxy sidecar (250m, 256Mi:
  components/k8s/tls.py) on a public tier whose TLS ends in the proxy (tests/test_simulate.py holds
  these to the planned Deployments' requests);
- the HPA behaviour: components/k8s/services.py `hpa_behavior` (held to the plan by the same test);
- a node's room: the cloud's documented reservations (`allocatable`), less the cloud's own
  daemonsets (infra/cost/rightsize.py DAEMONSET_*);
- the node autoscaler: the settings the program configures (components/azure.py's autoscaler
  profile; the cluster autoscaler's defaults on EKS, components/k8s/addons_aws.py sets none of them;
  GKE's autoscaler), and a node's start-up time (NODE_START_SECONDS).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Sequence

from components.spec import ClusterSpec, ScheduleWindow, ServiceSpec
from infra.config.cron import parse_cron
from infra.cost.rightsize import DAEMONSET_CPU, DAEMONSET_MEMORY_GIB, quantity
from infra.simulate import hpa
from infra.simulate.engine import Pool, Tier, Window

PROXY_CPU = 0.25        # components/k8s/tls.py PROXY_CPU "250m"
PROXY_MEMORY_GIB = 0.25  # PROXY_MEMORY "256Mi"
GIB = 1024 ** 3

# Seconds from the autoscaler's request to a node taking pods: instance boot, kubelet join and the
# CNI becoming ready. An assumption of typical start-up on each cloud (none publishes a bound), to
# be moved by measurement; the capacity buffer exists to hide it.
NODE_START_SECONDS = {"aws": 120, "gcp": 120, "azure": 180}
# (scale-down-unneeded-time, scale-down-delay-after-add, scale-down-utilization-threshold):
# EKS runs the upstream cluster autoscaler with its defaults (10m, 10m, 0.5: cluster-autoscaler FAQ,
# "What are the parameters to CA?"); AKS as components/azure.py configures it (15m, 15m, 0.5); GKE's
# autoscaler under OPTIMIZE_UTILIZATION (components/gcp.py) removes unneeded nodes sooner than the
# balanced profile's 10 minutes, taken here as the upstream defaults.
SCALE_DOWN = {"aws": (600, 600, 0.5), "gcp": (600, 600, 0.5), "azure": (900, 900, 0.5)}


def _steps(total: float, steps: Sequence[tuple[float, float]]) -> float:
    left, out = total, 0.0
    for size, rate in steps:
        take = min(left, size)
        out += take * rate
        left -= take
        if left <= 0:
            break
    return out


# CPU reserved for kube and system daemons: 6% of the first core, 1% of the next, 0.5% of the next 2,
# 0.25% above 4. The same table on all three: GKE (cloud.google.com/kubernetes-engine/docs/concepts/
# plan-node-sizes), the EKS AMI's bootstrap (awslabs/amazon-eks-ami, get_cpu_millicores_to_reserve),
# AKS (learn.microsoft.com/azure/aks/node-resource-reservations).
_CPU = ((1, 0.06), (1, 0.01), (2, 0.005), (10**6, 0.0025))
# GKE memory: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above.
_GKE_MEMORY = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (10**6, 0.02))
EVICTION_GIB = 0.1  # --eviction-hard memory.available<100Mi on all three


def max_pods(cloud: str, vcpu: int) -> int:
    """Pods a node may run, which EKS's and AKS's memory reservations are reckoned from: EKS's VPC CNI
    limit by ENIs (29 on a large, 58 on xlarge and 2xlarge, capped at 110 below 30 vCPUs: the AMI's
    eni-max-pods and the EKS max-pods calculator); AKS's Azure CNI Overlay default of 250; GKE 110."""
    if cloud == "aws":
        return 29 if vcpu <= 2 else 58 if vcpu <= 8 else 110
    return 250 if cloud == "azure" else 110


def allocatable(cloud: str, vcpu: int, memory_gib: int) -> tuple[float, float]:
    """(cores, GiB) a node offers pods, before the daemonsets. Memory: EKS 255 MiB + 11 MiB per pod
    (the AMI's bootstrap); AKS 50 MiB + 20 MiB per pod, at most 25% (1.29 and later: node-resource-
    reservations); GKE its table. Each less the 100 MiB eviction threshold."""
    cpu = vcpu - _steps(vcpu, _CPU)
    if cloud == "aws":
        reserved = (255 + 11 * max_pods(cloud, vcpu)) / 1024
    elif cloud == "azure":
        reserved = min((50 + 20 * max_pods(cloud, vcpu)) / 1024, 0.25 * memory_gib)
    else:
        reserved = _steps(memory_gib, _GKE_MEMORY)
    return cpu, memory_gib - reserved - EVICTION_GIB


def node_room(cloud: str, vcpu: int, memory_gib: int) -> tuple[float, float]:
    cpu, mem = allocatable(cloud, vcpu, memory_gib)
    return cpu - float(DAEMONSET_CPU), mem - float(DAEMONSET_MEMORY_GIB)


def pod_requests(service: ServiceSpec, spec: ClusterSpec) -> tuple[float, float]:
    cpu = float(quantity(service.cpu))
    mem = float(quantity(service.memory)) / GIB
    if service.public and spec.tls is not None and service.tls == "proxy":
        cpu += PROXY_CPU
        mem += PROXY_MEMORY_GIB
    return cpu, mem


def behavior(service: ServiceSpec) -> tuple[hpa.Rules, hpa.Rules]:
    """components/k8s/services.py hpa_behavior, as data."""
    up = hpa.Rules(0, "Max", (hpa.Policy("Percent", 100, 15), hpa.Policy("Pods", 4, 15)))
    if service.holds_connections:
        down = hpa.Rules(600, "Max", (hpa.Policy("Pods", 1, 120), hpa.Policy("Percent", 10, 120)))
    else:
        down = hpa.Rules(300, "Max", (hpa.Policy("Percent", 50, 60),))
    return up, down


@functools.lru_cache(maxsize=256)  # the same windows recur: a DR pair's two files, --compare's three clouds
def window_minutes(window: ScheduleWindow, timezone: str, day: dt.date) -> frozenset[int]:
    """The minutes of `day` (in the curve's zone) a KEDA cron window is active: after its start fired
    and before its end did (cron_scaler.go IsActive), each read in the window's own zone."""
    start, end = parse_cron(window.start), parse_cron(window.end)
    zone, own = zoneinfo.ZoneInfo(timezone), zoneinfo.ZoneInfo(window.timezone)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    active = False
    found = set()
    # From a week before, so a weekly window's state is known when the day begins.
    for m in range(-7 * 1440, 1440):
        when = (midnight + dt.timedelta(minutes=m)).astimezone(own)
        if end.matches(when):
            active = False
        if start.matches(when):
            active = True
        if m >= 0 and active:
            found.add(m)
    return frozenset(found)


def _span(minutes: frozenset[int]) -> tuple[int, int]:
    if not minutes:
        return 0, 0
    if 0 in minutes and 1439 in minutes and len(minutes) < 1440:
        start = next(m for m in range(1439, -1, -1) if m - 1 not in minutes)
        end = next(m for m in range(1440) if m not in minutes)
        return start * 60, end * 60
    return min(minutes) * 60, (max(minutes) + 1) * 60


def tiers_and_pools(spec: ClusterSpec, *, day: dt.date | None = None,
                    cloud: str | None = None) -> tuple[list[Tier], list[Pool]]:
    """The tiers pinned to a pool, and those pools, as the simulation reads them (on `cloud`: the same
    spec on another cloud's nodes, for cost --compare)."""
    day = day or dt.date.today()
    cloud = cloud or spec.cloud
    standby = spec.dr is not None and spec.dr.is_standby
    tiers = []
    managed = {p.name for p in spec.node_pools if p.managed}
    for s in spec.services:
        # A tier with no pool, or on an existing cluster's node group: no nodes of the program's to simulate.
        if not s.pool or s.pool not in managed:
            continue
        cpu, mem = pod_requests(s, spec)
        up, down = behavior(s)
        windows: list[Window] = []
        if s.scaling is not None:
            target = float(s.scaling.target_per_pod)
            peak = float(s.scaling.peak_load) if s.scaling.peak_load is not None else target * s.max_replicas
            metric, cpu_trigger = s.scaling.metric, s.scaling.cpu
            for w in s.scaling.schedule:
                minutes = window_minutes(w, spec.cost.timezone, day)
                a, b = _span(minutes)
                windows.append(Window(w.replicas, minutes, a, b))
        else:
            target = float(s.target_cpu_percent)
            peak = target * s.max_replicas
            metric, cpu_trigger = "cpu", True
        tiers.append(Tier(s.name, s.pool, s.min_replicas, s.max_replicas, target, 0.0 if standby else peak, metric,
                          cpu_trigger, float(s.target_cpu_percent), tuple(windows), s.ready_seconds, cpu, mem, up, down))
    used = {t.pool for t in tiers}
    buffers = {b.pool: b for b in spec.capacity_buffers}
    pools = []
    unneeded, after_add, threshold = SCALE_DOWN.get(cloud, SCALE_DOWN["aws"])
    for p in spec.node_pools:
        if p.name not in used or not p.managed:
            continue
        cpu, mem = node_room(cloud, p.vcpu, p.memory_gib)
        buf = buffers.get(p.name)
        pools.append(Pool(p.name, cpu, mem, p.min_nodes, p.max_nodes, NODE_START_SECONDS.get(cloud, 120),
                          unneeded, after_add, threshold,
                          buf.pods if buf else 0, float(quantity(buf.cpu)) if buf else 0.0,
                          float(quantity(buf.memory)) / GIB if buf else 0.0))
    return tiers, pools


def curve(spec: ClusterSpec) -> list[float]:
    return [float(x) for x in spec.cost.curve]


def fits_at_max(tier: Tier, pool: Pool) -> int:
    """Nodes of `pool` that `tier` needs at replicas.max, packed whole (0: one pod fits no node)."""
    return nodes_needed(tier.max_replicas, tier.pod_cpu, tier.pod_memory, pool.node_cpu, pool.node_memory)


def nodes_needed(replicas: int, pod_cpu: float, pod_memory: float, node_cpu: float, node_memory: float) -> int:
    """Nodes with (node_cpu, node_memory) of room for pods that `replicas` pods of (pod_cpu,
    pod_memory) need, packed whole (0: one pod fits no node). The policy rule tier-fits-pool packs
    the planned pods with it too."""
    per_node = min(math.floor(node_cpu / pod_cpu + 1e-9) if pod_cpu else 10**6,
                   math.floor(node_memory / pod_memory + 1e-9) if pod_memory else 10**6)
    return math.ceil(replicas / per_node) if per_node > 0 else 0


