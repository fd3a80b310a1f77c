"""The policy guardrails: one implementation of every rule, shared by the Pulumi policy pack
(`policy/`, run by `pulumi preview --policy-pack policy`) and the offline `check` command.

Each rule is a pure function over what both of them see of a resource: its type token, its
properties (camelCase, as the engine holds them) and its options (protect, ignoreChanges). Nothing
here imports Pulumi or a cloud SDK, so the rules run in the main virtual environment, in the policy
pack's own one, and in plain unit tests.

Values a preview cannot know yet arrive as the string UNKNOWN (the plan writes "[unknown]"; the
policy adapter maps pulumi-policy's sentinels to the same string). A rule never reports a violation
it cannot prove from known values.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from components.naming import MANAGED_BY, dns_label
from components.spec import POOL_LABEL_KEY, SYSTEM_POOL, ClusterSpec, Guardrails
from infra.cost import catalog as cost_catalog
from infra.cost import command as cost_command
from infra.cost import model as cost_model
from infra.cost import rightsize
from infra.simulate import inputs as simulate_inputs

UNKNOWN = "[unknown]"
REQUIRED_TAGS = ("environment", "stack", "managed-by")

# -- type tokens --------------------------------------------------------------------------------

AWS_CLUSTER = "aws:eks/cluster:Cluster"
AWS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
AWS_LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AWS_SUBNET = "aws:ec2/subnet:Subnet"
GCP_CLUSTER = "gcp:container/cluster:Cluster"
GCP_NODE_POOL = "gcp:container/nodePool:NodePool"
AZURE_CLUSTER = "azure-native:containerservice:ManagedCluster"
AZURE_AGENT_POOL = "azure-native:containerservice:AgentPool"
# The same ARM resource under its current and its former azure-native module.
AZURE_DIAGNOSTIC_SETTINGS = ("azure-native:monitor:DiagnosticSetting", "azure-native:insights:DiagnosticSetting")

# Object stores and the identities that reach them.
AWS_BUCKET = "aws:s3/bucket:Bucket"
AWS_BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
AWS_BUCKET_ACL = "aws:s3/bucketAclV2:BucketAclV2"
AWS_BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", AWS_BUCKET_ACL)
AWS_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
AWS_BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
AWS_BUCKET_VERSIONINGS = (AWS_BUCKET_VERSIONING, "aws:s3/bucketVersioningV2:BucketVersioningV2")
AWS_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
AWS_ROLE = "aws:iam/role:Role"
GCP_BUCKET = "gcp:storage/bucket:Bucket"
GCP_BUCKET_IAM = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding")
GCP_POOL_PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
AZURE_STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
AZURE_BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
AZURE_BLOB_CONTAINER = "azure-native:storage:BlobContainer"
AZURE_FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
# IAM members that mean everyone (with or without a Google account).
GCP_PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
AWS_PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")

CLUSTER_TYPES = (AWS_CLUSTER, GCP_CLUSTER, AZURE_CLUSTER)
POOL_TYPES = (AWS_NODE_GROUP, GCP_NODE_POOL, AZURE_AGENT_POOL)

# Where each taggable type the program declares keeps its tags (GCP calls them labels). A type
# that is not listed but carries a `tags` map is checked too; tests/test_policy.py compares this
# table with the provider SDKs, so a new taggable resource cannot slip past unlisted.
_AWS_TAGGABLE = (
    "cloudwatch/logGroup:LogGroup", "ec2/defaultSecurityGroup:DefaultSecurityGroup", "ec2/eip:Eip",
    "ec2/internetGateway:InternetGateway", "ec2/launchTemplate:LaunchTemplate", "ec2/natGateway:NatGateway",
    "ec2/routeTable:RouteTable", "ec2/subnet:Subnet", "ec2/vpc:Vpc", "eks/accessEntry:AccessEntry", "eks/addon:Addon",
    "eks/cluster:Cluster", "eks/nodeGroup:NodeGroup", "eks/podIdentityAssociation:PodIdentityAssociation",
    "iam/openIdConnectProvider:OpenIdConnectProvider", "iam/role:Role", "kms/key:Key", "s3/bucket:Bucket",
)
_AZURE_TAGGABLE = (
    "containerservice:AgentPool", "containerservice:ManagedCluster", "keyvault:Key", "keyvault:Vault",
    "managedidentity:UserAssignedIdentity", "network:NatGateway", "network:PublicIPAddress",
    "network:VirtualNetwork", "operationalinsights:Workspace", "resources:ResourceGroup", "storage:StorageAccount",
)
TAG_PATHS: dict[str, str] = {
    **{f"aws:{t}": "tags" for t in _AWS_TAGGABLE},
    **{f"azure-native:{t}": "tags" for t in _AZURE_TAGGABLE},
    GCP_CLUSTER: "resourceLabels",
    # The node VMs' labels; nodeConfig.labels are Kubernetes node labels, not cloud labels.
    GCP_NODE_POOL: "nodeConfig.resourceLabels",
    "gcp:kms/cryptoKey:CryptoKey": "labels",
    GCP_BUCKET: "labels",
}

# The node-count fields the cluster autoscaler owns, per pool type: the only ones a pool may
# ignore, and every one of them that the program sets must be ignored (pitfalls 1-3, 5).
COUNT_FIELDS: dict[str, tuple[str, ...]] = {
    AWS_NODE_GROUP: ("scalingConfig.desiredSize",),
    GCP_NODE_POOL: ("nodeCount", "initialNodeCount"),
    AZURE_AGENT_POOL: ("count",),
}
# AKS's inline system pool: its count under agentPoolProfiles, by index or for every profile.
_AKS_PROFILE_COUNT = re.compile(r"^agentPoolProfiles\[(\d+|\*)\]\.count$")
_GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
GCP_REGION_ZONES = 3  # a regional pool without nodeLocations runs in the region's three zones


# -- what every adapter hands the rules --------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One resource as both adapters see it: plan JSON in `check`, pulumi-policy args in the pack."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    parent: str | None = None

    @classmethod
    def from_plan(cls, record: Mapping[str, Any]) -> Resource:
        options = record.get("options") or {}
        return cls(type=record["type"], name=record["name"], urn=record["urn"], props=record.get("inputs") or {},
                   protect=bool(options.get("protect")), ignore_changes=tuple(options.get("ignoreChanges") or ()),
                   parent=record.get("parent"))


@dataclass(frozen=True)
class Context:
    """What a rule needs from the stack's configuration (never from raw config: from the spec)."""

    stack: str
    environment: str
    max_nodes_per_pool: int = Guardrails.max_nodes_per_pool
    max_nodes_per_cluster: int = Guardrails.max_nodes_per_cluster
    # im-platform:guardrails.maxMonthlyCost and what pricing the stack's `max` needs (from the spec).
    max_monthly_cost: Decimal | None = None
    cloud: str = ""
    region: str = ""
    cost_pools: tuple[cost_model.PoolInput, ...] = ()
    cost_catalog: str | None = None
    # Public tiers whose stack file says they end TLS themselves (im-platform:services.<name>.tls: self).
    tls_self: tuple[str, ...] = ()
    # The validated spec, for the cost model's `max` (the same figure `cost` prints).
    spec: ClusterSpec | None = None
    # (name, vcpu, memoryGiB, maxNodes) of each pool the program manages: what tier-fits-pool packs onto.
    pool_shapes: tuple[tuple[str, int, int, int], ...] = ()
    # A DR standby (im-platform:dr.role standby): its tiers idle at dr.standby.replicasMin until a failover.
    dr_standby: bool = False

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> Context:
        return cls(stack=spec.stack, environment=spec.environment,
                   max_nodes_per_pool=spec.guardrails.max_nodes_per_pool,
                   max_nodes_per_cluster=spec.guardrails.max_nodes_per_cluster,
                   max_monthly_cost=spec.guardrails.max_monthly_cost, cloud=spec.cloud, region=spec.region,
                   cost_pools=tuple(cost_model.PoolInput(p.name, p.machine_types, p.spot, p.min_nodes, p.max_nodes)
                                    for p in spec.node_pools),
                   cost_catalog=spec.cost.catalog, spec=spec,
                   tls_self=tuple(s.name for s in spec.services if s.public and s.tls == "self"),
                   pool_shapes=tuple((p.name, p.vcpu, p.memory_gib, p.max_nodes)
                                     for p in spec.node_pools if p.managed),
                   dr_standby=spec.dr is not None and spec.dr.is_standby)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    urn: str | None = None  # None: the stack as a whole
    name: str | None = None

    def render(self, stack: str = "") -> str:
        where = self.urn or f"stack {stack}".strip()
        return f"{self.rule}: {where}: {self.message}"


