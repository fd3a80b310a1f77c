"""Read and validate the stack configuration once, at the edge, into a `ClusterSpec`.

Input is the flat map Pulumi hands a program: full keys (`im-platform:cluster`, `aws:region`) to
raw values, structured ones as JSON text. Nothing else in the project reads raw configuration.
Every problem raises one `ConfigError` naming the key path, the value and what is expected.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from components import shapes
from components.naming import PROJECT
from components.spec import (
    DEFAULT_COST_CURVE,
    DEFAULT_COST_TIMEZONE,
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_METRICS_SERIES_PER_POD,
    DEFAULT_NETWORK_CIDR,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    KUBERNETES,
    POOL_LABEL_KEY,
    SPOT_LABEL_KEY,
    STACK_KINDS,
    SYSTEM_POOL,
    TAINT_EFFECTS,
    TLS_ISSUERS,
    CapacityBufferSpec,
    ClusterSpec,
    CostSpec,
    Guardrails,
    MonitoringSpec,
    NodePoolSpec,
    ServiceSpec,
    Taint,
    TlsSpec,
)
from infra.config.access import read_access
from infra.config.errors import MISSING, Collector, ConfigError, HiddenValueError, UnknownKeyError
from infra.config.namespaces import aws_regions, check_namespaces
from infra.config.readers import (  # noqa: F401 (re-exported: the readers' historical home)
    NS,
    RFC1918,
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
    structured,
)
from infra.config.scaling import read_monitoring, read_timezone
from infra.config.services import read_capacity_buffers, read_services
from infra.config.stackfiles import find_stack_file, read_stack_config
from infra.config.tls import read_tls
from infra.dr.pair import apply_role, read_dr

# The program's own keys; extensions (services, ...) register their parser in PROGRAM_KEYS.
TOP_KEYS = ("cloud", "environment", "cluster", "services", "capacityBuffer", "guardrails", "cost", "dr", "tls",
            "monitoring")

PROVIDER_KEYS = {
    "aws": {"aws:region": (re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"), "an AWS region such as eu-west-1")},
    "gcp": {
        "gcp:project": (re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"), "a GCP project id such as my-project-123"),
        "gcp:region": (re.compile(r"^[a-z]+-[a-z]+\d+$"), "a GCP region such as asia-east1"),
    },
    "azure": {"azure-native:location": (re.compile(r"^[a-z]+[a-z0-9]*$"), "an Azure location name such as westeurope")},
    # An existing cluster: no cloud provider is configured, so every key above is refused.
    KUBERNETES: {},
}
_REGION_KEY = {"aws": "aws:region", "gcp": "gcp:region", "azure": "azure-native:location"}

ENVIRONMENT_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
POOL_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
VERSION_RE = re.compile(r"^1\.(\d{2})$")
SUPPORTED_MINORS = range(30, 36)
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")
# Kubernetes label key: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
LABEL_PREFIX_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
TAINT_RE = re.compile(r"^(?P<key>[^=:\s]+)=(?P<value>[^=:\s]*):(?P<effect>[A-Za-z]+)$")
RESERVED_LABELS = (POOL_LABEL_KEY, SPOT_LABEL_KEY)
# The kubelet may not set labels in these namespaces, so a node pool carrying one fails to join.
RESTRICTED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")


# ---------------------------------------------------------------------------------------------
# Leaf rules.

def read_label_key(path: str, key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if not LABEL_NAME_RE.match(name) or (prefix and (len(prefix) > 253 or not LABEL_PREFIX_RE.match(prefix))):
        raise ConfigError(path, key, "expected a Kubernetes label key: [prefix/]name, name of at most 63 letters, digits, '-', '_' or '.'")
    if key in RESERVED_LABELS:
        raise ConfigError(path, key, f"{key} is set by im-platform itself; choose another key")
    if prefix and any(prefix == d or prefix.endswith("." + d) for d in RESTRICTED_LABEL_DOMAINS):
        raise ConfigError(path, key, "node labels under kubernetes.io and k8s.io are reserved for Kubernetes; use your own prefix")
    return key


def read_labels(path: str, value: Any) -> tuple[tuple[str, str], ...]:
    labels = as_mapping(path, value)
    out = []
    for key, val in labels.items():
        read_label_key(f"{path}.{key}", str(key))
        if not isinstance(val, str) or not LABEL_VALUE_RE.match(val):
            raise ConfigError(f"{path}.{key}", val, "expected a label value: at most 63 letters, digits, '-', '_' or '.', as a string")
        out.append((str(key), val))
    return tuple(sorted(out))


def read_taints(path: str, value: Any) -> tuple[Taint, ...]:
    out: list[Taint] = []
    for i, item in enumerate(as_list(path, value)):
        item_path = f"{path}[{i}]"
        match = TAINT_RE.match(item) if isinstance(item, str) else None
        if not match:
            raise ConfigError(item_path, item, 'expected "key=value:Effect", e.g. "im-platform/tier=gateway:NoSchedule"')
        key, val, effect = match["key"], match["value"], match["effect"]
        prefix, _, name = key.rpartition("/")
        if not LABEL_NAME_RE.match(name) or (prefix and not LABEL_PREFIX_RE.match(prefix)) or not LABEL_VALUE_RE.match(val):
            raise ConfigError(item_path, item, "the taint key and value must follow Kubernetes label syntax")
        if effect not in TAINT_EFFECTS:
            raise ConfigError(item_path, item, f"expected the effect to be one of {', '.join(TAINT_EFFECTS)}")
        if key == SPOT_LABEL_KEY:
            raise ConfigError(item_path, item, f"the {SPOT_LABEL_KEY} taint is added by im-platform on spot pools; remove it")
        taint = Taint(key, val, effect)
        if taint in out:
            raise ConfigError(item_path, item, "this taint is listed twice")
        out.append(taint)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Node pools and the cluster.

POOL_KEYS = ("vcpu", "memoryGiB", "minNodes", "maxNodes", "spot", "instanceType", "labels", "taints", "arch")
CLUSTER_KEYS = ("kubernetesVersion", "network", "apiAllowedCidrs", "nodePools", "admins", "viewers")
NETWORK_KEYS = ("cidr", "podCidr", "serviceCidr")
GUARDRAIL_KEYS = ("maxNodesPerPool", "maxNodesPerCluster", "maxMonthlyCost")
COST_KEYS = ("curve", "egressGiBPerMonth", "catalog", "internetEgressGiBPerMonth", "peakConnections", "commitment",
             "timezone", "metricsSeriesPerPod")
# A pod exporting more series than this is a cardinality accident, not a sizing input.
MAX_METRICS_SERIES_PER_POD = 100000
COMMITMENT_TERM_RE = re.compile(r"^(1y|3y)$")
ARCH_RE = re.compile(r"^(x86_64|arm64)$")
CATALOG_PATH_RE = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_./-]+\.ya?ml$")


def read_pool(path: str, name: str, value: Any, cloud: str) -> NodePoolSpec:
    pool = as_mapping(path, value)
    check_keys(path, pool, POOL_KEYS)
    is_system = name == SYSTEM_POOL
    vcpu = required(path, pool, "vcpu", lambda p, v: as_int(p, v, 2))
    memory = required(path, pool, "memoryGiB", lambda p, v: as_int(p, v, 1))
    min_nodes = required(path, pool, "minNodes", lambda p, v: as_int(p, v, 1 if is_system else 0))
    max_nodes = required(path, pool, "maxNodes", lambda p, v: as_int(p, v, 1))
    if min_nodes > max_nodes:
        raise ConfigError(f"{path}.minNodes", min_nodes, f"but maxNodes is {max_nodes}: minNodes must be <= maxNodes")
    spot = optional(path, pool, "spot", as_bool, False)
    if spot and is_system:
        raise ConfigError(f"{path}.spot", spot, "the system pool runs cluster add-ons and is never spot")
    arch = optional(path, pool, "arch", lambda p, v: as_str(p, v, ARCH_RE, 'an architecture: "x86_64" or "arm64"'),
                    "x86_64")
    instance_type = optional(path, pool, "instanceType", lambda p, v: v, None)
    if instance_type is not None:
        pattern, what = shapes.INSTANCE_TYPE_PATTERNS[cloud]
        types: tuple[str, ...] = (as_str(f"{path}.instanceType", instance_type, pattern, what),)
        type_arch = shapes.instance_type_arch(cloud, instance_type)
        if type_arch != arch:
            # The nodes would boot another architecture than the one the pool's tiers were admitted
            # for (multiArch), and the node image (AMI, node image) the pool asks for would not boot.
            raise ConfigError(f"{path}.instanceType", instance_type,
                              f"but the pool's arch is {arch}: {instance_type} is an {type_arch} type; set arch: "
                              f"{type_arch} on the pool (its tiers need multiArch: true on arm64) or pick an {arch} type")
    else:
        try:
            types = shapes.machine_types(cloud, vcpu, memory, spot, arch)
        except shapes.ShapeError as exc:
            where, value = (f"{path}.arch", arch) if arch == "arm64" else (f"{path}.memoryGiB", memory)
            raise ConfigError(where, value, f"with vcpu {vcpu} and memoryGiB {memory}: {exc}") from None
    return NodePoolSpec(
        name=name,
        vcpu=vcpu,
        memory_gib=memory,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        machine_types=types,
        spot=spot,
        labels=optional(path, pool, "labels", read_labels, ()),
        taints=optional(path, pool, "taints", read_taints, ()),
        arch=arch,
    )


def read_version(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, value, 'expected a quoted "<major>.<minor>" string such as "1.33" (unquoted, 1.30 reads as 1.3)')
    match = VERSION_RE.match(value)
    if not match:
        raise ConfigError(path, value, 'expected "<major>.<minor>" such as "1.33"')
    if int(match[1]) not in SUPPORTED_MINORS:
        raise ConfigError(path, value, f"expected a supported version, 1.{SUPPORTED_MINORS[0]} to 1.{SUPPORTED_MINORS[-1]}")
    return value


def read_cluster(value: Any, cloud: str) -> dict[str, Any]:
    path = f"{NS}cluster"
    cluster = as_mapping(path, value)
    check_keys(path, cluster, CLUSTER_KEYS)
    version = optional(path, cluster, "kubernetesVersion", read_version, DEFAULT_KUBERNETES_VERSION)

    net_path = f"{path}.network"
    network: Mapping[str, Any] = optional(path, cluster, "network", as_mapping, {})
    check_keys(net_path, network, NETWORK_KEYS)
    cidr = optional(net_path, network, "cidr", read_cidr, DEFAULT_NETWORK_CIDR)
    prefix = ipaddress.ip_network(cidr).prefixlen
    if not 8 <= prefix <= 20:
        raise ConfigError(f"{net_path}.cidr", cidr, "expected a prefix length from /8 to /20 (three zones of subnets must fit)")
    pod_cidr = optional(net_path, network, "podCidr", lambda p, v: _read_pod_cidr(p, v), DEFAULT_POD_CIDR)
    service_cidr = optional(net_path, network, "serviceCidr", read_cidr, DEFAULT_SERVICE_CIDR)
    ranges = {"cidr": cidr, "podCidr": pod_cidr, "serviceCidr": service_cidr}
    names = list(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if ipaddress.ip_network(ranges[a]).overlaps(ipaddress.ip_network(ranges[b])):
                raise ConfigError(f"{net_path}.{b}", ranges[b],
                                  f"but {a} is {ranges[a]}: the node, pod and service ranges must not overlap")
    svc_prefix = ipaddress.ip_network(service_cidr).prefixlen
    if not 12 <= svc_prefix <= 24:
        raise ConfigError(f"{net_path}.serviceCidr", service_cidr, "expected a prefix length from /12 to /24")
    pod_prefix = ipaddress.ip_network(pod_cidr).prefixlen
    if not 8 <= pod_prefix <= 16:
        raise ConfigError(f"{net_path}.podCidr", pod_cidr, "expected a prefix length from /8 to /16 (room for every node's pod range)")

    allowed: list[str] = []
    listed: list[Any] = optional(path, cluster, "apiAllowedCidrs", as_list, [])
    for i, item in enumerate(listed):
        allowed.append(read_cidr(f"{path}.apiAllowedCidrs[{i}]", item, private=False))
    if len(set(allowed)) != len(allowed):
        raise ConfigError(f"{path}.apiAllowedCidrs", allowed, "a CIDR is listed twice")

    pools_path = f"{path}.nodePools"
    pools_raw = required(path, cluster, "nodePools", as_mapping)
    pools = []
    # Each pool on its own: every pool's mistakes are reported together.
    found = Collector()
    for name, pool in pools_raw.items():
        with found.part():
            if not isinstance(name, str) or not POOL_NAME_RE.match(name):
                raise ConfigError(f"{pools_path}.{name}", name,
                                  "expected a pool name: a lowercase letter, then lowercase letters or digits, at most 12 characters")
            pools.append(read_pool(f"{pools_path}.{name}", name, pool, cloud))
    if SYSTEM_POOL not in pools_raw:
        found.errors.append(ConfigError(pools_path, sorted(pools_raw),
                                        f"a pool named {SYSTEM_POOL!r} is required (cluster add-ons run there)"))
    found.raise_any()
    return {
        "kubernetes_version": version,
        "network_cidr": cidr,
        "pod_cidr": pod_cidr,
        "service_cidr": service_cidr,
        "api_allowed_cidrs": tuple(allowed),
        "node_pools": tuple(pools),
    }


def _read_pod_cidr(path: str, value: Any) -> str:
    text = as_str(path, value, what="an IPv4 CIDR such as 100.64.0.0/14")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise ConfigError(path, value, "expected an IPv4 network address such as 100.64.0.0/14") from None
    if net.version != 4 or not (net.subnet_of(SHARED_SPACE) or any(net.subnet_of(r) for r in RFC1918)):  # type: ignore[arg-type]
        raise ConfigError(path, value, "expected a private (RFC 1918) or shared (100.64.0.0/10) IPv4 range")
    return str(net)


# ---------------------------------------------------------------------------------------------
# An existing cluster (im-platform:cloud kubernetes): reached through a kubeconfig, nothing of it created.

EXISTING_CLUSTER_KEYS = ("kubeconfig", "context", "kubernetesVersion", "nodePools")
EXISTING_POOL_KEYS = ("labels", "taints", "vcpu", "memoryGiB")
# Keys of a managed cluster or pool that an existing one cannot honour, each with the reason.
_MANAGED_ONLY = "the program neither creates nor scales an existing cluster's nodes"
EXISTING_CLUSTER_REFUSED = {
    "network": "the cluster's network is its own: the program creates none on an existing cluster",
    "apiAllowedCidrs": "the API endpoint is the cluster's own: limit who reaches it where the cluster is run",
    "admins": "admins are granted through a cloud's access mechanism (EKS access entries, GKE IAM, AKS role "
              "assignments); on an existing cluster, bind RBAC roles where the cluster is run",
    "viewers": "viewers are granted through a cloud's access mechanism (EKS access entries, GKE IAM, AKS role "
               "assignments); on an existing cluster, bind RBAC roles where the cluster is run",
}
EXISTING_POOL_REFUSED = {
    "minNodes": f"{_MANAGED_ONLY}: its node group's size is set where the cluster is run",
    "maxNodes": f"{_MANAGED_ONLY}: its node group's size is set where the cluster is run",
    "spot": f"{_MANAGED_ONLY}: select spot nodes by their labels and list their taints (a tier on the pool "
            "tolerates exactly those)",
    "arch": f"{_MANAGED_ONLY}: select the architecture with a label (kubernetes.io/arch: arm64)",
    "instanceType": f"{_MANAGED_ONLY}: give the nodes' shape as vcpu and memoryGiB",
}
# Kubeconfig content written into the stack file: a committed file, copied into the state, is no
# place for a credential (and the program reads no server, CA or user but the kubeconfig's).
KUBECONFIG_CONTENT_RE = re.compile(r"(token|password|passwd|secret|key|cert|certificate|username|user|server|insecure|"
                                   r"auth|credential|exec|kubeconfig.?data|ca.?data)", re.IGNORECASE)
_NO_CREDENTIALS = ("kubeconfig content (its value not shown), and a stack file, committed and copied into the state, "
                   f"never holds a credential: keep it in the kubeconfig file that {NS}cluster.kubeconfig names (best "
                   "with an exec plugin that fetches short-lived tokens)")
CONTEXT_RE = re.compile(r"^[^\s]{1,253}$")


def read_kubeconfig_path(path: str, value: Any) -> str:
    """A path to one kubeconfig file, never its content: absolute or under ~/ (which the provider
    expands); a relative path would be resolved against the provider process's working directory."""
    what = "a path to a kubeconfig file, absolute or under ~/, such as ~/.kube/config"
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        raise ConfigError(path, "[secret]", f"expected {what}, in plain text: a path is no secret (and an encrypted "
                                            "one could hold the kubeconfig itself, which never goes in a stack file)")
    if isinstance(value, Mapping) or (isinstance(value, str) and ("\n" in value or value.lstrip().startswith(("{", "apiVersion")))):
        raise HiddenValueError(path, f"the kubeconfig itself (its value not shown), where {what} is expected: "
                                          "its credentials never go in a stack file (committed, and copied into the state)")
    text = as_str(path, value, what=what)
    if text.startswith("~") and not (text == "~" or text.startswith("~/")):
        raise ConfigError(path, text, f"expected {what} (the provider expands ~/ only, not ~user/)")
    if not (text.startswith("~/") or text.startswith("/")):
        raise ConfigError(path, text, f"expected {what}: a relative path would be read from wherever the provider "
                                      "process runs")
    if ":" in text:
        raise ConfigError(path, text, f"expected {what}: one file (the provider reads one path, not a $KUBECONFIG list)")
    return text


