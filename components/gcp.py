"""The IM cluster on GCP: a regional, private GKE Standard cluster with one autoscaled node pool per
spec pool, its own VPC with Cloud NAT, KMS envelope encryption of Secrets and a minimal node
service account."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pulumi
import pulumi_gcp as gcp

from components import naming
from components.base import ClusterComponent, ClusterOutputs, StackKey, exec_kubeconfig
from components.spec import ClusterSpec, NodePoolSpec, Taint

# A regional cluster puts the control plane and every pool in three zones of the region.
ZONES = 3
# GKE upgrades the control plane and nodes itself; REGULAR gets fixes weeks before STABLE.
RELEASE_CHANNEL = "REGULAR"
KEY_ROTATION = f"{90 * 24 * 3600}s"  # 90 days
POD_RANGE = "pods"
SERVICE_RANGE = "services"
# What a node needs and nothing more: write logs and metrics, publish metadata, pull images.
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
# The node SA's IAM roles are what bound its access; the broad scope avoids a second, opaque limit.
NODE_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
NODE_METADATA = {"disable-legacy-endpoints": "true"}
GKE_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
# A new project has these off; GKE's service agent (which the KMS grant names) exists only once
# the Kubernetes Engine API is on.
REQUIRED_APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "cloudkms.googleapis.com",
    "iam.googleapis.com",
    "artifactregistry.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
# im-platform:cluster.admins / viewers. GKE IAM has no per-cluster binding: these hold on every
# cluster of the project (one project per environment keeps them to this cluster). container.viewer
# reads objects but not Secrets.
ACCESS_ROLES = {"admin": "roles/container.admin", "viewer": "roles/container.viewer"}
AUTH_PLUGIN = "gke-gcloud-auth-plugin"
AUTH_PLUGIN_HINT = ("gke-gcloud-auth-plugin is required: `gcloud components install gke-gcloud-auth-plugin` "
                    "(https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl)")


def enable_apis(component: str, project: str, apis: Sequence[str],
                opts: Callable[[], pulumi.ResourceOptions]) -> list[gcp.projects.Service]:
    """One `Service` per API a component needs, named `<component>-api-<service>` (the cluster's
    and the DR object store's alike)."""
    return [
        gcp.projects.Service(
            naming.child_name(component, "api", api.split(".")[0]),
            project=project,
            service=api,
            # Other stacks and people use these APIs too: destroying this stack never turns them off.
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=opts(),
        )
        for api in apis
    ]


class GkeCluster(ClusterComponent):
    TYPE = "im-platform:gcp:GkeCluster"

    def _build(self, name: str, spec: ClusterSpec) -> ClusterOutputs:
        project = spec.gcp_project
        if not project:
            raise ValueError(f"{self.TYPE} {name}: spec.gcp_project is not set; expected the GCP project id (gcp:project)")
        region = spec.region

        apis = self._apis(name, project)
        # What else in the stack declares IAM objects waits for the API that holds them, and what
        # names the workload identity pool `<project>.svc.id.goog` waits for the cluster that
        # creates it (GCP answers "Identity Pool does not exist" before then).
        self.services = {service: api for service, api in zip(REQUIRED_APIS, apis, strict=True)}
        subnet = self._network(name, spec, project, apis)
        key, key_grant = self._kms(name, project, region, apis)
        node_sa, node_roles = self._node_identity(name, project, apis)
        cluster = self._cluster(name, spec, project, subnet, key, key_grant, node_sa, node_roles)
        self.gke = cluster
        pools = [self._node_pool(name, pool, project, cluster, node_sa, node_roles) for pool in spec.node_pools]
        self._access(name, spec, project, apis)

        # The DNS-based endpoint: reached from anywhere, but only with an IAM token of a principal
        # holding container.* permissions, so CI and operators need no route into the VPC and no
        # address in apiAllowedCidrs. The IP endpoints keep their own restrictions.
        endpoint = cluster.control_plane_endpoints_config.apply(dns_endpoint)
        context = f"gke_{project}_{region}_{cluster_physical_name(name)}"
        return ClusterOutputs(
            node_pool_resources=list(pools),
            cluster_name=cluster.name,
            endpoint=endpoint,
            # Only the endpoint and the plugin: nothing that changes between runs (pitfalls 7, 8).
            kubeconfig=endpoint.apply(lambda e: gke_kubeconfig(context, e)),
            oidc_issuer=pulumi.Output.concat(
                f"https://container.googleapis.com/v1/projects/{project}/locations/{region}/clusters/", cluster.name),
            key=StackKey(id=key.id),
        )

    # -----------------------------------------------------------------------------------------

    def _apis(self, name: str, project: str) -> list[gcp.projects.Service]:
        return enable_apis(name, project, REQUIRED_APIS, self.opts)

    def _network(self, name: str, spec: ClusterSpec, project: str,
                 apis: Sequence[gcp.projects.Service]) -> gcp.compute.Subnetwork:
        network = gcp.compute.Network(
            naming.child_name(name, "vpc"),
            name=naming.physical_name(name, "vpc"),
            project=project,
            # Custom mode: only the subnet below exists, so no range collides with pods or services.
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=self.opts(depends_on=list(apis)),
        )
        subnet = gcp.compute.Subnetwork(
            naming.child_name(name, "nodes"),
            name=naming.physical_name(name, "nodes"),
            project=project,
            region=spec.region,
            network=network.id,
            ip_cidr_range=spec.network_cidr,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=POD_RANGE, ip_cidr_range=spec.pod_cidr),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICE_RANGE, ip_cidr_range=spec.service_cidr),
            ],
            # Private nodes reach Google APIs (Artifact Registry, Logging) without public IPs.
            private_ip_google_access=True,
            # IM traffic is many small flows: sample a tenth to keep the bill sane and still see who talks to whom.
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC", flow_sampling=0.1, metadata="INCLUDE_ALL_METADATA"),
            opts=self.opts(),
        )
        router = gcp.compute.Router(
            naming.child_name(name, "router"),
            name=naming.physical_name(name, "router"),
            project=project,
            region=spec.region,
            network=network.id,
            opts=self.opts(),
        )
        gcp.compute.RouterNat(
            naming.child_name(name, "nat"),
            name=naming.physical_name(name, "nat"),
            project=project,
            region=spec.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            # Node and pod ranges both, so pod traffic that is not masqueraded to the node IP gets out too.
            subnetworks=[gcp.compute.RouterNatSubnetworkArgs(name=subnet.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"])],
            # Push fan-out (APNs, FCM) opens many connections from few nodes: ports grow with demand.
            enable_dynamic_port_allocation=True,
            enable_endpoint_independent_mapping=False,  # dynamic port allocation requires it off
            min_ports_per_vm=64,
            max_ports_per_vm=4096,
            # Port exhaustion and dropped connections show up in the log; successful ones would flood it.
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=self.opts(),
        )
        return subnet

    def _kms(self, name: str, project: str, region: str,
             apis: Sequence[gcp.projects.Service]) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
        # Key rings and keys cannot be deleted on GCP (destroy only forgets the ring and destroys the
        # key versions, losing every Secret they encrypt): protected in prod.
        ring = gcp.kms.KeyRing(
            naming.child_name(name, "keyring"),
            name=naming.physical_name(name, "gke"),
            project=project,
            location=region,  # GKE only accepts a key in the cluster's own region
            opts=self.opts(protect_in_prod=True, depends_on=list(apis)),
        )
        key = gcp.kms.CryptoKey(
            naming.child_name(name, "secrets-key"),
            name="gke-secrets",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            # New key versions encrypt new writes; old versions stay enabled to decrypt older Secrets.
            rotation_period=KEY_ROTATION,
            labels=self.tags,
            opts=self.opts(protect_in_prod=True),
        )
        number = gcp.organizations.get_project_output(project_id=project).number
        grant = gcp.kms.CryptoKeyIAMMember(
            naming.child_name(name, "secrets-key-gke"),
            crypto_key_id=key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            # The GKE service agent, not the node SA, wraps and unwraps the data encryption keys.
            member=pulumi.Output.concat("serviceAccount:service-", number, "@container-engine-robot.iam.gserviceaccount.com"),
            opts=self.opts(),
        )
        return key, grant

    def _access(self, name: str, spec: ClusterSpec, project: str, apis: Sequence[gcp.projects.Service]) -> None:
        """One IAMMember per principal: non-authoritative, so bindings made elsewhere stay."""
        for role, principals in (("admin", spec.admins), ("viewer", spec.viewers)):
            for principal in principals:
                gcp.projects.IAMMember(
                    naming.child_name(name, role, naming.principal_key(principal)),
                    project=project,
                    role=ACCESS_ROLES[role],
                    member=principal,
                    # A new project: the roles/container.* grants wait for the APIs that define them.
                    opts=self.opts(depends_on=list(apis)),
                )

    def _node_identity(self, name: str, project: str,
                       apis: Sequence[gcp.projects.Service]) -> tuple[gcp.serviceaccount.Account, list[gcp.projects.IAMMember]]:
        # Not the default compute SA, which holds Editor on the whole project.
        sa = gcp.serviceaccount.Account(
            naming.child_name(name, "nodes-sa"),
            account_id=naming.physical_name(name, "nodes", max_len=30),
            display_name=f"GKE nodes of {name}",
            project=project,
            opts=self.opts(depends_on=list(apis)),
        )
        roles = [
            gcp.projects.IAMMember(
                naming.child_name(name, "nodes", naming.dns_label(role.removeprefix("roles/"))),
                project=project,
                role=role,
                member=sa.member,
                opts=self.opts(),
            )
            for role in NODE_ROLES
        ]
        return sa, roles

    def _cluster(self, name: str, spec: ClusterSpec, project: str, subnet: gcp.compute.Subnetwork,
                 key: gcp.kms.CryptoKey, key_grant: gcp.kms.CryptoKeyIAMMember,
                 node_sa: gcp.serviceaccount.Account, node_roles: Sequence[gcp.projects.IAMMember]) -> gcp.container.Cluster:
        private_endpoint = not spec.api_public
        return gcp.container.Cluster(
            naming.child_name(name, "gke"),
            name=cluster_physical_name(name),
            project=project,
            # A region, not a zone: control plane replicas and node pools span three zones.
            location=spec.region,
            network=subnet.network,
            subnetwork=subnet.id,
            # Pools are separate NodePool resources (pitfall 5); the default pool is only a creation step.
            remove_default_node_pool=True,
            initial_node_count=1,
            # The throwaway default pool still runs as the node SA, never the project's default compute SA.
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=node_sa.email,
                oauth_scopes=NODE_SCOPES,
                metadata=NODE_METADATA,
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True),
                resource_labels=self.tags,
            ),
            deletion_protection=spec.is_prod,
            # "1.33" means the newest 1.33 patch of the channel; GKE moves patches, we move minors.
            min_master_version=spec.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=RELEASE_CHANNEL),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,  # nodes get no public IP; egress goes through Cloud NAT
                enable_private_endpoint=private_endpoint,
                # Private-only: operators on VPN/Interconnect in any region can still reach the API.
                master_global_access_config=(
                    gcp.container.ClusterPrivateClusterConfigMasterGlobalAccessConfigArgs(enabled=True)
                    if private_endpoint else None),
            ),
            control_plane_endpoints_config=gcp.container.ClusterControlPlaneEndpointsConfigArgs(
                dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                    # IAM-authenticated requests only (Google's front end rejects the rest); the path
                    # the kubeconfig, CI and `pulumi up` take to a private or CIDR-limited API.
                    allow_external_traffic=True,
                ),
            ),
            # No master_ipv4_cidr_block: GKE >= 1.29 connects the control plane over Private Service Connect.
            master_authorized_networks_config=(
                None if private_endpoint else gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                    cidr_blocks=[
                        gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                            cidr_block=cidr, display_name=f"apiAllowedCidrs[{i}]")
                        for i, cidr in enumerate(spec.api_allowed_cidrs)
                    ],
                    # Otherwise every Compute Engine IP in the world could reach the public endpoint.
                    gcp_public_cidrs_access_enabled=False,
                )),
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=POD_RANGE, services_secondary_range_name=SERVICE_RANGE),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=f"{project}.svc.id.goog"),
            # Managed collection (Managed Service for Prometheus) scrapes the tiers' PodMonitorings;
            # stated where a tier scales on its load, not left to the version's default.
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True),
            ) if spec.scaled_services and spec.monitoring.managed else None,
            # Dataplane V2 enforces NetworkPolicy itself (eBPF); the Calico network_policy block must stay unset.
            datapath_provider="ADVANCED_DATAPATH",
            enable_shielded_nodes=True,
            # The built-in autoscaler bin-packs and scales down promptly; the capacity buffer keeps warm
            # room for login bursts. enabled=False only turns off node auto-provisioning (new pools).
            cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
                enabled=False, autoscaling_profile="OPTIMIZE_UTILIZATION"),
            enable_legacy_abac=False,
            # Client certificates cannot be revoked; users authenticate through IAM instead.
            master_auth=gcp.container.ClusterMasterAuthArgs(
                client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(issue_client_certificate=False)),
            database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(state="ENCRYPTED", key_name=key.id),
            # APISERVER carries the audit trail of who changed what in the cluster.
            logging_config=gcp.container.ClusterLoggingConfigArgs(
                enable_components=["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER", "WORKLOADS"]),
            resource_labels=self.tags,
            opts=self.opts(
                protect_in_prod=True,
                # GKE checks at creation that its service agent may use the key, and the default pool's
                # nodes already run as the node SA.
                depends_on=[key_grant, *node_roles],
                # node_config only shapes the default pool, deleted right after creation: never replace
                # the cluster over it.
                ignore_changes=["nodeConfig"],
            ),
        )

    def _node_pool(self, name: str, pool: NodePoolSpec, project: str, cluster: gcp.container.Cluster,
                   node_sa: gcp.serviceaccount.Account, node_roles: Sequence[gcp.projects.IAMMember]) -> gcp.container.NodePool:
        return gcp.container.NodePool(
            naming.child_name(name, pool.name),
            # A prefix, never a fixed name: a replacement is created beside the old pool before the old
            # one is drained (pitfall 5).
            name_prefix=f"{pool.name}-",
            project=project,
            location=cluster.location,
            cluster=cluster.id,
            # Nodes follow the control plane's exact version, so they are upgraded after it and never ahead
            # of it (pitfall 10). The latest version from get_engine_versions can be newer than the channel
            # gives the control plane (the pool create then fails) and moves every time GKE ships a patch.
            version=cluster.master_version,
            initial_node_count=initial_nodes_per_zone(pool),
            # The spec's min/max count the whole pool; per-zone limits would triple them.
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=pool.min_nodes,
                total_max_node_count=pool.max_nodes,
                # ANY: spot capacity is taken where it exists, which lowers preemptions.
                location_policy="ANY" if pool.spot else "BALANCED",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            # One extra node at a time and none taken away: capacity never drops during upgrades.
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(strategy="SURGE", max_surge=1, max_unavailable=0),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=pool.machine_type,
                spot=pool.spot,
                labels=pool.node_labels,
                taints=[gke_taint(t) for t in pool.node_taints],
                service_account=node_sa.email,
                oauth_scopes=NODE_SCOPES,
                # Pods see the GKE metadata server (Workload Identity), never the node's credentials.
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True),
                metadata=NODE_METADATA,
                resource_labels=self.tags,
            ),
            opts=self.opts(
                # Nodes log, report metrics and pull images from their first boot.
                depends_on=list(node_roles),
                # The autoscaler owns the node count; autoscaling min/max stay managed (pitfalls 1, 2, 5).
                ignore_changes=["initialNodeCount", "nodeCount"],
            ),
        )


