"""Read and validate `im-platform:services` and `im-platform:capacityBuffer` into the spec.

Same rules as the rest of the configuration (`infra.config.loader`): unknown keys are errors with the
closest known key, and every problem is one `ConfigError` naming the full key path, the value and
what is expected. Called by `infra.config.loader.load_spec` once the node pools are known, because a
service names the pool it runs on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from components.spec import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_HEALTH_PATH,
    DEFAULT_PUBLIC_PORT,
    DEFAULT_READY_SECONDS,
    DEFAULT_TARGET_CPU_PERCENT,
    TLS_MODES,
    CapacityBufferSpec,
    EgressRule,
    NodePoolSpec,
    ServiceSpec,
    tls_proxy_ports,
)
from infra.config.errors import Collector, ConfigError
from infra.config.readers import (
    NS,
    _did_you_mean,
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_str,
    check_keys,
    optional,
    read_cidr,
    required,
)
from infra.config.scaling import read_ready_seconds, read_scaling

SERVICES_KEY = f"{NS}services"
BUFFER_KEY = f"{NS}capacityBuffer"

SERVICE_KEYS = ("image", "port", "pool", "cpu", "memory", "replicas", "targetCpuPercent", "public", "drainSeconds",
                "cpuLimit", "publicPort", "healthPath", "livenessPath", "allowSpot", "namespace", "allowFrom", "egress", "env", "tls",
                "multiArch", "scaling", "readySeconds")
REPLICA_KEYS = ("min", "max")
EGRESS_KEYS = ("cidr", "port")
BUFFER_KEYS = ("pods", "cpu", "memory")

# Service, Deployment and namespace names: a DNS-1035 label (a Service name may not start with a digit).
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The capacity buffer's own namespace (components/k8s/addons.py).
BUFFER_NAMESPACE = "im-capacity-buffer"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")

# An image reference as registries parse it: [domain[:port]/]path[:tag][@sha256:digest].
_IMAGE_NAME_RE = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
PINNED_HINT = 'a version tag (never "latest") or an @sha256: digest, e.g. ghcr.io/acme/im-gateway:2.4.1'

_CPU_RE = re.compile(r"^(?P<cores>\d+(\.\d{1,3})?)$|^(?P<milli>\d+)m$")
_MEMORY_RE = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
# Below this a value is almost surely a unit slip ("512" is 512 bytes, not MiB).
MIN_MEMORY_BYTES = 16 * 2**20


# ---------------------------------------------------------------------------------------------
# Leaf rules.


def read_name(path: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ConfigError(path, value, f"expected {what}: a lowercase DNS label (a letter, then letters, digits or '-', "
                                       "at most 63 characters)")
    return value


def read_image(path: str, value: Any) -> str:
    text = as_str(path, value, what=f"an image reference pinned by {PINNED_HINT}")
    name, _, digest = text.partition("@")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    if not _IMAGE_NAME_RE.match(name) or (tag is not None and not _TAG_RE.match(tag)) or (digest and not _DIGEST_RE.match(digest)):
        raise ConfigError(path, value, f"expected an image reference pinned by {PINNED_HINT}")
    if tag is not None and tag.lower() == "latest":
        raise ConfigError(path, value, f'"latest" moves with every push, so a rollback or a new node can run other code: '
                                       f"expected {PINNED_HINT}")
    if tag is None and not digest:
        raise ConfigError(path, value, f"the image is not pinned (no tag means \"latest\"): expected {PINNED_HINT}")
    return text


def cpu_millicores(path: str, value: Any) -> int:
    """A Kubernetes CPU quantity ("1", "0.5", "500m", or a plain number) in millicores, > 0."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(path, value, 'expected a CPU quantity such as "1", "0.5" or "500m"')
    text = str(value) if isinstance(value, str) else format(Decimal(str(value)), "f")
    match = _CPU_RE.match(text)
    if not match:
        raise ConfigError(path, value, 'expected a CPU quantity such as "1", "0.5" or "500m" (at most millicore precision)')
    milli = int(match["milli"]) if match["milli"] is not None else int(Decimal(match["cores"]) * 1000)
    if milli < 1:
        raise ConfigError(path, value, "expected a CPU quantity above zero")
    return milli