def read_selector(path: str, value: Any) -> tuple[tuple[str, str], ...]:
    """The labels an existing node group's nodes carry (any valid label, kubernetes.io's included)."""
    labels = as_mapping(path, value)
    if not labels:
        raise ConfigError(path, {}, "expected the labels that select this pool's nodes, e.g. {node-pool: gateway}")
    out = []
    for key, val in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if not LABEL_NAME_RE.match(name) or (prefix and (len(prefix) > 253 or not LABEL_PREFIX_RE.match(prefix))):
            raise ConfigError(f"{path}.{key}", key, "expected a Kubernetes label key: [prefix/]name, name of at most 63 "
                                                    "letters, digits, '-', '_' or '.'")
        if not isinstance(val, str) or not LABEL_VALUE_RE.match(val):
            raise ConfigError(f"{path}.{key}", val, "expected a label value: at most 63 letters, digits, '-', '_' or '.', "
                                                    "as a string (quote true, false and numbers)")
        out.append((str(key), val))
    return tuple(sorted(out))


def read_existing_pool(path: str, name: str, value: Any) -> NodePoolSpec:
    pool = as_mapping(path, value)
    for key, why in EXISTING_POOL_REFUSED.items():
        if key in pool:
            raise ConfigError(f"{path}.{key}", pool[key], f"but {NS}cloud is {KUBERNETES}: {why}")
    check_keys(path, pool, EXISTING_POOL_KEYS)
    selector = required(path, pool, "labels", read_selector)
    vcpu = optional(path, pool, "vcpu", lambda p, v: as_int(p, v, 1), 0)
    memory = optional(path, pool, "memoryGiB", lambda p, v: as_int(p, v, 1), 0)
    if bool(vcpu) != bool(memory):
        given, missing = ("vcpu", "memoryGiB") if vcpu else ("memoryGiB", "vcpu")
        raise ConfigError(f"{path}.{missing}", MISSING, f"required with {given}: the nodes' shape, both or neither "
                                                        "(tiers and buffers are checked to fit on one node)")
    return NodePoolSpec(name=name, vcpu=vcpu, memory_gib=memory, min_nodes=0, max_nodes=0, machine_types=(),
                        labels=selector, taints=optional(path, pool, "taints", read_taints, ()), managed=False)