def cluster_physical_name(name: str) -> str:
    """GKE cluster names are at most 40 characters."""
    return naming.shorten(name, 40)


def initial_nodes_per_zone(pool: NodePoolSpec) -> int:
    """Nodes per zone at creation: the pool's minimum where its maximum allows, since the autoscaler
    does not scale up to a minimum by itself (pitfall 6). Ignored after creation (pitfall 5)."""
    return min(math.ceil(pool.min_nodes / ZONES), pool.max_nodes // ZONES)


def gke_taint(taint: Taint) -> gcp.container.NodePoolNodeConfigTaintArgs:
    return gcp.container.NodePoolNodeConfigTaintArgs(key=taint.key, value=taint.value, effect=GKE_EFFECTS[taint.effect])


def dns_endpoint(config: gcp.container.outputs.ClusterControlPlaneEndpointsConfig | None) -> str:
    """https://<the cluster's DNS endpoint>, which GKE always assigns."""
    host = config.dns_endpoint_config.endpoint if config and config.dns_endpoint_config else None
    if not host:
        raise ValueError("GKE returned no DNS endpoint (controlPlaneEndpointsConfig.dnsEndpointConfig.endpoint)")
    return f"https://{host}"


def gke_kubeconfig(context: str, endpoint: str) -> str:
    """kubectl access through gke-gcloud-auth-plugin: short-lived IAM tokens, nothing stored. The DNS
    endpoint serves a publicly trusted certificate, not one of the cluster CA, so no CA data (as
    `gcloud container clusters get-credentials --dns-endpoint` writes it)."""
    return exec_kubeconfig(context, endpoint, None, AUTH_PLUGIN, [], install_hint=AUTH_PLUGIN_HINT)
