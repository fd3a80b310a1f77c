"""The cloud-neutral description of an IM cluster.

Everything here is plain, frozen data: no Pulumi and no cloud SDK is imported, so the spec can be
built, validated and tested without any runtime. `infra.config.loader` is the only producer of a
`ClusterSpec`; the per-cloud components are its only consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

CLOUDS = ("aws", "gcp", "azure")
# An existing cluster the program only puts workloads on, reached through a kubeconfig: no cloud
# resources, no node pools of its own (im-platform:cloud kubernetes). Not one of CLOUDS, which are
# the three the program builds clusters on, prices and compares.
KUBERNETES = "kubernetes"
STACK_KINDS = (*CLOUDS, KUBERNETES)

# Pinned default: the newest minor in standard support on EKS, GKE and AKS alike, by the calendars
# in infra/config/kubernetes_versions.yaml (tests/test_versions.py holds the two together). Users move
# it with im-platform:cluster.kubernetesVersion, control plane first.
DEFAULT_KUBERNETES_VERSION = "1.35"
DEFAULT_NETWORK_CIDR = "10.20.0.0/16"
# Pods and services live outside the node network so they never collide with it. 100.64.0.0/10 is
# the shared address space GKE and AKS overlay both accept for pods.
DEFAULT_POD_CIDR = "100.64.0.0/14"
DEFAULT_SERVICE_CIDR = "172.20.0.0/20"

# One label and one taint mark spot capacity on every cloud, so one toleration fits everywhere.
SPOT_LABEL_KEY = "im-platform/capacity"
SPOT_LABEL_VALUE = "spot"
POOL_LABEL_KEY = "im-platform/pool"

SYSTEM_POOL = "system"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # one of TAINT_EFFECTS

    def render(self) -> str:
        """The "key=value:Effect" form users write and AKS takes."""
        return f"{self.key}={self.value}:{self.effect}"


SPOT_TAINT = Taint(SPOT_LABEL_KEY, SPOT_LABEL_VALUE, "NoSchedule")


@dataclass(frozen=True)
class NodePoolSpec:
    name: str
    vcpu: int
    memory_gib: int
    min_nodes: int
    max_nodes: int
    # Resolved for the stack's cloud: the first is the primary type, the rest are equivalent
    # types a spot pool may also use (only where the cloud allows several per pool).
    machine_types: tuple[str, ...]
    spot: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    arch: str = "x86_64"  # or "arm64" (Graviton, Ampere): only tiers whose images are multi-arch
    # False: a node group of an existing cluster (im-platform:cloud kubernetes) that `labels` select.
    # The program neither creates nor scales it: no machine types, min_nodes = max_nodes = 0, and
    # vcpu/memory_gib 0 where the stack file does not give the nodes' shape.
    managed: bool = True

    @property
    def machine_type(self) -> str:
        return self.machine_types[0]

    @property
    def is_system(self) -> bool:
        return self.name == SYSTEM_POOL

    @property
    def node_labels(self) -> dict[str, str]:
        """User labels first, then the labels the platform relies on (they win)."""
        merged = dict(self.labels)
        merged[POOL_LABEL_KEY] = self.name
        if self.spot:
            merged[SPOT_LABEL_KEY] = SPOT_LABEL_VALUE
        return merged

    @property
    def node_selector(self) -> dict[str, str]:
        """What pins a pod to this pool: the label the program puts on the pool's nodes, or on an
        existing cluster the labels its nodes already carry."""
        return {POOL_LABEL_KEY: self.name} if self.managed else dict(self.labels)

    @property
    def node_taints(self) -> tuple[Taint, ...]:
        """User taints plus the common spot taint on spot pools."""
        if self.spot and SPOT_TAINT not in self.taints:
            return self.taints + (SPOT_TAINT,)
        return self.taints


@dataclass(frozen=True)
class Guardrails:
    max_nodes_per_pool: int = 200
    max_nodes_per_cluster: int = 500
    # USD a month: the stack's `max` cost (every pool at maxNodes all month) may not exceed it.
    max_monthly_cost: Decimal | None = None


# -- What a stack costs (im-platform:cost) -------------------------------------------------------------

# The reference IM day: hourly load as a fraction of the peak (UTC hours 0..23).
DEFAULT_COST_CURVE: tuple[Decimal, ...] = tuple(Decimal(x) for x in (
    "0.70", "0.50", "0.35", "0.25", "0.20", "0.20", "0.25", "0.40", "0.60", "0.75", "0.80", "0.85",
    "0.90", "0.85", "0.80", "0.80", "0.80", "0.80", "0.85", "0.90", "0.95", "1.00", "1.00", "0.90"))


DEFAULT_COST_TIMEZONE = "UTC"
# Series one scaled pod sends the managed metrics store (im-platform:cost.metricsSeriesPerPod): its
# scaling metric (1), a Prometheus client library's default process_* (about 9) and go_* runtime
# series (about 40), and the 5 Prometheus adds to every target it scrapes (up, scrape_duration_seconds,
# scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added): 55, rounded up.
DEFAULT_METRICS_SERIES_PER_POD = 60


@dataclass(frozen=True)
class CostSpec:
    """How the cost model reads this stack: its daily load curve, NAT egress and price overrides."""

    curve: tuple[Decimal, ...] = DEFAULT_COST_CURVE
    egress_gib_per_month: Decimal = Decimal(0)
    catalog: str | None = None  # a path relative to the repository root
    # All the stack sends to the internet a month (NAT and the public load balancer); None: the NAT
    # egress (what goes out through NAT reaches the internet too).
    internet_egress_gib_per_month: Decimal | None = None
    # The traffic assumption the load balancer's capacity units are priced from: open connections at
    # the peak hour (each hour is this x the load curve).
    peak_connections: int = 0
    # A commitment (Savings Plan, committed use, reservation) on the always-on floor of the
    # on-demand pools: term "1y" or "3y", coverage 0..1 of the floor; None: no commitment.
    commitment_term: str | None = None
    commitment_coverage: Decimal = Decimal(0)
    # The IANA zone the curve's hours are in: the simulated day's clock (infra/simulate).
    timezone: str = DEFAULT_COST_TIMEZONE
    # The series each pod of a tier scaled on load sends the managed metrics store (its fee).
    metrics_series_per_pod: int = DEFAULT_METRICS_SERIES_PER_POD

    @property
    def internet_egress(self) -> Decimal:
        if self.internet_egress_gib_per_month is None:
            return self.egress_gib_per_month
        return self.internet_egress_gib_per_month


# -- IM service tiers on the cluster (im-platform:services) -----------------------------------------

DEFAULT_TARGET_CPU_PERCENT = 70
DEFAULT_DRAIN_SECONDS = 30
DEFAULT_HEALTH_PATH = "/healthz"
DEFAULT_PUBLIC_PORT = 443
# What a process gets after SIGTERM (once the preStop drain is over) to close what it still holds.
SHUTDOWN_SECONDS = 30
# A tier that drains this long (or is public) holds long-lived connections: it scales down slowly.
LONG_LIVED_DRAIN_SECONDS = 60


@dataclass(frozen=True)
class EgressRule:
    """A destination outside the cluster a tier may open connections to."""

    cidr: str
    port: int


# -- Scaling a tier on its own load (im-platform:services.<tier>.scaling, im-platform:monitoring) ------

DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_READY_SECONDS = 30
DEFAULT_SCRAPE_INTERVAL_SECONDS = 30
# How often KEDA queries each trigger of a ScaledObject (its pollingInterval): the store's query load.
KEDA_POLLING_SECONDS = 15
KEDA_MODES = ("install", "existing")  # the program installs KEDA, or it already runs in the cluster


@dataclass(frozen=True)
class ScheduleWindow:
    """During [start, end) the tier runs at least `replicas` (KEDA's cron trigger)."""

    start: str  # five-field cron, as KEDA's cron scaler reads it (infra/config/cron.py)
    end: str
    timezone: str  # an IANA name
    replicas: int


@dataclass(frozen=True)
class ScalingSpec:
    """Scale a tier on the load it carries, read from Prometheus, rather than on CPU alone."""

    metric: str
    target_per_pod: Decimal  # the load one pod is sized to carry, > 0
    metrics_port: int
    metrics_path: str = DEFAULT_METRICS_PATH
    query: str | None = None  # the user's PromQL; None: the sum over the tier's pods (default_query)
    cpu: bool = True  # targetCpuPercent stays a trigger beside the load
    schedule: tuple[ScheduleWindow, ...] = ()
    # The simulated day's load at its peak; None: targetPerPod x replicas.max (the tier exactly full).
    peak_load: Decimal | None = None

    @property
    def is_counter(self) -> bool:
        """Prometheus's naming rule: a counter's name ends in _total, and its load is its rate."""
        return self.metric.endswith("_total")


@dataclass(frozen=True)
class MonitoringSpec:
    """Where the tiers' load is stored and read (im-platform:monitoring)."""

    # None: the cloud's managed Prometheus; otherwise the http(s) URL of one the user runs.
    prometheus_url: str | None = None
    scrape_interval_seconds: int = DEFAULT_SCRAPE_INTERVAL_SECONDS
    keda: str = "install"  # one of KEDA_MODES

    @property
    def managed(self) -> bool:
        return self.prometheus_url is None

    @property
    def install_keda(self) -> bool:
        return self.keda == "install"


@dataclass(frozen=True)
class ServiceSpec:
    """One IM service tier: a Deployment autoscaled between min and max replicas."""

    name: str
    image: str
    port: int
    cpu: str  # Kubernetes quantity, the request
    memory: str  # Kubernetes quantity, request and limit
    min_replicas: int
    max_replicas: int
    cpu_limit: str  # Kubernetes quantity, >= cpu
    namespace: str
    pool: str | None = None
    target_cpu_percent: int = DEFAULT_TARGET_CPU_PERCENT
    public: bool = False
    public_port: int = DEFAULT_PUBLIC_PORT
    drain_seconds: int = DEFAULT_DRAIN_SECONDS
    health_path: str = DEFAULT_HEALTH_PATH  # readiness: can the tier serve (its dependencies too)
    # Liveness: is the process alive, whatever its dependencies do. None: a TCP check on `port`.
    liveness_path: str | None = None
    # Opt-in: the tier tolerates the spot taint (its pods may be interrupted with two minutes' notice).
    allow_spot: bool = False
    # Declared by the image's owner: the image is a multi-arch index (amd64 and arm64), so the tier may
    # run on an arm64 pool.
    multi_arch: bool = False
    # Other tiers whose pods may open connections to this one.
    allow_from: tuple[str, ...] = ()
    egress: tuple[EgressRule, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # Public tiers only: where TLS ends. "proxy": the platform's sidecar in front of the plain port;
    # "self": the tier's own container, with the certificate Secret mounted at TLS_MOUNT_PATH.
    tls: str = "proxy"
    # Scale on the tier's own load with KEDA (None: the CPU HPA alone).
    scaling: ScalingSpec | None = None
    # Seconds from a pod's creation to its readiness (the simulated day reads it).
    ready_seconds: int = DEFAULT_READY_SECONDS

    @property
    def sidecar_ports(self) -> tuple[int, ...]:
        """The ports the platform's TLS sidecar takes in the tier's pods (none: no sidecar)."""
        if not (self.public and self.tls == "proxy"):
            return ()
        ports = self.proxy_ports
        return (ports.tls, ports.health)

    @property
    def metrics_port(self) -> int | None:
        return self.scaling.metrics_port if self.scaling else None

    def default_query(self, scrape_interval_seconds: int = DEFAULT_SCRAPE_INTERVAL_SECONDS) -> str:
        """The tier's load: its metric summed over the tier's pods (a counter's per-second rate, over
        four scrape intervals so one missed scrape does not empty it)."""
        assert self.scaling is not None
        selector = f'{{namespace="{self.namespace}",pod=~"{self.name}-[a-z0-9]+-[a-z0-9]+"}}'
        series = f"{self.scaling.metric}{selector}"
        if self.scaling.is_counter:
            return f"sum(rate({series}[{4 * scrape_interval_seconds}s]))"
        return f"sum({series})"

    def load_query(self, scrape_interval_seconds: int = DEFAULT_SCRAPE_INTERVAL_SECONDS) -> str:
        assert self.scaling is not None
        return self.scaling.query or self.default_query(scrape_interval_seconds)

    @property
    def holds_connections(self) -> bool:
        """Connection gateways: scaling them down or rolling them cuts users off, so they go slowly."""
        return self.public or self.drain_seconds >= LONG_LIVED_DRAIN_SECONDS

    @property
    def termination_grace_seconds(self) -> int:
        """The preStop drain, then time to shut down: always above drainSeconds."""
        return self.drain_seconds + SHUTDOWN_SECONDS

    @property
    def proxy_ports(self) -> ProxyPorts:
        """The TLS sidecar's ports in this tier's pod (used only when the sidecar runs there)."""
        return tls_proxy_ports(self.port)


TLS_MODES = ("proxy", "self")
# The sidecar's TLS port in the pod when the tier does not use it (the public Service's port targets
# the port by its name, so the number is the pod's own business).
TLS_PROXY_PORT = 8443


@dataclass(frozen=True)
class ProxyPorts:
    """The ports the TLS sidecar takes in a public tier's pod: `tls` (the public Service's target)
    and `health` (its own liveness endpoint, plain HTTP)."""

    tls: int
    health: int


def tls_proxy_ports(tier_port: int) -> ProxyPorts:
    """The ports the TLS sidecar of a tier listening on `tier_port` takes: the first two ports from
    8443 up that are not the tier's. Deterministic and a function of the tier's port alone, so a
    stack file that planned before TLS plans with it (any port 1-65535 is the tier's to choose), the
    pod's ports never collide, and other keys that name a port in the pod (a metrics port) can be
    checked against it."""
    free = [p for p in (TLS_PROXY_PORT, TLS_PROXY_PORT + 1, TLS_PROXY_PORT + 2) if p != tier_port]
    return ProxyPorts(tls=free[0], health=free[1])
TLS_MOUNT_PATH = "/etc/im-platform/tls"


@dataclass(frozen=True)
class CapacityBufferSpec:
    """Low-priority placeholder pods that keep `pods` x (cpu, memory) of a pool warm."""

    pool: str
    pods: int
    cpu: str
    memory: str


# -- Disaster recovery: one half of a pair of cluster stacks on two clouds (im-platform:dr) -----------

DR_ROLES = ("primary", "standby")
DEFAULT_REPLICATION_INTERVAL_MINUTES = 15
DEFAULT_STANDBY_REPLICAS_MIN = 1


@dataclass(frozen=True)
class ReplicationSpec:
    """Copy the primary's object store into this stack's own, while this stack is the standby."""

    interval_minutes: int = DEFAULT_REPLICATION_INTERVAL_MINUTES


@dataclass(frozen=True)
class DrSpec:
    """This stack's half of a DR pair. `peer_cloud` is read from the peer's own stack file.

    While `role` is standby, `infra.config.loader` has already lowered the pools' `min_nodes` and the tiers'
    `min_replicas` in the ClusterSpec (everything else stays as the stack file says), so a
    failover's diff is only those minimums.
    """

    peer: str
    role: str  # one of DR_ROLES
    peer_cloud: str
    standby_min_nodes: tuple[tuple[str, int], ...] = ()  # pool -> minNodes while standby
    standby_replicas_min: int = DEFAULT_STANDBY_REPLICAS_MIN
    replication: ReplicationSpec | None = None  # from this stack's own file only
    # The peer's own role as its file says ("" when the peer was not read): two primaries is the
    # state a failover passes through (promote before demote) and where a pending demotion stays.
    peer_role: str = ""

    @property
    def is_standby(self) -> bool:
        return self.role == "standby"

    @property
    def is_primary(self) -> bool:
        return self.role == "primary"


# -- TLS for the public names (im-platform:tls) ------------------------------------------------------

# ACME directories of Let's Encrypt: production (trusted by clients, rate limited) and staging
# (untrusted, generous limits: for trying a new stack out). "own": the user provides the Secret.
TLS_ISSUERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "own": "",
}
DEFAULT_TLS_ISSUER = "letsencrypt"


@dataclass(frozen=True)
class TlsZone:
    """A Route 53 public hosted zone and the names below it the certificate carries."""

    zone: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class TlsSpec:
    """The names the stack's public tiers serve over TLS and who issues their certificate.

    `zones` groups the hosts by the Route 53 zone their DNS-01 challenges are written to (empty
    when `issuer` is "own"); `secret_name` is the certificate's Secret in each public tier's
    namespace (issued there by cert-manager, or created by the user for "own")."""

    issuer: str  # one of TLS_ISSUERS
    hosts: tuple[str, ...]
    zones: tuple[TlsZone, ...] = ()
    email: str | None = None
    secret_name: str = "im-platform-tls"
    # Where the names came from: the traffic stacks that route to this stack (empty: the stack file).
    traffic_stacks: tuple[str, ...] = ()
    # A zone in another AWS account: its hosted zone id and the role cert-manager assumes there
    # (both or neither; then `zones` holds that one zone).
    hosted_zone_id: str | None = None
    zone_role: str | None = None

    @property
    def acme(self) -> bool:
        return self.issuer != "own"

    @property
    def acme_server(self) -> str:
        return TLS_ISSUERS[self.issuer]


@dataclass(frozen=True)
class ClusterSpec:
    project: str
    stack: str
    cloud: str
    environment: str
    region: str
    node_pools: tuple[NodePoolSpec, ...]
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    network_cidr: str = DEFAULT_NETWORK_CIDR
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    # Empty: the API endpoint is private only.
    api_allowed_cidrs: tuple[str, ...] = ()
    # Principals in the cloud's own form (IAM ARN, IAM member, Entra object id): cluster admins, and
    # read-only viewers (no Secrets), granted through the cloud's access mechanism.
    admins: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()
    # GCP only: the project that holds the cluster.
    gcp_project: str | None = None
    # Azure only: `pulumi up` runs as a service principal (CI through OIDC) rather than a user
    # (az login); the role assignment that makes the deployer cluster admin must say which.
    deployer_is_service_principal: bool = False
    guardrails: Guardrails = field(default_factory=Guardrails)
    services: tuple[ServiceSpec, ...] = ()
    capacity_buffers: tuple[CapacityBufferSpec, ...] = ()
    # Set when this stack is one half of a DR pair (im-platform:dr).
    dr: DrSpec | None = None
    cost: CostSpec = field(default_factory=CostSpec)
    # The public tiers' TLS (im-platform:tls, or the traffic stack that routes to this one); None:
    # no name is known, so the public tiers serve plain TCP (a policy violation).
    tls: TlsSpec | None = None
    # im-platform:cloud kubernetes only: the kubeconfig file and context the Kubernetes provider
    # reads (None: the provider's own default, $KUBECONFIG or ~/.kube/config, and its current context).
    kubeconfig: str | None = None
    kube_context: str | None = None
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)

    @property
    def scaled_services(self) -> tuple[ServiceSpec, ...]:
        """The tiers that scale on their own load (KEDA and the metric store exist for them)."""
        return tuple(s for s in self.services if s.scaling is not None)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def pool(self, name: str) -> NodePoolSpec:
        return next(p for p in self.node_pools if p.name == name)

    @property
    def max_termination_grace_seconds(self) -> int:
        """The longest a tier's pod may take to stop: how long an autoscaler scale-down must wait."""
        return max((s.termination_grace_seconds for s in self.services), default=0)

    @property
    def api_public(self) -> bool:
        return bool(self.api_allowed_cidrs)

    @property
    def system_pool(self) -> NodePoolSpec:
        """The managed clusters' add-on pool (an existing cluster need not name one)."""
        return next(p for p in self.node_pools if p.is_system)

    @property
    def user_pools(self) -> tuple[NodePoolSpec, ...]:
        return tuple(p for p in self.node_pools if not p.is_system)