def read_existing_cluster(value: Any) -> dict[str, Any]:
    """`im-platform:cluster` of a kubernetes stack: how to reach it, its minor, the node groups tiers may name."""
    path = f"{NS}cluster"
    cluster = as_mapping(path, value)
    for key in cluster:
        if key in EXISTING_CLUSTER_REFUSED:
            raise ConfigError(f"{path}.{key}", cluster[key], f"but {NS}cloud is {KUBERNETES}: {EXISTING_CLUSTER_REFUSED[key]}")
        if key not in EXISTING_CLUSTER_KEYS and KUBECONFIG_CONTENT_RE.search(str(key)):
            raise HiddenValueError(f"{path}.{key}", _NO_CREDENTIALS)
    check_keys(path, cluster, EXISTING_CLUSTER_KEYS)
    kubeconfig = optional(path, cluster, "kubeconfig", read_kubeconfig_path, None)
    context = optional(path, cluster, "context", lambda p, v: as_str(
        p, v, CONTEXT_RE, "the name of a context in the kubeconfig, such as kind-im-dev"), None)
    version = optional(path, cluster, "kubernetesVersion", read_version, DEFAULT_KUBERNETES_VERSION)
    pools_path = f"{path}.nodePools"
    pools = []
    listed: Mapping[str, Any] = optional(path, cluster, "nodePools", as_mapping, {})
    for name, pool in listed.items():
        if not isinstance(name, str) or not POOL_NAME_RE.match(name):
            raise ConfigError(f"{pools_path}.{name}", name,
                              "expected a pool name: a lowercase letter, then lowercase letters or digits, at most 12 characters")
        pools.append(read_existing_pool(f"{pools_path}.{name}", name, pool))
    return {"kubernetes_version": version, "node_pools": tuple(pools), "kubeconfig": kubeconfig, "kube_context": context}