def cpu_quantity(millicores: int) -> str:
    """The canonical form Kubernetes writes back: whole cores as "2", the rest as "1500m"."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_bytes(path: str, value: Any) -> int:
    """A Kubernetes memory quantity ("2Gi", "512Mi", "1G", or bytes) in bytes, at least 16Mi."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(path, value, 'expected a memory quantity such as "512Mi" or "2Gi"')
    match = _MEMORY_RE.match(str(value))
    if not match:
        raise ConfigError(path, value, 'expected a memory quantity such as "512Mi" or "2Gi" (units Ki, Mi, Gi, Ti, k, M, G, T)')
    try:
        amount = int(Decimal(match["number"]) * _MEMORY_UNITS[match["unit"]])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise ConfigError(path, value, 'expected a memory quantity such as "2Gi"') from None
    if amount < MIN_MEMORY_BYTES:
        raise ConfigError(path, value, 'expected at least 16Mi (a bare number counts bytes: write "512Mi", not 512)')
    return amount


def read_port(path: str, value: Any) -> int:
    port = as_int(path, value)
    if not 1 <= port <= 65535:
        raise ConfigError(path, value, "expected a port number from 1 to 65535")
    return port


def read_range(path: str, value: Any, low: int, high: int, unit: str = "") -> int:
    number = as_int(path, value)
    if not low <= number <= high:
        raise ConfigError(path, value, f"expected a whole number from {low} to {high}{unit}")
    return number


def check_fits(path: str, value: Any, pool: NodePoolSpec, millicores: int | None = None, mem: int | None = None) -> None:
    """A pod bigger than its pool's nodes never schedules, and no autoscaler can help it. (An existing
    cluster's pool whose shape the stack file does not give is not checked.)"""
    if not pool.vcpu:
        return
    if millicores is not None and millicores >= pool.vcpu * 1000:
        raise ConfigError(path, value, f"but pool {pool.name} has {pool.vcpu} vCPUs per node and the node keeps some for "
                                       f"itself: a pod must ask for less than {pool.vcpu} CPUs")
    if mem is not None and mem >= pool.memory_gib * 2**30:
        raise ConfigError(path, value, f"but pool {pool.name} has {pool.memory_gib} GiB per node and the node keeps some "
                                       f"for itself: a pod must ask for less than {pool.memory_gib}Gi")


def read_pool_ref(path: str, value: Any, pools: Mapping[str, NodePoolSpec]) -> NodePoolSpec:
    if not isinstance(value, str) or value not in pools:
        raise ConfigError(path, value, f"expected the name of a pool in {NS}cluster.nodePools "
                                       f"{_pool_names(pools)}{_did_you_mean(str(value), tuple(pools))}")
    return pools[value]


def _pool_names(pools: Mapping[str, NodePoolSpec]) -> str:
    # An existing cluster's stack may name no pool at all.
    return f"(one of: {', '.join(pools)})" if pools else "(it names none: add the pool, selected by its nodes' labels)"