# -- The traffic stack: one public name switched between the two stacks of a pair (im-platform:traffic) --

TRAFFIC_PROVIDERS = ("route53",)
HEALTH_CHECK_INTERVALS = (10, 30)  # seconds: the only request intervals Route 53 offers
DEFAULT_TRAFFIC_TTL = 30
DEFAULT_HEALTH_INTERVAL_SECONDS = 10
DEFAULT_HEALTH_FAILURE_THRESHOLD = 3


@dataclass(frozen=True)
class HealthCheckSpec:
    path: str | None = None  # None: each stack's own gateway healthPath (its `gateway` output)
    interval_seconds: int = DEFAULT_HEALTH_INTERVAL_SECONDS
    failure_threshold: int = DEFAULT_HEALTH_FAILURE_THRESHOLD


@dataclass(frozen=True)
class TrafficSpec:
    """A stack with no cluster: `name` (inside `zone`) points at `active`, failing over on health."""

    project: str
    stack: str
    provider: str  # one of TRAFFIC_PROVIDERS
    zone: str
    name: str
    stacks: tuple[str, str]
    active: str
    region: str
    environment: str = ""  # the pair's
    ttl: int = DEFAULT_TRAFFIC_TTL
    health_check: HealthCheckSpec = field(default_factory=HealthCheckSpec)
    warnings: tuple[str, ...] = ()  # said on every plan, check and `pulumi up` (a valid, transitional pair state)

    @property
    def standby(self) -> str:
        return next(s for s in self.stacks if s != self.active)

    @property
    def switch_seconds(self) -> int:
        """How long clients may still reach a failed stack: failed checks in a row, then the TTL."""
        return self.health_check.interval_seconds * self.health_check.failure_threshold + self.ttl