EXISTING_STACK_REFUSED = {
    "guardrails": "the guardrails hold the node pools the program scales and what they cost, and an existing "
                  "cluster's nodes are neither its to scale nor priced; remove it",
    "cost": "`cost` prices cloud nodes and fees, and an existing cluster's stack has neither (its nodes are not "
            "priced); remove it",
    "dr": "a DR pair's object store, replication and trust are cloud resources, and its traffic stack fails over "
          "between cloud load balancers: an existing cluster's stack is never half of a pair; remove it",
}


def refuse_on_existing_cluster(own: Mapping[str, Any], other: Mapping[str, Any]) -> None:
    """What a kubernetes stack cannot have: the cloud-only sections, and the default Kubernetes
    provider's own keys (nothing reads them: the program's provider takes im-platform:cluster's)."""
    for key, why in EXISTING_STACK_REFUSED.items():
        if key in own:
            raise ConfigError(f"{NS}{key}", structured_or_raw(own[key]), f"but {NS}cloud is {KUBERNETES}: {why}")
    for key in other:
        if str(key).startswith("kubernetes:"):
            name = str(key).partition(":")[2]
            instead = f"{NS}cluster.{name}" if name in ("kubeconfig", "context") else None
            raise HiddenValueError(str(key), "a key of the default Kubernetes provider (its value not shown), which the "
                                             "program never uses: its own provider reads "
                                             f"{NS}cluster.kubeconfig and {NS}cluster.context", instead)


