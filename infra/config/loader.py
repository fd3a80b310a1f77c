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
    CLOUDS,
    DEFAULT_COST_CURVE,
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_NETWORK_CIDR,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    POOL_LABEL_KEY,
    SPOT_LABEL_KEY,
    SYSTEM_POOL,
    TAINT_EFFECTS,
    ClusterSpec,
    CostSpec,
    Guardrails,
    NodePoolSpec,
    Taint,
)
from infra.config.access import read_access
from infra.config.errors import MISSING, ConfigError, UnknownKeyError
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
from infra.config.services import read_capacity_buffers, read_services
from infra.config.stackfiles import find_stack_file, read_stack_config
from infra.config.tls import read_tls
from infra.dr.pair import apply_role, read_dr

# The program's own keys; extensions (services, ...) register their parser in PROGRAM_KEYS.
TOP_KEYS = ("cloud", "environment", "cluster", "services", "capacityBuffer", "guardrails", "cost", "dr", "tls")

PROVIDER_KEYS = {
    "aws": {"aws:region": (re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"), "an AWS region such as eu-west-1")},
    "gcp": {
        "gcp:project": (re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"), "a GCP project id such as my-project-123"),
        "gcp:region": (re.compile(r"^[a-z]+-[a-z]+\d+$"), "a GCP region such as asia-east1"),
    },
    "azure": {"azure-native:location": (re.compile(r"^[a-z]+[a-z0-9]*$"), "an Azure location name such as westeurope")},
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
COST_KEYS = ("curve", "egressGiBPerMonth", "catalog", "internetEgressGiBPerMonth", "peakConnections", "commitment")
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
    for name, pool in pools_raw.items():
        if not isinstance(name, str) or not POOL_NAME_RE.match(name):
            raise ConfigError(f"{pools_path}.{name}", name,
                              "expected a pool name: a lowercase letter, then lowercase letters or digits, at most 12 characters")
        pools.append(read_pool(f"{pools_path}.{name}", name, pool, cloud))
    if SYSTEM_POOL not in pools_raw:
        raise ConfigError(pools_path, sorted(pools_raw), f"a pool named {SYSTEM_POOL!r} is required (cluster add-ons run there)")
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
    return CostSpec(curve=curve, egress_gib_per_month=egress, catalog=catalog, internet_egress_gib_per_month=internet,
                    peak_connections=connections, commitment_term=term, commitment_coverage=coverage)


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
        raise ConfigError(f"{NS}cloud", MISSING, f"required: one of {', '.join(CLOUDS)}")
    cloud = own["cloud"]
    if cloud not in CLOUDS:
        raise ConfigError(f"{NS}cloud", cloud, f"expected one of {', '.join(CLOUDS)}{_did_you_mean(str(cloud), CLOUDS)}")
    if "environment" not in own:
        raise ConfigError(f"{NS}environment", MISSING, "required: a lowercase DNS label such as dev, staging or prod")
    environment = as_str(f"{NS}environment", own["environment"], ENVIRONMENT_RE,
                         "a lowercase DNS label such as dev, staging or prod")
    provider = read_provider(cloud, other)
    if "cluster" not in own:
        raise ConfigError(f"{NS}cluster", MISSING, "required: the cluster and its nodePools")
    cluster_raw = structured(f"{NS}cluster", own["cluster"])
    cluster = read_cluster(cluster_raw, cloud)
    cluster.update(read_access(f"{NS}cluster", as_mapping(f"{NS}cluster", cluster_raw), cloud, provider[_REGION_KEY[cloud]]))
    guardrails = read_guardrails(structured(f"{NS}guardrails", own["guardrails"])) if "guardrails" in own else Guardrails()
    cost = read_cost(structured(f"{NS}cost", own["cost"])) if "cost" in own else CostSpec()
    services = read_services(structured(f"{NS}services", own["services"]), cluster["node_pools"],
                             environment == "prod") if "services" in own else ()
    buffers = read_capacity_buffers(structured(f"{NS}capacityBuffer", own["capacityBuffer"]),
                                    cluster["node_pools"]) if "capacityBuffer" in own else ()
    tls = read_tls(structured(f"{NS}tls", own["tls"]) if "tls" in own else None, stack=stack, project=project,
                   services=services)
    spec = ClusterSpec(
        project=project,
        stack=stack,
        cloud=cloud,
        environment=environment,
        region=provider[_REGION_KEY[cloud]],
        gcp_project=provider.get("gcp:project"),
        deployer_is_service_principal=cloud == "azure" and (AZURE_SP_CONFIG in other or AZURE_SP_ENV in (env or {})),
        guardrails=guardrails,
        services=services,
        capacity_buffers=buffers,
        cost=cost,
        tls=tls,
        **cluster,
    )
    if "dr" not in own:
        return spec
    loader = (lambda peer: load_peer_spec(peer, project=project)) if check_peer else None
    return apply_role(spec, read_dr(structured(f"{NS}dr", own["dr"]), spec, loader))