def read_env(path: str, value: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for key, val in as_mapping(path, value).items():
        if not isinstance(key, str) or not ENV_NAME_RE.match(key):
            raise ConfigError(f"{path}.{key}", key, "expected an environment variable name: a letter or '_', then letters, "
                                                    "digits or '_'")
        if not isinstance(val, str):
            raise ConfigError(f"{path}.{key}", val, 'expected a string (quote numbers and booleans, e.g. "8080")')
        out.append((key, val))
    return tuple(sorted(out))


def read_egress(path: str, value: Any) -> tuple[EgressRule, ...]:
    rules = []
    for i, item in enumerate(as_list(path, value)):
        item_path = f"{path}[{i}]"
        rule = as_mapping(item_path, item)
        check_keys(item_path, rule, EGRESS_KEYS)
        cidr = required(item_path, rule, "cidr", lambda p, v: read_cidr(p, v, private=False))
        port = required(item_path, rule, "port", read_port)
        rules.append(EgressRule(cidr, port))
    return tuple(rules)


# ---------------------------------------------------------------------------------------------
# A service, all services, the capacity buffer.


def read_service(path: str, name: str, value: Any, pools: Mapping[str, NodePoolSpec], is_prod: bool) -> ServiceSpec:
    svc = as_mapping(path, value)
    check_keys(path, svc, SERVICE_KEYS)
    image = required(path, svc, "image", read_image)
    port = required(path, svc, "port", read_port)
    pool = optional(path, svc, "pool", lambda p, v: read_pool_ref(p, v, pools), None)

    cpu = required(path, svc, "cpu", cpu_millicores)
    memory = required(path, svc, "memory", memory_bytes)
    cpu_limit = optional(path, svc, "cpuLimit", cpu_millicores, 2 * cpu)
    if cpu_limit < cpu:
        raise ConfigError(f"{path}.cpuLimit", svc["cpuLimit"], f"but cpu is {cpu_quantity(cpu)}: the limit must be >= the request")
    if pool is not None:
        check_fits(f"{path}.cpu", svc["cpu"], pool, millicores=cpu)
        check_fits(f"{path}.memory", svc["memory"], pool, mem=memory)

    replicas_path = f"{path}.replicas"
    replicas = required(path, svc, "replicas", as_mapping)
    check_keys(replicas_path, replicas, REPLICA_KEYS)
    floor = 2 if is_prod else 1
    min_replicas = required(replicas_path, replicas, "min", as_int)
    if min_replicas < floor:
        raise ConfigError(f"{replicas_path}.min", min_replicas,
                          "expected >= 2 when environment is prod (one pod is a single point of failure, and no node "
                          "could be drained without an outage)" if is_prod else "expected a whole number >= 1")
    max_replicas = required(replicas_path, replicas, "max", as_int)
    if max_replicas < min_replicas:
        raise ConfigError(f"{replicas_path}.min", min_replicas, f"but max is {max_replicas}: min must be <= max")

    public = optional(path, svc, "public", as_bool, False)
    if "publicPort" in svc and not public:
        raise ConfigError(f"{path}.publicPort", svc["publicPort"], "is only used with public: true; remove it or make the service public")
    allow_spot = optional(path, svc, "allowSpot", as_bool, False)
    if pool is not None and pool.spot and not allow_spot:
        raise ConfigError(f"{path}.pool", pool.name,
                          f"but pool {pool.name} is spot (its nodes can be reclaimed at any moment): set allowSpot: true "
                          "on the service if the tier tolerates interruption, or pick an on-demand pool")
    tls = optional(path, svc, "tls", lambda p, v: v, "proxy")
    if "tls" in svc and not public:
        raise ConfigError(f"{path}.tls", svc["tls"], "is only used with public: true; remove it or make the service public")
    if tls not in TLS_MODES:
        raise ConfigError(f"{path}.tls", tls, "expected proxy (the platform's TLS sidecar ends TLS before the tier's "
                                              "plain port) or self (the tier ends TLS itself with the mounted certificate)")
    proxy = tls_proxy_ports(port)
    sidecar_ports = (proxy.tls, proxy.health) if public and tls == "proxy" else ()
    multi_arch = optional(path, svc, "multiArch", as_bool, False)
    if pool is not None and pool.arch == "arm64" and not multi_arch:
        raise ConfigError(f"{path}.multiArch", svc.get("multiArch", False),
                          f"but pool {pool.name} is arm64: set multiArch: true once {image} is a multi-arch image "
                          "(amd64 and arm64), or pick an x86_64 pool")
    health_path = optional(path, svc, "healthPath",
                           lambda p, v: as_str(p, v, HEALTH_PATH_RE, "an HTTP path starting with '/', such as /healthz"),
                           DEFAULT_HEALTH_PATH)
    liveness_path = optional(path, svc, "livenessPath",
                             lambda p, v: as_str(p, v, HEALTH_PATH_RE, "an HTTP path starting with '/', such as /livez"), None)
    if liveness_path is not None and liveness_path == health_path:
        # kube-score's pod-probes-identical: a liveness probe that asks what readiness asks restarts
        # every pod at once when a dependency stalls (https://github.com/zegl/kube-score, README_PROBES.md).
        raise ConfigError(f"{path}.livenessPath", liveness_path,
                          "but healthPath is the same: liveness must ask only whether the process is alive (a path "
                          "that does not check dependencies), or leave livenessPath out for a TCP check on port")
    namespace = optional(path, svc, "namespace", lambda p, v: read_name(p, v, "a namespace name"), name)
    if namespace in RESERVED_NAMESPACES or namespace.startswith("kube-") or namespace == BUFFER_NAMESPACE:
        raise ConfigError(f"{path}.namespace", namespace,
                          "reserved for Kubernetes or the platform; set namespace to one of your own (for example \"im\")")
    scaling = optional(path, svc, "scaling", lambda p, v: read_scaling(
        p, v, port=port, min_replicas=min_replicas, max_replicas=max_replicas, sidecar_ports=sidecar_ports), None)
    return ServiceSpec(
        name=name,
        image=image,
        port=port,
        cpu=cpu_quantity(cpu),
        memory=str(svc["memory"]),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cpu_limit=cpu_quantity(cpu_limit),
        namespace=namespace,
        pool=pool.name if pool else None,
        target_cpu_percent=optional(path, svc, "targetCpuPercent", lambda p, v: read_range(p, v, 1, 100, " (percent of the CPU request)"),
                                    DEFAULT_TARGET_CPU_PERCENT),
        public=public,
        public_port=optional(path, svc, "publicPort", read_port, DEFAULT_PUBLIC_PORT),
        drain_seconds=optional(path, svc, "drainSeconds", lambda p, v: read_range(p, v, 0, 3600, " seconds"), DEFAULT_DRAIN_SECONDS),
        health_path=health_path,
        liveness_path=liveness_path,
        allow_spot=allow_spot,
        multi_arch=multi_arch,
        allow_from=tuple(optional(path, svc, "allowFrom", as_list, [])),  # checked against all names below
        egress=optional(path, svc, "egress", read_egress, ()),
        env=optional(path, svc, "env", read_env, ()),
        tls=tls,
        scaling=scaling,
        ready_seconds=optional(path, svc, "readySeconds", read_ready_seconds, DEFAULT_READY_SECONDS),
    )


def read_services(value: Any, pools: tuple[NodePoolSpec, ...], is_prod: bool) -> tuple[ServiceSpec, ...]:
    services_map = as_mapping(SERVICES_KEY, value)
    by_pool = {p.name: p for p in pools}
    services = []
    # Each service on its own: every service's mistakes are reported together.
    found = Collector()
    for name, svc in services_map.items():
        with found.part():
            read_name(f"{SERVICES_KEY}.{name}", name, "a service name")
            services.append(read_service(f"{SERVICES_KEY}.{name}", name, svc, by_pool, is_prod))
    found.raise_any()
    names = [s.name for s in services]
    for svc in services:
        for i, caller in enumerate(svc.allow_from):
            if caller not in names:
                raise ConfigError(f"{SERVICES_KEY}.{svc.name}.allowFrom[{i}]", caller,
                                  f"expected the name of a service in {SERVICES_KEY} (one of: {', '.join(names)})")
        if len(set(svc.allow_from)) != len(svc.allow_from):
            raise ConfigError(f"{SERVICES_KEY}.{svc.name}.allowFrom", list(svc.allow_from), "a service is listed twice")
    return tuple(services)


def read_capacity_buffers(value: Any, pools: tuple[NodePoolSpec, ...]) -> tuple[CapacityBufferSpec, ...]:
    buffers_map = as_mapping(BUFFER_KEY, value)
    by_pool = {p.name: p for p in pools}
    out = []
    for pool_name, item in buffers_map.items():
        path = f"{BUFFER_KEY}.{pool_name}"
        if pool_name not in by_pool:
            raise ConfigError(path, pool_name, f"expected the name of a pool in {NS}cluster.nodePools "
                                               f"{_pool_names(by_pool)}{_did_you_mean(str(pool_name), tuple(by_pool))}")
        pool = by_pool[pool_name]
        buf = as_mapping(path, item)
        check_keys(path, buf, BUFFER_KEYS)
        pods = required(path, buf, "pods", lambda p, v: read_range(p, v, 1, 100, " placeholder pods"))
        cpu = required(path, buf, "cpu", cpu_millicores)
        memory = required(path, buf, "memory", memory_bytes)
        check_fits(f"{path}.cpu", buf["cpu"], pool, millicores=cpu)
        check_fits(f"{path}.memory", buf["memory"], pool, mem=memory)
        out.append(CapacityBufferSpec(pool=pool_name, pods=pods, cpu=cpu_quantity(cpu), memory=str(buf["memory"])))
    return tuple(out)