def refuse_acme(raw: Any, tls: TlsSpec | None, stack: str) -> None:
    """On an existing cluster only the certificate the user provides (issuer own): the ACME issuers
    solve their challenges in Route 53 through AWS IAM resources, which a kubernetes stack never declares."""
    why = ("ACME certificates are issued through DNS-01 challenges in Route 53, with AWS IAM resources, and an "
           "existing cluster's stack declares no cloud resources: set issuer: own and create the Secret "
           "(secretName) in each public tier's namespace yourself, e.g. with the cluster's own cert-manager")
    if tls is not None and tls.traffic_stacks:
        raise ConfigError(f"{NS}traffic.stacks", stack, f"but traffic stack {tls.traffic_stacks[0]} routes to {stack}, "
                                                        f"a {KUBERNETES} stack: a traffic stack switches between the two "
                                                        "cloud stacks of a DR pair, and an existing cluster is never one")
    block = raw if raw is None else structured(f"{NS}tls", raw)
    if isinstance(block, Mapping):
        issuer = block.get("issuer")
        if issuer is None:
            raise ConfigError(f"{NS}tls.issuer", MISSING, f"required on a {KUBERNETES} stack, and only own: {why}")
        if TLS_ISSUERS.get(str(issuer)):
            raise ConfigError(f"{NS}tls.issuer", issuer, f"but {NS}cloud is {KUBERNETES}: {why}")