ResourceCheck = Callable[[Resource, Context], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Context], Iterable[tuple[Resource | None, str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    remediation: str
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    clouds: tuple[str, ...] = field(default=("aws", "gcp", "azure"))

    def evaluate(self, resources: Sequence[Resource], ctx: Context) -> list[Violation]:
        found: list[Violation] = []
        if self.resource_check is not None:
            for r in resources:
                found.extend(Violation(self.name, m, r.urn, r.name) for m in self.resource_check(r, ctx))
        if self.stack_check is not None:
            for subject, m in self.stack_check(resources, ctx):
                found.append(Violation(self.name, m, subject.urn if subject else None, subject.name if subject else None))
        return found


# -- small readers -----------------------------------------------------------------------------


def get(props: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """props["a"]["b"] for "a.b"; the default where any step is missing or not a map."""
    value: Any = props
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return default if value is None else value


def known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def truthy(value: Any) -> bool:
    """Booleans as providers take them: true, "true" (AWS launch templates use strings)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def as_count(value: Any) -> int | None:
    """A whole number, also as the float the policy SDK hands over (protobuf Struct numbers are
    doubles: a pack that tested isinstance(x, int) would never see a node count)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def open_to_world(cidr: Any) -> bool:
    """0.0.0.0/0, ::/0 or any range that covers every address (e.g. "0.0.0.0/0 " or "*")."""
    if not isinstance(cidr, str) or cidr == UNKNOWN:
        return False
    text = cidr.strip()
    if text in ("*", "0.0.0.0", "Internet", "any"):
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


def pool_labels(r: Resource) -> Mapping[str, Any]:
    path = {AWS_NODE_GROUP: "labels", GCP_NODE_POOL: "nodeConfig.labels", AZURE_AGENT_POOL: "nodeLabels"}.get(r.type)
    labels = get(r.props, path) if path else None
    return labels if isinstance(labels, Mapping) else {}


def aks_profiles(r: Resource) -> list[Mapping[str, Any]]:
    """The node pools declared inline in an AKS cluster (the system pool)."""
    if r.type != AZURE_CLUSTER:
        return []
    return [p for p in as_list(get(r.props, "agentPoolProfiles")) if isinstance(p, Mapping)]


def _aks_is_system(profile: Mapping[str, Any]) -> bool:
    labels = profile.get("nodeLabels")
    return profile.get("mode") == "System" or (isinstance(labels, Mapping) and labels.get(POOL_LABEL_KEY) == SYSTEM_POOL)


def pool_max_nodes(r: Resource) -> int | None:
    """The most nodes a pool may run, whole pool (all zones); None when it cannot be known."""
    if r.type == AWS_NODE_GROUP:
        value = get(r.props, "scalingConfig.maxSize")
    elif r.type == GCP_NODE_POOL:
        value = get(r.props, "autoscaling.totalMaxNodeCount")
        if value is None:
            # Per-zone limits (or a fixed per-zone count) multiply by the pool's zones.
            per_zone = as_count(get(r.props, "autoscaling.maxNodeCount", get(r.props, "nodeCount")))
            if per_zone is None:
                return None
            value = per_zone * _gcp_zone_count(r)
    elif r.type == AZURE_AGENT_POOL:
        value = _aks_max(r.props)
    else:
        return None
    return as_count(value)


def _aks_max(pool: Mapping[str, Any]) -> Any:
    return pool.get("maxCount") if truthy(pool.get("enableAutoScaling")) else pool.get("count")


def _gcp_zone_count(r: Resource) -> int:
    locations = get(r.props, "nodeLocations")
    if isinstance(locations, (list, tuple)) and locations:
        return len(locations)
    location = get(r.props, "location")
    return 1 if isinstance(location, str) and _GCP_ZONE.match(location) else GCP_REGION_ZONES


def tags_of(r: Resource) -> Any:
    """The resource's tag map, or None when the type takes none."""
    path = TAG_PATHS.get(r.type)
    if path is None:
        if r.type.startswith(("aws:", "azure-native:")) and isinstance(r.props.get("tags"), Mapping):
            path = "tags"
        elif r.type.startswith("gcp:") and isinstance(r.props.get("labels"), Mapping):
            path = "labels"
        else:
            return None
    return get(r.props, path, {})


# -- the rules ---------------------------------------------------------------------------------


def check_api_endpoint(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == AWS_CLUSTER:
        vpc = get(r.props, "vpcConfig", {})
        # Absent means public (the EKS default), and a public endpoint without CIDRs means 0.0.0.0/0.
        public = get(vpc, "endpointPublicAccess")
        if public == UNKNOWN or falsy(public):
            return
        cidrs = get(vpc, "publicAccessCidrs")
        if cidrs == UNKNOWN:
            return
        if not as_list(cidrs):
            yield "vpcConfig.endpointPublicAccess is on with no publicAccessCidrs, so EKS opens it to 0.0.0.0/0"
        yield from _open_cidrs("vpcConfig.publicAccessCidrs", cidrs)
    elif r.type == GCP_CLUSTER:
        if truthy(get(r.props, "privateClusterConfig.enablePrivateEndpoint")):
            return
        if falsy(get(r.props, "controlPlaneEndpointsConfig.ipEndpointsConfig.enabled")) or falsy(
                get(r.props, "controlPlaneEndpointsConfig.ipEndpointsConfig.enablePublicEndpoint")):
            return
        networks = get(r.props, "masterAuthorizedNetworksConfig")
        if networks == UNKNOWN:
            return
        if not isinstance(networks, Mapping):
            yield "the public endpoint has no masterAuthorizedNetworksConfig, so any address may reach it"
            return
        if truthy(networks.get("gcpPublicCidrsAccessEnabled")):
            yield "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled lets every Google Cloud public IP reach the API"
        # Present, the config admits only its cidrBlocks (none at all when the list is empty).
        blocks = as_list(networks.get("cidrBlocks"))
        yield from _open_cidrs("masterAuthorizedNetworksConfig.cidrBlocks",
                               [b.get("cidrBlock") for b in blocks if isinstance(b, Mapping)])
    elif r.type == AZURE_CLUSTER:
        access = get(r.props, "apiServerAccessProfile", {})
        if access == UNKNOWN or truthy(get(access, "enablePrivateCluster")):
            return
        ranges = get(access, "authorizedIPRanges")
        if ranges == UNKNOWN:
            return
        if not as_list(ranges):
            yield "the API server is public with no apiServerAccessProfile.authorizedIPRanges, so any address may reach it"
        yield from _open_cidrs("apiServerAccessProfile.authorizedIPRanges", ranges)


def _open_cidrs(path: str, cidrs: Any) -> Iterator[str]:
    for cidr in as_list(cidrs):
        if open_to_world(cidr):
            yield f"{path} contains {cidr!r}: the Kubernetes API would be open to the whole internet"


def check_secrets_encryption(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == AWS_CLUSTER:
        config = get(r.props, "encryptionConfig")
        if config == UNKNOWN:
            return
        resources = as_list(get(config, "resources"))
        key = get(config, "provider.keyArn")
        if "secrets" not in resources or not key:
            yield "encryptionConfig must encrypt resources [\"secrets\"] with a KMS key (provider.keyArn)"
    elif r.type == GCP_CLUSTER:
        config = get(r.props, "databaseEncryption")
        if config == UNKNOWN:
            return
        if get(config, "state") != "ENCRYPTED" or not get(config, "keyName"):
            yield "databaseEncryption must be state ENCRYPTED with a Cloud KMS keyName"
    elif r.type == AZURE_CLUSTER:
        kms = get(r.props, "securityProfile.azureKeyVaultKms")
        if kms == UNKNOWN:
            return
        if not truthy(get(kms, "enabled")) or not get(kms, "keyId"):
            yield "securityProfile.azureKeyVaultKms must be enabled with a Key Vault keyId"


def check_audit_logging(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    settings = [r for r in resources if r.type in AZURE_DIAGNOSTIC_SETTINGS]
    for r in resources:
        if r.type == AWS_CLUSTER:
            types = get(r.props, "enabledClusterLogTypes")
            if types != UNKNOWN and "audit" not in as_list(types):
                yield r, "enabledClusterLogTypes must include \"audit\""
        elif r.type == GCP_CLUSTER:
            if get(r.props, "loggingService") == "none":
                yield r, "loggingService is \"none\": no control-plane logs reach Cloud Logging"
            components = get(r.props, "loggingConfig.enableComponents")
            if components is not None and components != UNKNOWN and "APISERVER" not in as_list(components):
                yield r, "loggingConfig.enableComponents must include \"APISERVER\""
        elif r.type == AZURE_CLUSTER:
            if not any(_aks_audit_setting(s, r) for s in settings):
                yield r, ("no diagnostic setting sends the kube-audit or kube-audit-admin logs of this cluster "
                          "to a destination (azure-native:monitor:DiagnosticSetting)")


def _aks_audit_setting(setting: Resource, cluster: Resource) -> bool:
    uri = get(setting.props, "resourceUri")
    name = get(cluster.props, "resourceName")
    # Before the cluster exists its id is unknown; a setting that names another resource does not count.
    if known(uri) and known(name) and not str(uri).lower().endswith(f"/managedclusters/{str(name).lower()}"):
        return False
    logs = get(setting.props, "logs")
    if logs == UNKNOWN:
        return True
    for log in as_list(logs):
        if not isinstance(log, Mapping) or falsy(log.get("enabled")):
            continue
        if log.get("category") in ("kube-audit", "kube-audit-admin") or log.get("categoryGroup") in ("audit", "allLogs"):
            return True
    return False


def check_public_node_ips(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == AWS_LAUNCH_TEMPLATE:
        for i, nic in enumerate(as_list(get(r.props, "networkInterfaces"))):
            if isinstance(nic, Mapping) and truthy(nic.get("associatePublicIpAddress")):
                yield f"networkInterfaces[{i}].associatePublicIpAddress gives every node a public IP"
    elif r.type == AWS_SUBNET:
        if truthy(get(r.props, "mapPublicIpOnLaunch")):
            yield "mapPublicIpOnLaunch gives every instance (node) launched in this subnet a public IP"
    elif r.type == GCP_CLUSTER:
        private = get(r.props, "privateClusterConfig.enablePrivateNodes")
        default = get(r.props, "networkConfig.defaultEnablePrivateNodes")
        if UNKNOWN in (private, default):
            return
        if not truthy(private) and not truthy(default):
            yield "privateClusterConfig.enablePrivateNodes must be true: nodes would get public IPs"
    elif r.type == GCP_NODE_POOL:
        if falsy(get(r.props, "networkConfig.enablePrivateNodes")):
            yield "networkConfig.enablePrivateNodes is false: this pool's nodes would get public IPs"
    elif r.type == AZURE_AGENT_POOL:
        if truthy(get(r.props, "enableNodePublicIP")):
            yield "enableNodePublicIP gives every node a public IP"
    elif r.type == AZURE_CLUSTER:
        for i, profile in enumerate(aks_profiles(r)):
            if truthy(profile.get("enableNodePublicIP")):
                yield f"agentPoolProfiles[{i}].enableNodePublicIP gives every node of pool {profile.get('name')!r} a public IP"


def check_autoscaler_ignores(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type in COUNT_FIELDS:
        if not _autoscaled(r):
            return
        fields = COUNT_FIELDS[r.type]
        extra = [p for p in r.ignore_changes if p not in fields]
        if extra:
            yield (f"ignoreChanges {extra} hides more than the autoscaler-owned count ({', '.join(fields)}): "
                   "later edits to those fields would never be applied")
        set_fields = [f for f in fields if get(r.props, f) is not None]
        missing = [f for f in set_fields if f not in r.ignore_changes]
        if missing:
            yield (f"ignoreChanges must include {missing}: every `pulumi up` would reset the node count "
                   "the autoscaler chose")
    elif r.type == AZURE_CLUSTER:
        profiles = aks_profiles(r)
        counted = {m.group(1) for p in r.ignore_changes if (m := _AKS_PROFILE_COUNT.match(p))}
        pool_paths = [p for p in r.ignore_changes if p == "agentPoolProfiles" or p.startswith("agentPoolProfiles[")]
        extra = [p for p in pool_paths if not _AKS_PROFILE_COUNT.match(p)]
        if extra:
            yield (f"ignoreChanges {extra} hides more of the inline pools than their count "
                   "(use agentPoolProfiles[N].count): later min/max edits would never be applied")
        for i, profile in enumerate(profiles):
            if truthy(profile.get("enableAutoScaling")) and profile.get("count") is not None \
                    and str(i) not in counted and "*" not in counted:
                yield (f"ignoreChanges must include agentPoolProfiles[{i}].count: every `pulumi up` would reset "
                       f"the node count the autoscaler chose for pool {profile.get('name')!r}")


def _autoscaled(r: Resource) -> bool:
    if r.type == AWS_NODE_GROUP:
        low, high = get(r.props, "scalingConfig.minSize"), get(r.props, "scalingConfig.maxSize")
        return not (as_count(low) is not None and as_count(low) == as_count(high))
    if r.type == GCP_NODE_POOL:
        return isinstance(get(r.props, "autoscaling"), Mapping)
    if r.type == AZURE_AGENT_POOL:
        return truthy(get(r.props, "enableAutoScaling"))
    return False


def check_system_pool_not_spot(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type in POOL_TYPES:
        is_system = pool_labels(r).get(POOL_LABEL_KEY) == SYSTEM_POOL or (
            r.type == AZURE_AGENT_POOL and get(r.props, "mode") == "System")
        if not is_system:
            return
        if r.type == AWS_NODE_GROUP and get(r.props, "capacityType") == "SPOT":
            yield "the system pool runs cluster add-ons (CoreDNS, the autoscaler) and must not be capacityType SPOT"
        elif r.type == GCP_NODE_POOL and (truthy(get(r.props, "nodeConfig.spot")) or truthy(get(r.props, "nodeConfig.preemptible"))):
            yield "the system pool runs cluster add-ons (CoreDNS, the autoscaler) and must not be spot or preemptible"
        elif r.type == AZURE_AGENT_POOL and get(r.props, "scaleSetPriority") == "Spot":
            yield "the system pool runs cluster add-ons (CoreDNS, the autoscaler) and must not be scaleSetPriority Spot"
    elif r.type == AZURE_CLUSTER:
        for i, profile in enumerate(aks_profiles(r)):
            if _aks_is_system(profile) and profile.get("scaleSetPriority") == "Spot":
                yield f"agentPoolProfiles[{i}] is the system pool and must not be scaleSetPriority Spot"


def check_prod_protected(r: Resource, ctx: Context) -> Iterator[str]:
    if not ctx.is_prod or r.type not in CLUSTER_TYPES:
        return
    if not r.protect:
        yield "a prod cluster must be declared with protect=True, so no `pulumi up` or destroy can delete it"
    if r.type == AWS_CLUSTER and not truthy(get(r.props, "deletionProtection")):
        yield "a prod EKS cluster must set deletionProtection, so it cannot be deleted outside Pulumi either"
    if r.type == GCP_CLUSTER and falsy(get(r.props, "deletionProtection")):
        yield "a prod GKE cluster must not turn deletionProtection off"


def check_required_tags(r: Resource, ctx: Context) -> Iterator[str]:
    tags = tags_of(r)
    if tags is None or tags == UNKNOWN:
        return
    if not isinstance(tags, Mapping):
        tags = {}
    missing = [k for k in REQUIRED_TAGS if not tags.get(k)]
    if missing:
        where = TAG_PATHS.get(r.type, "tags")
        yield f"{where} is missing {', '.join(missing)} (every taggable resource carries {', '.join(REQUIRED_TAGS)})"
    expected = {"environment": ctx.environment, "stack": dns_label(ctx.stack), "managed-by": MANAGED_BY}
    for key, value in expected.items():
        if tags.get(key) and known(tags.get(key)) and tags[key] != value:
            yield f"tag {key} is {tags[key]!r}, expected {value!r}"
    if r.type == AZURE_CLUSTER:
        for i, profile in enumerate(aks_profiles(r)):
            ptags = profile.get("tags")
            if ptags == UNKNOWN:
                continue
            missing = [k for k in REQUIRED_TAGS if not (isinstance(ptags, Mapping) and ptags.get(k))]
            if missing:
                yield f"agentPoolProfiles[{i}].tags is missing {', '.join(missing)}"


def check_max_nodes_per_pool(r: Resource, ctx: Context) -> Iterator[str]:
    pools: list[tuple[str, int | None]] = []
    if r.type in POOL_TYPES:
        pools.append((r.name, pool_max_nodes(r)))
    elif r.type == AZURE_CLUSTER:
        pools.extend((f"agentPoolProfiles[{i}] ({p.get('name')})", as_count(_aks_max(p))) for i, p in enumerate(aks_profiles(r)))
    for label, most in pools:
        if most is not None and most > ctx.max_nodes_per_pool:
            yield (f"pool {label} may grow to {most} nodes, above im-platform:guardrails.maxNodesPerPool "
                   f"({ctx.max_nodes_per_pool})")


def check_max_nodes_per_cluster(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    # Pools and their cluster share a parent (the cluster component); a stack normally holds one.
    groups: dict[str | None, list[tuple[str, int]]] = {}
    subjects: dict[str | None, Resource] = {}
    for r in resources:
        if r.type in CLUSTER_TYPES:
            subjects.setdefault(r.parent, r)
        if r.type in POOL_TYPES:
            most = pool_max_nodes(r)
            if most is not None:
                groups.setdefault(r.parent, []).append((r.name, most))
        for i, p in enumerate(aks_profiles(r)):
            most = as_count(_aks_max(p))
            if most is not None:
                groups.setdefault(r.parent, []).append((str(p.get("name", i)), most))
    for parent, pools in groups.items():
        total = sum(n for _, n in pools)
        if total > ctx.max_nodes_per_cluster:
            detail = " + ".join(f"{n} ({name})" for name, n in pools)
            yield subjects.get(parent), (f"the pools may grow to {total} nodes in all ({detail}), above "
                                         f"im-platform:guardrails.maxNodesPerCluster ({ctx.max_nodes_per_cluster})")


# -- object stores and federation ----------------------------------------------------------------


def _bucket_ref(r: Resource) -> Any:
    """An S3 bucket's name, or the bucket a sub-resource (public access block, versioning) configures."""
    return get(r.props, "bucket")


def _s3_buckets(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.type in (AWS_BUCKET, AWS_BUCKET_V2)]


def check_object_store_private(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    blocks = [r for r in resources if r.type == AWS_PUBLIC_ACCESS_BLOCK]
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for block in blocks:
        off = [f for f in flags if not truthy(get(block.props, f)) and get(block.props, f) != UNKNOWN]
        if off:
            yield block, f"{', '.join(off)} must be true: the bucket could be made public"
    for bucket in _s3_buckets(resources):
        acl = get(bucket.props, "acl")
        if acl in AWS_PUBLIC_ACLS:
            yield bucket, f"acl {acl!r} makes the bucket's objects readable outside the account"
        name = _bucket_ref(bucket)
        if not known(name):
            continue
        # A block whose bucket is not known yet (a first preview) may be this bucket's.
        if not any(not known(_bucket_ref(b)) or _bucket_ref(b) == name for b in blocks):
            yield bucket, (f"no {AWS_PUBLIC_ACCESS_BLOCK} blocks public access to bucket {name!r} "
                           "(all four flags true)")
    for r in resources:
        if r.type in AWS_BUCKET_ACLS and get(r.props, "acl") in AWS_PUBLIC_ACLS:
            yield r, f"acl {get(r.props, 'acl')!r} makes the bucket's objects readable outside the account"
        elif r.type == GCP_BUCKET:
            prevention = get(r.props, "publicAccessPrevention")
            if prevention != UNKNOWN and prevention != "enforced":
                yield r, "publicAccessPrevention must be \"enforced\": IAM could make the bucket public"
            if falsy(get(r.props, "uniformBucketLevelAccess")) or get(r.props, "uniformBucketLevelAccess") is None:
                yield r, "uniformBucketLevelAccess must be true: object ACLs could grant access IAM does not show"
        elif r.type in GCP_BUCKET_IAM:
            members = [get(r.props, "member")] + as_list(get(r.props, "members"))
            public = [m for m in members if m in GCP_PUBLIC_MEMBERS]
            if public:
                yield r, f"{', '.join(public)} would make the bucket readable by anyone"
        elif r.type == AZURE_STORAGE_ACCOUNT:
            if truthy(get(r.props, "allowBlobPublicAccess")):
                yield r, "allowBlobPublicAccess lets a container be opened to anonymous reads"
        elif r.type == AZURE_BLOB_CONTAINER:
            access = get(r.props, "publicAccess")
            if access in ("Blob", "Container"):
                yield r, f"publicAccess {access!r} lets anyone read the container's blobs"


def _statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM policy document given as JSON text or a map; [] when unknown."""
    if isinstance(document, str):
        if document == UNKNOWN:
            return []
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    found = document.get("Statement")
    items = found if isinstance(found, list) else [found]
    return [s for s in items if isinstance(s, Mapping)]


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


def _web_identity_subject_pinned(statement: Mapping[str, Any]) -> bool:
    """An AssumeRoleWithWebIdentity grant names exactly one `sub` (StringEquals, no wildcard)."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    equals = condition.get("StringEquals")
    if not isinstance(equals, Mapping):
        return False
    subs = [v for k, v in equals.items() if str(k).endswith(":sub")]
    return bool(subs) and all(isinstance(v, str) and "*" not in v for v in subs)


def check_wildcard_principal(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type in (AWS_BUCKET_POLICY, AWS_ROLE):
        field = "policy" if r.type == AWS_BUCKET_POLICY else "assumeRolePolicy"
        for i, statement in enumerate(_statements(get(r.props, field))):
            if statement.get("Effect") != "Allow":
                continue  # a Deny to everyone (e.g. of plain HTTP) is what a wildcard is for
            if _wildcard_principal(statement.get("Principal")) or "NotPrincipal" in statement:
                yield f"{field} statement {i} allows any principal (\"*\")"
            actions = statement.get("Action")
            actions = actions if isinstance(actions, list) else [actions]
            if "sts:AssumeRoleWithWebIdentity" in actions and not _web_identity_subject_pinned(statement):
                yield (f"{field} statement {i} lets any workload of the identity provider assume the role: "
                       "name exactly one subject with StringEquals on <provider>:sub")
    elif r.type in GCP_BUCKET_IAM:
        members = [get(r.props, "member")] + as_list(get(r.props, "members"))
        for member in members:
            if isinstance(member, str) and member.startswith("principalSet://") and member.endswith("/*"):
                yield f"member {member!r} grants every identity of the pool"
    elif r.type == GCP_POOL_PROVIDER:
        condition = get(r.props, "attributeCondition")
        if condition is None or (isinstance(condition, str) and not condition.strip()):
            yield "attributeCondition is empty: every identity the issuer signs for may use the pool"
    elif r.type == AZURE_FEDERATED_CREDENTIAL:
        subject = get(r.props, "subject")
        if isinstance(subject, str) and "*" in subject:
            yield f"subject {subject!r} is a pattern; a federated credential names exactly one subject"


def check_object_store_versioned(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    versionings = [r for r in resources if r.type in AWS_BUCKET_VERSIONINGS]
    for v in versionings:
        status = get(v.props, "versioningConfiguration.status")
        if known(status) and status != "Enabled":
            yield v, f"versioningConfiguration.status is {status!r}: overwritten and deleted objects are lost"
    for bucket in _s3_buckets(resources):
        if truthy(get(bucket.props, "versioning.enabled")):
            continue
        name = _bucket_ref(bucket)
        if not known(name):
            continue
        if not any(not known(_bucket_ref(v)) or _bucket_ref(v) == name for v in versionings):
            yield bucket, f"bucket {name!r} has no {AWS_BUCKET_VERSIONING} with status Enabled"
    services = [r for r in resources if r.type == AZURE_BLOB_SERVICE]
    for r in resources:
        if r.type == GCP_BUCKET:
            enabled = get(r.props, "versioning.enabled")
            if enabled != UNKNOWN and not truthy(enabled):
                yield r, "versioning.enabled must be true: overwritten and deleted objects are lost"
        elif r.type == AZURE_BLOB_SERVICE:
            enabled = get(r.props, "isVersioningEnabled")
            if enabled != UNKNOWN and not truthy(enabled):
                yield r, "isVersioningEnabled must be true: overwritten and deleted blobs are lost"
        elif r.type == AZURE_STORAGE_ACCOUNT:
            name = get(r.props, "accountName")
            if not known(name):
                continue
            if not any(not known(get(s.props, "accountName")) or get(s.props, "accountName") == name for s in services):
                yield r, f"storage account {name!r} has no {AZURE_BLOB_SERVICE} with isVersioningEnabled"


def check_max_monthly_cost(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    """The stack's `max` (every pool at maxNodes all month, plus the fixed fees its resources incur)."""
    if ctx.max_monthly_cost is None:
        return
    counts = cost_model.count_fixed((r.type, r.props) for r in resources)
    if ctx.spec is not None:
        # The same `max` as `cost` prints: fees, disks, the support window.
        most = cost_command.price(ctx.spec, counts, ctx.cloud, ctx.region)[0].max
    else:
        prices = cost_catalog.region_prices(ctx.cloud, ctx.region, ctx.cost_catalog)
        most = cost_model.estimate(ctx.cost_pools, counts, prices, (Decimal(1),) * 24).max
    if most > ctx.max_monthly_cost:
        subject = next((r for r in resources if r.type in CLUSTER_TYPES), None)
        yield subject, (f"the stack may cost {cost_model.money(most.quantize(Decimal('0.01')))} USD a month with every "
                        f"pool at maxNodes, above im-platform:guardrails.maxMonthlyCost "
                        f"({cost_model.money(ctx.max_monthly_cost)})")


# -- TLS: issuers without stored credentials, public tiers behind TLS ----------------------------------

CERT_MANAGER_ISSUERS = ("kubernetes:cert-manager.io/v1:ClusterIssuer", "kubernetes:cert-manager.io/v1:Issuer")
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# Fields of a cert-manager issuer that point at a stored secret credential (a cloud access key, a
# service account key, an API token, a CA's private key...); keyless access uses none of them.
STORED_CREDENTIAL_FIELDS = frozenset({
    "accessKeyID", "accessKeyIDSecretRef", "secretAccessKeySecretRef",  # route53
    "serviceAccountSecretRef",  # cloudDNS
    "clientSecretSecretRef", "clientTokenSecretRef", "accessTokenSecretRef",  # azureDNS, akamai
    "apiKeySecretRef", "apiTokenSecretRef", "tokenSecretRef",  # cloudflare, digitalocean, vault
    "tsigSecretSecretRef", "accountSecretRef",  # rfc2136, acmeDNS
    "keySecretRef",  # ACME external account binding
    "secretName",  # a CA issuer's stored signing key
})


def _credential_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key in STORED_CREDENTIAL_FIELDS and item not in (None, "", {}):
                yield where
            else:
                yield from _credential_paths(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _credential_paths(item, f"{path}[{i}]")


def check_issuer_credentials(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type not in CERT_MANAGER_ISSUERS:
        return
    for where in _credential_paths(r.props.get("spec"), "spec"):
        yield (f"{where} points the issuer at a stored credential: reach the DNS provider through the "
               "cluster's workload identity (EKS Pod Identity, or web-identity federation) instead")


def _matches(selector: Mapping[str, Any], template_labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(template_labels.get(k) == v for k, v in selector.items())


def _port_owner(pod: Mapping[str, Any], target: Any) -> tuple[Mapping[str, Any], bool] | None:
    """The container a Service's targetPort reaches (by name or number), and whether it is a native sidecar."""
    candidates = [(c, False) for c in as_list(pod.get("containers"))] + [
        (c, True) for c in as_list(pod.get("initContainers")) if isinstance(c, Mapping) and c.get("restartPolicy") == "Always"]
    for container, sidecar in candidates:
        if not isinstance(container, Mapping):
            continue
        for port in as_list(container.get("ports")):
            if isinstance(port, Mapping) and target in (port.get("name"), port.get("containerPort")):
                return container, sidecar
    return None


def _mounts_secret(container: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    secrets = {v.get("name") for v in as_list(pod.get("volumes")) if isinstance(v, Mapping) and isinstance(v.get("secret"), Mapping)}
    return any(isinstance(m, Mapping) and m.get("name") in secrets for m in as_list(container.get("volumeMounts")))


def check_public_tier_tls(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    """Every port of a LoadBalancer Service reaches a container that serves TLS with a mounted
    certificate: the TLS sidecar, or (where the stack says the tier ends TLS itself) the tier."""
    deployments = [r for r in resources if r.type == K8S_DEPLOYMENT]
    for svc in resources:
        if svc.type != K8S_SERVICE or get(svc.props, "spec.type") != "LoadBalancer":
            continue
        name, namespace = get(svc.props, "metadata.name"), get(svc.props, "metadata.namespace")
        if name in ctx.tls_self:
            continue
        selector = get(svc.props, "spec.selector") or {}
        if not known(name) or not known(namespace) or not isinstance(selector, Mapping) or not all(map(known, selector.values())):
            continue
        pods = [get(d.props, "spec.template.spec") or {} for d in deployments
                if get(d.props, "metadata.namespace") == namespace
                and _matches(selector, get(d.props, "spec.template.metadata.labels") or {})]
        for port in as_list(get(svc.props, "spec.ports")):
            target = port.get("targetPort", port.get("port")) if isinstance(port, Mapping) else None
            if not known(target):
                continue
            for pod in pods:
                owner = _port_owner(pod, target)
                if owner is None:
                    continue
                container, sidecar = owner
                if not (sidecar and _mounts_secret(container, pod)):
                    yield svc, (f"public Service {namespace}/{name} sends port {as_count(port.get('port'))} to "
                                f"{container.get('name')}, which serves no TLS certificate: clients would connect in plain text")



# -- Tiers: a disruption budget that still lets a node drain ---------------------------------------

K8S_PDB = "kubernetes:policy/v1:PodDisruptionBudget"
# The label every IM tier's pods carry (components/k8s/base.py labels(name, "tier")); the capacity
# buffer's placeholders carry another component and want no budget: they are the first to go.
TIER_LABEL = ("app.kubernetes.io/component", "tier")


def _blocks_every_eviction(pdb: Resource) -> str | None:
    """Why a budget would block every drain: maxUnavailable 0 (or 0%), or minAvailable 100%."""
    spec = get(pdb.props, "spec") or {}
    most = spec.get("maxUnavailable") if isinstance(spec, Mapping) else None
    least = spec.get("minAvailable") if isinstance(spec, Mapping) else None
    if known(most) and (as_count(most) == 0 or (isinstance(most, str) and most.strip() in ("0", "0%"))):
        return f"maxUnavailable {most.strip() if isinstance(most, str) else 0}"  # the pack sees numbers as floats
    if known(least) and isinstance(least, str) and least.strip() == "100%":
        return f"minAvailable {least}"
    return None


def check_tier_disruption_budget(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    """Every tier's pods are selected by a PodDisruptionBudget of their namespace that allows at
    least one pod down: without one a node drain or upgrade may take every pod of the tier at once;
    with one that allows none, no node under it can ever be drained."""
    budgets = [r for r in resources if r.type == K8S_PDB]
    key, value = TIER_LABEL
    for d in resources:
        template_labels = get(d.props, "spec.template.metadata.labels") or {}
        if d.type != K8S_DEPLOYMENT or not isinstance(template_labels, Mapping) or template_labels.get(key) != value:
            continue
        name, namespace = get(d.props, "metadata.name"), get(d.props, "metadata.namespace")
        selecting = []
        for pdb in budgets:
            selector = get(pdb.props, "spec.selector.matchLabels") or {}
            pdb_namespace = get(pdb.props, "metadata.namespace")
            if not isinstance(selector, Mapping) or not all(map(known, selector.values())):
                selecting.append(pdb)  # it might select the tier: prove nothing from an unknown
            elif _matches(selector, template_labels) and (
                    not known(namespace) or not known(pdb_namespace) or pdb_namespace == namespace):
                selecting.append(pdb)
        if not selecting:
            yield d, (f"Deployment {namespace}/{name} has no PodDisruptionBudget selecting its pods: a node drain "
                      "or upgrade may evict every pod of the tier at once")
        for pdb in selecting:
            blocked = _blocks_every_eviction(pdb)
            if blocked:
                yield pdb, (f"PodDisruptionBudget {get(pdb.props, 'metadata.namespace')}/{get(pdb.props, 'metadata.name')} "
                            f"of tier {name} allows no pod down ({blocked}): no node running it could ever be drained")


# -- tiers scaled on load (KEDA) -------------------------------------------------------------------------

SCALED_OBJECT = rightsize.SCALED_OBJECT
HPA = rightsize.HPA
# KEDA fallback behaviours that never lower the count during a metric outage (keda.sh/v1alpha1
# ScaledObject spec.fallback.behavior; `static`, the default, sets fallback.replicas, lower or not).
HOLDING_FALLBACKS = ("currentReplicas", "currentReplicasIfHigher")
PROD_MIN_REPLICAS = 2


def check_scaled_tier_fallback(r: Resource, ctx: Context) -> Iterator[str]:
    """In prod, a tier scaled on load keeps its count through a metric outage (the peak is exactly
    when Prometheus is most likely to fail) and never runs on a single pod (KEDA's own minimum is 0),
    except on a DR standby, which idles at dr.standby.replicasMin while it takes no traffic."""
    if r.type != SCALED_OBJECT or not ctx.is_prod:
        return
    spec = get(r.props, "spec")
    if spec == UNKNOWN or not isinstance(spec, Mapping):
        return
    tier = f"ScaledObject {get(r.props, 'metadata.namespace')}/{get(r.props, 'metadata.name')}"
    fallback = spec.get("fallback")
    if fallback is None:
        yield (f"{tier} has no fallback: a metric outage leaves KEDA's HPA without its metric "
               f"(behavior {' or '.join(HOLDING_FALLBACKS)} holds the count)")
    elif isinstance(fallback, Mapping):
        behavior = fallback.get("behavior", "static")
        if known(behavior) and behavior not in HOLDING_FALLBACKS:
            yield (f"{tier} falls back with behavior {behavior!r}, which may scale the tier down during a metric "
                   f"outage: use {' or '.join(HOLDING_FALLBACKS)}")
    least = spec.get("minReplicaCount", 0)
    # A DR standby serves no traffic until a failover promotes it (its floor rises with the role).
    if known(least) and not ctx.dr_standby:
        count = as_count(least)
        if count is None or count < PROD_MIN_REPLICAS:
            shown = least if count is None else count  # the pack sees numbers as floats
            yield f"{tier} has minReplicaCount {shown}: a prod tier runs at least {PROD_MIN_REPLICAS} replicas"


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_unknown(v) for v in value)
    return value == UNKNOWN


def _sizing(r: Resource) -> Any:
    """What right-sizing reads of a Deployment (its pool, replicas and each container's requests)
    or of an HPA or a ScaledObject (its target and bounds)."""
    meta = [get(r.props, "metadata.name"), get(r.props, "metadata.namespace")]
    if r.type == K8S_DEPLOYMENT:
        pod = get(r.props, "spec.template.spec")
        if not isinstance(pod, Mapping):
            return pod
        containers = []
        for key in ("containers", "initContainers"):
            listed = pod.get(key)
            if listed == UNKNOWN:
                return UNKNOWN
            containers += [[c.get("resources"), c.get("restartPolicy")] if isinstance(c, Mapping) else c
                           for c in as_list(listed)]
        return [meta, get(r.props, "spec.replicas"), pod.get("nodeSelector"), containers]
    return [meta, get(r.props, "spec.scaleTargetRef")] + [
        get(r.props, f"spec.{k}") for k in ("minReplicas", "maxReplicas", "minReplicaCount", "maxReplicaCount")]


def check_tier_fits_pool(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[Resource | None, str]]:
    """Each planned tier at its autoscaler's most replicas (the HPA's maxReplicas or the
    ScaledObject's maxReplicaCount), packed whole onto its pool's nodes at maxNodes: the room the
    cloud leaves pods less the daemonsets, as `simulate` packs them (infra/simulate/inputs.py)."""
    shapes = {name: (vcpu, memory, most) for name, vcpu, memory, most in ctx.pool_shapes}
    if not shapes or not ctx.cloud:
        return
    # A workload whose bounds, requests or pool the preview cannot know yet proves nothing (its other
    # fields, an image digest or a generated name, do not matter here).
    records = [{"type": r.type, "inputs": r.props} for r in resources
               if r.type in (K8S_DEPLOYMENT, HPA, SCALED_OBJECT) and not _has_unknown(_sizing(r))]
    deployments = {f"{get(r.props, 'metadata.namespace') or ''}/{get(r.props, 'metadata.name')}": r
                   for r in resources if r.type == K8S_DEPLOYMENT}
    for w in rightsize.workloads(records):
        shape = shapes.get(w.pool)
        if shape is None:
            continue  # an existing cluster's node group: no maxNodes of the program's
        vcpu, memory, max_nodes = shape
        node_cpu, node_memory = simulate_inputs.node_room(ctx.cloud, vcpu, memory)
        need = simulate_inputs.nodes_needed(w.replicas, float(w.cpu), float(w.memory_gib), node_cpu, node_memory)
        tier = w.name.rsplit("/", 1)[-1]
        subject = deployments.get(w.name)
        if need == 0:
            yield subject, (f"tier {tier}: one pod ({float(w.cpu):g} CPU, {float(w.memory_gib):.2f} GiB) fits no node "
                            f"of pool {w.pool} ({node_cpu:.2f} CPU, {node_memory:.2f} GiB for pods)")
        elif need > max_nodes:
            yield subject, (f"tier {tier}: replicas.max {w.replicas} needs {need} nodes of pool {w.pool}, but its "
                            f"maxNodes is {max_nodes}")


RULES: tuple[Rule, ...] = (
    Rule("api-endpoint-not-open", "The Kubernetes API endpoint is private or limited to listed CIDRs, never 0.0.0.0/0.",
         "List who may reach the API in im-platform:cluster.apiAllowedCidrs, or leave it empty for a private endpoint.",
         resource_check=check_api_endpoint),
    Rule("secrets-encryption", "Kubernetes Secrets are envelope-encrypted with a key in the cloud's KMS.",
         "Declare the cluster through components/ (it always configures KMS encryption).",
         resource_check=check_secrets_encryption),
    Rule("audit-logging", "Control-plane audit logs are on.",
         "EKS: enabledClusterLogTypes with \"audit\"; GKE: APISERVER logs; AKS: a diagnostic setting with kube-audit.",
         stack_check=check_audit_logging),
    Rule("no-public-node-ips", "Nodes get no public IP addresses.",
         "Keep nodes in private subnets; egress goes through NAT.",
         resource_check=check_public_node_ips),
    Rule("autoscaler-owns-count", "Autoscaled pools ignore their node count, and only their node count.",
         "ignore_changes exactly the desired count: scalingConfig.desiredSize (EKS), nodeCount/initialNodeCount "
         "(GKE), count (AKS) (see pitfalls 1-3).",
         resource_check=check_autoscaler_ignores),
    Rule("system-pool-not-spot", "The system pool (cluster add-ons) never runs on spot capacity.",
         "Remove spot from im-platform:cluster.nodePools.system.",
         resource_check=check_system_pool_not_spot),
    Rule("prod-cluster-protected", "Clusters of the prod environment are protected against deletion.",
         "Declare prod clusters with protect=True (and the cloud's deletion protection where it has one).",
         resource_check=check_prod_protected),
    Rule("required-tags", "Every taggable resource carries the environment, stack and managed-by tags.",
         "Tag through components.naming.tags (self.tags in a component).",
         resource_check=check_required_tags),
    Rule("max-nodes-per-pool", "No node pool may grow past im-platform:guardrails.maxNodesPerPool (default 200).",
         "Lower the pool's maxNodes, or raise the guardrail in the stack file if the cost is intended.",
         resource_check=check_max_nodes_per_pool),
    Rule("max-nodes-per-cluster", "The pools of a cluster together stay within im-platform:guardrails.maxNodesPerCluster "
         "(default 500).",
         "Lower the pools' maxNodes, or raise the guardrail in the stack file if the cost is intended.",
         stack_check=check_max_nodes_per_cluster),
    Rule("object-store-private", "Object stores are private: S3 public access fully blocked, GCS public access "
         "prevention enforced with uniform access, no public Azure blob access, no grant to everyone.",
         "Declare object stores through components/dr (private by construction); never grant allUsers or a public ACL.",
         stack_check=check_object_store_private),
    Rule("no-wildcard-principal", "No bucket policy or trust policy allows every principal, and federated trust names "
         "exactly one subject.",
         "Name the principal; for web identity, StringEquals on <provider>:sub and :aud (GCP: an attributeCondition).",
         resource_check=check_wildcard_principal),
    Rule("object-store-versioned", "Object stores keep old versions (S3 BucketVersioning Enabled, GCS versioning, "
         "Azure blob versioning).",
         "Turn versioning on; the lifecycle rule expires old versions after a while.",
         stack_check=check_object_store_versioned),
    Rule("max-monthly-cost", "The stack's max monthly cost (every pool at maxNodes all month, plus fixed fees) stays "
         "within im-platform:guardrails.maxMonthlyCost (USD; no limit when unset).",
         "Lower the pools' maxNodes or pick cheaper shapes (venv/bin/im-platform cost shows the figures), or raise "
         "the guardrail in the stack file if the cost is intended.",
         stack_check=check_max_monthly_cost),
    Rule("issuer-no-stored-credentials", "Certificate issuers hold no stored credential: no access key, service "
         "account key, API token or CA key in a Secret they name.",
         "Declare the issuer through components/k8s/tls.py (Route 53 through workload identity or web-identity federation).",
         resource_check=check_issuer_credentials),
    Rule("public-tier-tls", "Every public tier serves TLS: its load balancer's port reaches the TLS sidecar with the "
         "certificate mounted, unless the stack says the tier ends TLS itself.",
         "Name the stack's hosts in im-platform:tls (or route to it from a traffic stack), or set "
         "im-platform:services.<name>.tls: self if the tier's image ends TLS itself.",
         stack_check=check_public_tier_tls),
    Rule("tier-disruption-budget", "Every tier's pods are selected by a PodDisruptionBudget that still allows one "
         "pod down, so node drains and upgrades take them a few at a time and never block.",
         "Declare tiers through components/k8s/services.py (it gives each a budget of maxUnavailable 1, or 25%); "
         "never a budget of maxUnavailable 0 or minAvailable 100%.",
         stack_check=check_tier_disruption_budget),
    Rule("scaled-tier-fallback", "In prod, a tier scaled on its load (a KEDA ScaledObject) keeps a fallback that "
         "never scales it down (currentReplicas or currentReplicasIfHigher) and runs at least 2 replicas.",
         "Declare the tier's scaling through components/k8s/keda.py (fallback currentReplicasIfHigher) and set "
         "im-platform:services.<name>.replicas.min to 2 or more.",
         resource_check=check_scaled_tier_fallback),
    Rule("tier-fits-pool", "Every tier's replicas.max fits its pool at maxNodes, pods packed whole onto the room "
         "each node leaves them.",
         "Raise the pool's maxNodes (or pick larger nodes), or lower the tier's replicas.max or its requests; "
         "venv/bin/im-platform simulate shows the day.",
         stack_check=check_tier_fits_pool),
)
RULES_BY_NAME = {r.name: r for r in RULES}


def evaluate(resources: Sequence[Resource], ctx: Context, rules: Sequence[Rule] = RULES,
             not_judged: list[tuple[str, str]] | None = None) -> list[Violation]:
    """Every violation of every rule, in rule order. With `not_judged`, a rule that needs a price the
    catalog lacks (the cost guardrail) is named there with how to supply it, and the others still run."""
    found: list[Violation] = []
    for rule in rules:
        try:
            found.extend(list(rule.evaluate(resources, ctx)))
        except cost_catalog.PriceError as exc:
            if not_judged is None:
                raise
            not_judged.append((rule.name, f"{exc.args[0]}; give the price in an override catalog "
                                          "(im-platform:cost.catalog: FILE; `cost --stack NAME --export-catalog FILE` "
                                          "writes one to start from, docs/cost.md)"))
    return found