def read_guardrails(value: Any) -> Guardrails:
    path = f"{NS}guardrails"
    obj = as_mapping(path, value)
    check_keys(path, obj, GUARDRAIL_KEYS)
    defaults = Guardrails()
    per_pool = optional(path, obj, "maxNodesPerPool", lambda p, v: as_int(p, v, 1), defaults.max_nodes_per_pool)
    per_cluster = optional(path, obj, "maxNodesPerCluster", lambda p, v: as_int(p, v, 1), defaults.max_nodes_per_cluster)
    cost = optional(path, obj, "maxMonthlyCost", lambda p, v: as_decimal(p, v, "a USD amount such as \"25000\""), None)
    return Guardrails(max_nodes_per_pool=per_pool, max_nodes_per_cluster=per_cluster, max_monthly_cost=cost)


def as_decimal(path: str, value: Any, what: str, minimum: Decimal = Decimal(0)) -> Decimal:
    """A non-negative amount, written as a string or a number (never read through a float)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(path, value, f"expected {what}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(path, value, f"expected {what}") from None
    if not amount.is_finite() or amount < minimum:
        raise ConfigError(path, value, f"expected {what} (at least {minimum})")
    return amount


def read_series_per_pod(path: str, value: Any) -> int:
    count = as_int(path, value, minimum=1)
    if count > MAX_METRICS_SERIES_PER_POD:
        raise ConfigError(path, value, f"expected the series one pod exports, a whole number from 1 to "
                                       f"{MAX_METRICS_SERIES_PER_POD}")
    return count


def read_cost(value: Any) -> CostSpec:
    path = f"{NS}cost"
    obj = as_mapping(path, value)
    check_keys(path, obj, COST_KEYS)
    curve = DEFAULT_COST_CURVE
    if "curve" in obj:
        raw = as_list(f"{path}.curve", obj["curve"])
        expected = "24 hourly loads from 0 to 1 as a fraction of the peak, the largest exactly 1"
        if len(raw) != 24:
            raise ConfigError(f"{path}.curve", raw, f"expected {expected} (got {len(raw)} values)")
        curve = tuple(as_decimal(f"{path}.curve[{i}]", v, "a load from 0 to 1") for i, v in enumerate(raw))
        for i, load in enumerate(curve):
            if load > 1:
                raise ConfigError(f"{path}.curve[{i}]", raw[i], "expected a load from 0 to 1 (a fraction of the peak)")
        if max(curve) != 1:
            raise ConfigError(f"{path}.curve", raw, f"expected {expected}: the peak hour is 1")
    egress = optional(path, obj, "egressGiBPerMonth",
                      lambda p, v: as_decimal(p, v, "GiB a month through NAT, a number >= 0"), Decimal(0))
    catalog = optional(path, obj, "catalog", lambda p, v: as_str(p, v, CATALOG_PATH_RE,
                       "a YAML file path relative to the repository root, such as prices/negotiated.yaml"), None)
    internet = optional(path, obj, "internetEgressGiBPerMonth",
                        lambda p, v: as_decimal(p, v, "GiB a month sent to the internet, a number >= 0"), None)
    connections = optional(path, obj, "peakConnections",
                           lambda p, v: as_int(p, v, minimum=0), 0)
    term, coverage = None, Decimal(0)
    if "commitment" in obj:
        cpath = f"{path}.commitment"
        commit = as_mapping(cpath, obj["commitment"])
        check_keys(cpath, commit, ("term", "coverage"))
        term = required(cpath, commit, "term", lambda p, v: as_str(p, v, COMMITMENT_TERM_RE, 'a term of "1y" or "3y"'))
        coverage = required(cpath, commit, "coverage",
                            lambda p, v: as_decimal(p, v, "a fraction of the always-on floor from 0 to 1"))
        if coverage > 1:
            raise ConfigError(f"{cpath}.coverage", commit["coverage"], "expected a fraction of the always-on floor from 0 to 1")
    # The zone the curve's hours are in (the simulated day's clock); checked as schedule windows' zones are.
    timezone = optional(path, obj, "timezone", read_timezone, DEFAULT_COST_TIMEZONE)
    series = optional(path, obj, "metricsSeriesPerPod",
                      read_series_per_pod, DEFAULT_METRICS_SERIES_PER_POD)
    return CostSpec(curve=curve, egress_gib_per_month=egress, catalog=catalog, internet_egress_gib_per_month=internet,
                    peak_connections=connections, commitment_term=term, commitment_coverage=coverage,
                    timezone=timezone, metrics_series_per_pod=series)


# ---------------------------------------------------------------------------------------------
# The whole stack.


def split_keys(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the program's own keys from other namespaces'; unknown own keys are errors."""
    check_namespaces(config, PROJECT)
    own: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith(NS):
            short = key[len(NS):]
            if short not in TOP_KEYS:
                close = difflib.get_close_matches(short, list(TOP_KEYS), n=1, cutoff=0.6)
                raise UnknownKeyError(key, NS + close[0] if close else None,
                                      expected=[NS + k for k in TOP_KEYS])
            own[short] = value
        else:
            other[key] = value
    return own, other


def structured_or_raw(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def read_provider(cloud: str, other: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, (pattern, what) in PROVIDER_KEYS[cloud].items():
        if key not in other:
            raise ConfigError(key, MISSING, f"required when {NS}cloud is {cloud}: {what}")
        found[key] = as_str(key, other[key], pattern, what)
    if cloud == "aws":
        check_aws_region("aws:region", found["aws:region"])
    for other_cloud, keys in PROVIDER_KEYS.items():
        if other_cloud == cloud:
            continue
        for key in keys:
            if key in other:
                if cloud == KUBERNETES:
                    raise ConfigError(key, other[key], f"but {NS}cloud is {KUBERNETES}: an existing cluster's stack declares "
                                                       "no cloud resources, so no cloud provider reads it; remove it")
                raise ConfigError(key, other[key], f"but {NS}cloud is {cloud}: set only {', '.join(PROVIDER_KEYS[cloud])}")
    return found


def check_aws_region(key: str, region: str) -> None:
    """A region the installed SDK's `pulumi_aws.Region` lists (the provider would fail on any other)."""
    regions = aws_regions()
    if regions is not None and region not in regions:
        close = difflib.get_close_matches(region, list(regions), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(key, region, f"not a region the installed pulumi_aws knows (pulumi_aws.Region){hint}")


# How the azure-native provider is told to sign in as a service principal instead of a user.
AZURE_SP_CONFIG = "azure-native:clientId"
AZURE_SP_ENV = "ARM_CLIENT_ID"


def load_peer_spec(peer: str, *, project: str) -> ClusterSpec | None:
    """A DR peer's spec from its own stack file (validated, its own peer left unchecked), or None."""
    path = find_stack_file(peer)
    if path is None:
        return None
    values, _ = read_stack_config(path, project)
    try:
        return load_spec(values, project=project, stack=peer, check_peer=False)
    except ConfigError as exc:
        raise ConfigError(f"{NS}dr.peer", peer, f"but its stack file {path.name} is invalid: {exc.args[0]}") from None


def load_spec(config: Mapping[str, Any], *, project: str, stack: str,
              env: Mapping[str, str] | None = None, check_peer: bool = True) -> ClusterSpec:
    """The whole configuration of one stack, validated, as a frozen spec.

    `env` is the process environment where the provider reads its credentials (Azure only).
    `check_peer` False reads a DR peer's file without checking the peer's own peer (one hop only).
    """
    own, other = split_keys(config)
    if "cloud" not in own:
        raise ConfigError(f"{NS}cloud", MISSING, f"required: one of {', '.join(STACK_KINDS)}")
    cloud = own["cloud"]
    if cloud not in STACK_KINDS:
        raise ConfigError(f"{NS}cloud", cloud, f"expected one of {', '.join(STACK_KINDS)}{_did_you_mean(str(cloud), STACK_KINDS)}")
    if "environment" not in own:
        raise ConfigError(f"{NS}environment", MISSING, "required: a lowercase DNS label such as dev, staging or prod")
    environment = as_str(f"{NS}environment", own["environment"], ENVIRONMENT_RE,
                         "a lowercase DNS label such as dev, staging or prod")
    provider = read_provider(cloud, other)
    if "cluster" not in own:
        raise ConfigError(f"{NS}cluster", MISSING, "required: the cluster and its nodePools")
    # The blocks below are read each on its own, so every mistake found is reported at once (one
    # line each); a block that needs another (services need the pools) is read only if that one
    # was read.
    found = Collector()
    cluster: dict[str, Any] | None = None
    with found.part():
        cluster_raw = structured(f"{NS}cluster", own["cluster"])
        if cloud == KUBERNETES:
            cluster = read_existing_cluster(cluster_raw)
            refuse_on_existing_cluster(own, other)
        else:
            cluster = read_cluster(cluster_raw, cloud)
            cluster.update(read_access(f"{NS}cluster", as_mapping(f"{NS}cluster", cluster_raw), cloud, provider[_REGION_KEY[cloud]]))
    guardrails, cost = Guardrails(), CostSpec()
    with found.part():
        if "guardrails" in own:
            guardrails = read_guardrails(structured(f"{NS}guardrails", own["guardrails"]))
    with found.part():
        if "cost" in own:
            cost = read_cost(structured(f"{NS}cost", own["cost"]))
    services: tuple[ServiceSpec, ...] = ()
    monitoring: MonitoringSpec | None = None
    buffers: tuple[CapacityBufferSpec, ...] = ()
    services_read = "services" not in own
    if cluster is not None:
        with found.part():
            if "services" in own:
                services = read_services(structured(f"{NS}services", own["services"]), cluster["node_pools"],
                                         environment == "prod")
                services_read = True
        if services_read:
            with found.part():
                monitoring = read_monitoring(structured(f"{NS}monitoring", own["monitoring"]) if "monitoring" in own else None,
                                             cloud=cloud, services=services)
        with found.part():
            if "capacityBuffer" in own:
                buffers = read_capacity_buffers(structured(f"{NS}capacityBuffer", own["capacityBuffer"]), cluster["node_pools"])
    tls = None
    if services_read:
        with found.part():
            tls = read_tls(structured(f"{NS}tls", own["tls"]) if "tls" in own else None, stack=stack, project=project,
                           services=services)
            if cloud == KUBERNETES:
                refuse_acme(own.get("tls"), tls, stack)
    found.raise_any()
    assert cluster is not None and monitoring is not None
    spec = ClusterSpec(
        project=project,
        stack=stack,
        cloud=cloud,
        environment=environment,
        region=provider[_REGION_KEY[cloud]] if cloud in _REGION_KEY else "",
        gcp_project=provider.get("gcp:project"),
        deployer_is_service_principal=cloud == "azure" and (AZURE_SP_CONFIG in other or AZURE_SP_ENV in (env or {})),
        guardrails=guardrails,
        services=services,
        capacity_buffers=buffers,
        cost=cost,
        tls=tls,
        monitoring=monitoring,
        **cluster,
    )
    if "dr" not in own:
        return spec
    loader = (lambda peer: load_peer_spec(peer, project=project)) if check_peer else None
    return apply_role(spec, read_dr(structured(f"{NS}dr", own["dr"]), spec, loader))
