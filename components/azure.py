"""The IM cluster on Azure: AKS in a private node subnet behind a NAT gateway, nodes over three
zones, secrets envelope-encrypted with a Key Vault key, control-plane audit logs in Log Analytics."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import uuid
from typing import Any

import pulumi
import yaml
from pulumi_azure_native import (
    authorization,
    containerservice,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    resources,
)

from components import naming
from components.azure_access import kubeconfig_once_allowed
from components.base import ClusterComponent, ClusterOutputs, StackKey, exec_kubeconfig
from components.spec import ClusterSpec, NodePoolSpec

ZONES = ["1", "2", "3"]
# Built-in role definition ids (the same in every tenant).
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
# im-platform:cluster.viewers: read-only, no Secrets.
AKS_RBAC_READER = "7f6c6a51-bcf8-42ba-9220-52d62157d7db"
# Lets admins and viewers fetch the (Entra-only) kubeconfig with `az aks get-credentials`; it holds
# no credentials, since local accounts are off.
AKS_CLUSTER_USER = "4abbcc35-e782-43d8-92c5-2d3abe4cd4d3"
ACCESS_ROLES = {"admin": AKS_RBAC_CLUSTER_ADMIN, "viewer": AKS_RBAC_READER}
# The role assignment's principalType for each form of im-platform:cluster.admins / viewers entry.
AZURE_PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}
# The AKS AAD server application every managed-AAD cluster accepts tokens for.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
# AKS labels and taints every spot node itself; declaring them keeps the pool free of a perpetual
# diff (the API returns them whether or not they were asked for).
AKS_SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")
AKS_SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
AUDIT_LOG_CATEGORIES = ("kube-audit", "kube-audit-admin", "kube-apiserver")
KEY_VAULT_NAME_MAX = 24

_KV_INVALID = re.compile(r"[^a-z0-9-]+|-{2,}")


def key_vault_name(component: str, subscription_id: str, project: str, stack: str) -> str:
    """A Key Vault name (3-24 letters, digits, single hyphens; unique in all of Azure): the component
    name cut short plus a stable hash of where it lives, never a random suffix. The subscription is
    in the hash so two organisations running this program with the same stack names never collide."""
    digest = hashlib.sha256(f"{subscription_id}/{project}/{stack}/{component}".encode()).hexdigest()[:6]
    suffix = f"-kv-{digest}"
    base = _KV_INVALID.sub("-", component.lower()).strip("-")
    if not base[:1].isalpha():
        base = f"kv{base}"
    base = base[: KEY_VAULT_NAME_MAX - len(suffix)].rstrip("-")
    return f"{base}{suffix}"


def role_assignment_name(scope: str, principal_id: str, role_id: str) -> str:
    """Role assignment names are GUIDs unique in the whole tenant: derive one from what it binds (as
    Bicep's guid(scope, principal, role) does), stable run after run; a new binding gets a new name,
    so a replacement never collides with the assignment it replaces."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"im-platform:{scope.lower()}/{principal_id}/{role_id}"))


def node_subnet_cidr(network_cidr: str) -> str:
    """Nodes take the first half of the VNet (pods live in the overlay); the rest stays free for
    private endpoints or API server VNet integration later."""
    net = ipaddress.ip_network(network_cidr)
    return str(next(net.subnets(prefixlen_diff=1)))


def dns_service_ip(service_cidr: str) -> str:
    return str(ipaddress.ip_network(service_cidr)[10])


def ca_from_kubeconfig(encoded: str) -> str:
    """The CA data of the first cluster in a base64-encoded kubeconfig (AKS credential format)."""
    doc = yaml.safe_load(base64.b64decode(encoded))
    return str(doc["clusters"][0]["cluster"]["certificate-authority-data"])


def _surge() -> containerservice.AgentPoolUpgradeSettingsArgs:
    # Surge new nodes before draining old ones and never take one away first: capacity (and open
    # IM connections' new homes) exists throughout an upgrade.
    return containerservice.AgentPoolUpgradeSettingsArgs(
        max_surge="33%", max_unavailable="0", drain_timeout_in_minutes=30)


class AksCluster(ClusterComponent):
    TYPE = "im-platform:azure:AksCluster"

    # The resource group that holds the cluster: other resources of the stack go beside it.
    resource_group_name: pulumi.Output[str]

    def _build(self, name: str, spec: ClusterSpec) -> ClusterOutputs:
        location = spec.region
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        group = resources.ResourceGroup(
            naming.child_name(name, "rg"),
            resource_group_name=naming.physical_name(name, "rg", max_len=90),
            location=location,
            tags=self.tags,
            opts=self.opts(),
        )
        rg = group.name
        self.resource_group_name = rg

        subnet, egress_ip = self._network(name, spec, rg)

        identity = managedidentity.UserAssignedIdentity(
            naming.child_name(name, "control-plane"),
            resource_name_=naming.physical_name(name, "control-plane", max_len=128),
            resource_group_name=rg,
            location=location,
            tags=self.tags,
            opts=self.opts(),
        )
        # With its own VNet, the control-plane identity must be able to join nodes to the subnet
        # before the cluster exists (AKS checks it at creation).
        subnet_role = self._role(name, "subnet-network-contributor", client, subnet.id, identity.principal_id,
                                 NETWORK_CONTRIBUTOR)
        key, vault, vault_role = self._kms_key(name, spec, rg, client, identity)
        workspace = operationalinsights.Workspace(
            naming.child_name(name, "logs"),
            workspace_name=naming.physical_name(name, "logs", max_len=63),
            resource_group_name=rg,
            location=location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=90 if spec.is_prod else 30,
            tags=self.tags,
            opts=self.opts(protect_in_prod=True),
        )

        cluster = self._cluster(name, spec, rg, client, subnet, egress_ip, identity, key,
                                depends_on=[subnet_role, vault_role])
        # The managed Prometheus store's association and KEDA's federation name it (components/metrics/azure.py).
        self.aks = cluster
        # Local accounts are off, so Azure RBAC is the only way in: whoever runs `pulumi up` gets
        # cluster admin, as EKS gives its creator, so the program's Kubernetes provider can deploy.
        deployer_admin = self._role(name, "deployer-cluster-admin", client, cluster.id, client.object_id,
                                    AKS_RBAC_CLUSTER_ADMIN,
                                    principal_type="ServicePrincipal" if spec.deployer_is_service_principal else "User")
        self._access(name, spec, client, cluster.id)

        monitor.DiagnosticSetting(
            naming.child_name(name, "audit"),
            name="control-plane-audit",
            resource_uri=cluster.id,
            workspace_id=workspace.id,
            # Resource-specific tables (AKSAudit, AKSControlPlane) instead of AzureDiagnostics.
            log_analytics_destination_type="Dedicated",
            logs=[monitor.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in AUDIT_LOG_CATEGORIES],
            opts=self.opts(),
        )

        # The system pool is inline: the cluster itself brings up its nodes.
        pools: list[pulumi.Resource] = [cluster]
        pools += [self._user_pool(name, spec, pool, rg, cluster, subnet) for pool in spec.user_pools]

        endpoint = (cluster.fqdn if spec.api_public else cluster.private_fqdn).apply(lambda h: f"https://{h}")
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=rg, resource_name=cluster.name, opts=pulumi.InvokeOutputOptions(parent=self))
        ca_data = credentials.kubeconfigs.apply(lambda kcs: ca_from_kubeconfig(kcs[0].value))
        # Server, CA and the kubelogin exec plugin only: nothing that changes between runs, so the
        # Kubernetes provider reading it is not replaced (pitfall 7); no static token (pitfall 8).
        # The assignment's id takes no part in the text; it makes the kubeconfig (and so the
        # Kubernetes provider) wait for the grant, then for Azure RBAC to propagate to the cluster.
        kubeconfig: pulumi.Output[str] = pulumi.Output.all(cluster.name, endpoint, ca_data, deployer_admin.id).apply(
            lambda args: exec_kubeconfig(
                args[0], args[1], args[2],
                command="kubelogin",
                args=["get-token", "--login", "azurecli", "--server-id", AKS_AAD_SERVER_ID],
                install_hint="Install kubelogin: https://azure.github.io/kubelogin/install.html",
            )).apply(kubeconfig_once_allowed)
        # Enabled above, so the profile and its issuer are always there once the cluster exists.
        oidc_issuer = cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")
        return ClusterOutputs(
            node_pool_resources=pools,
            api_access=[deployer_admin],
            cluster_name=cluster.name,
            endpoint=endpoint,
            kubeconfig=kubeconfig,
            oidc_issuer=oidc_issuer,
            key=StackKey(id=key.id, vault_uri=vault.properties.apply(lambda p: p.vault_uri or ""),
                         name=key.name, vault_id=vault.id),
        )

    # -----------------------------------------------------------------------------------------

    def _network(self, name: str, spec: ClusterSpec,
                 rg: pulumi.Output[str]) -> tuple[network.Subnet, network.PublicIPAddress]:
        vnet = network.VirtualNetwork(
            naming.child_name(name, "vnet"),
            virtual_network_name=naming.physical_name(name, "vnet", max_len=64),
            resource_group_name=rg,
            location=spec.region,
            address_space=network.AddressSpaceArgs(address_prefixes=[spec.network_cidr]),
            tags=self.tags,
            opts=self.opts(),
        )
        egress_ip = network.PublicIPAddress(
            naming.child_name(name, "nat-ip"),
            public_ip_address_name=naming.physical_name(name, "nat-ip", max_len=80),
            resource_group_name=rg,
            location=spec.region,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            # Zone-redundant: the egress address survives the loss of a zone.
            zones=ZONES,
            tags=self.tags,
            opts=self.opts(),
        )
        nat = network.NatGateway(
            naming.child_name(name, "nat"),
            nat_gateway_name=naming.physical_name(name, "nat", max_len=80),
            resource_group_name=rg,
            location=spec.region,
            sku=network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[network.SubResourceArgs(id=egress_ip.id)],
            idle_timeout_in_minutes=4,
            tags=self.tags,
            opts=self.opts(),
        )
        subnet = network.Subnet(
            naming.child_name(name, "nodes"),
            subnet_name=naming.physical_name(name, "nodes", max_len=80),
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=node_subnet_cidr(spec.network_cidr),
            nat_gateway=network.SubResourceArgs(id=nat.id),
            # Private subnet: egress only through the NAT gateway, never Azure's implicit SNAT.
            default_outbound_access=False,
            opts=self.opts(),
        )
        return subnet, egress_ip

    def _access(self, name: str, spec: ClusterSpec, client: pulumi.Output[Any], scope: pulumi.Output[str]) -> None:
        """Per admin or viewer (`<type>:<object id>`), on this cluster only: its AKS RBAC role, and
        the Cluster User role to fetch the kubeconfig."""
        for role, principals in (("admin", spec.admins), ("viewer", spec.viewers)):
            for principal in principals:
                kind, _, object_id = principal.partition(":")
                key = naming.principal_key(object_id)
                for suffix, role_id in ((key, ACCESS_ROLES[role]), (f"{key}-user", AKS_CLUSTER_USER)):
                    self._role(name, f"{role}-{suffix}", client, scope, object_id, role_id,
                               principal_type=AZURE_PRINCIPAL_TYPES[kind])

    def _role(self, name: str, suffix: str, client: pulumi.Output[Any], scope: pulumi.Output[str],
              principal_id: pulumi.Input[str], role_id: str,
              principal_type: str = "ServicePrincipal") -> authorization.RoleAssignment:
        return authorization.RoleAssignment(
            naming.child_name(name, suffix),
            role_assignment_name=pulumi.Output.all(scope, principal_id).apply(
                lambda a: role_assignment_name(a[0], a[1], role_id)),
            scope=scope,
            principal_id=principal_id,
            # A brand-new identity may not have replicated yet; the type skips the directory lookup.
            principal_type=principal_type,
            role_definition_id=client.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"),
            opts=self.opts(),
        )

    def _kms_key(self, name: str, spec: ClusterSpec, rg: pulumi.Output[str], client: pulumi.Output[Any],
                 identity: managedidentity.UserAssignedIdentity) -> tuple[keyvault.Key, keyvault.Vault, authorization.RoleAssignment]:
        vault = keyvault.Vault(
            naming.child_name(name, "kms-vault"),
            vault_name=client.subscription_id.apply(lambda sub: key_vault_name(name, sub, spec.project, spec.stack)),
            resource_group_name=rg,
            location=spec.region,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=client.tenant_id,
                sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                # Losing this key makes every secret in etcd unreadable: no purge, even by admins.
                enable_purge_protection=True,
                soft_delete_retention_in_days=90 if spec.is_prod else 7,
                # AKS KMS with a public vault cannot pass a vault firewall; access is RBAC only.
                public_network_access="Enabled",
            ),
            tags=self.tags,
            opts=self.opts(protect_in_prod=True),
        )
        key = keyvault.Key(
            naming.child_name(name, "kms-key"),
            key_name=naming.physical_name(name, "kms", max_len=127),
            vault_name=vault.name,
            resource_group_name=rg,
            properties=keyvault.KeyPropertiesArgs(
                kty="RSA",
                key_size=2048,
                key_ops=["encrypt", "decrypt", "wrapKey", "unwrapKey"],
                # No expiry: an expired KEK stops the API server from reading secrets.
                attributes=keyvault.KeyAttributesArgs(enabled=True),
            ),
            tags=self.tags,
            opts=self.opts(protect_in_prod=True),
        )
        role = self._role(name, "kms-crypto-user", client, vault.id, identity.principal_id, KEY_VAULT_CRYPTO_USER)
        return key, vault, role

    def _cluster(self, name: str, spec: ClusterSpec, rg: pulumi.Output[str], client: pulumi.Output[Any],
                 subnet: network.Subnet, egress_ip: network.PublicIPAddress,
                 identity: managedidentity.UserAssignedIdentity, key: keyvault.Key,
                 depends_on: list[pulumi.Resource]) -> containerservice.ManagedCluster:
        system = spec.system_pool
        if spec.api_public:
            # The nodes reach a public API server through the NAT gateway, so its address must be
            # allowed too, or kubelets cannot register.
            ranges = egress_ip.ip_address.apply(lambda ip: [*spec.api_allowed_cidrs, f"{ip}/32"])
            api_access = containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=ranges, enable_private_cluster=False)
        else:
            api_access = containerservice.ManagedClusterAPIServerAccessProfileArgs(enable_private_cluster=True)
        return containerservice.ManagedCluster(
            naming.child_name(name, "aks"),
            resource_name_=naming.physical_name(name, max_len=63),
            resource_group_name=rg,
            location=spec.region,
            dns_prefix=naming.physical_name(name, max_len=54),
            node_resource_group=naming.physical_name(name, "nodes-rg", max_len=80),
            kubernetes_version=spec.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(
                name="Base", tier="Standard" if spec.is_prod else "Free"),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id]),
            disable_local_accounts=True,
            enable_rbac=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True, enable_azure_rbac=True, tenant_id=client.tenant_id),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            # Managed Prometheus (the ama-metrics collectors) where a tier scales on its load and the
            # store is Azure's: they scrape the tiers' PodMonitors into the Azure Monitor workspace.
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True),
            ) if spec.scaled_services and spec.monitoring.managed else None,
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
                azure_key_vault_kms=containerservice.AzureKeyVaultKmsArgs(
                    enabled=True,
                    key_id=key.key_uri_with_version,
                    key_vault_network_access="Public",
                ),
            ),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                pod_cidr=spec.pod_cidr,
                service_cidr=spec.service_cidr,
                dns_service_ip=dns_service_ip(spec.service_cidr),
                load_balancer_sku="standard",
                outbound_type="userAssignedNATGateway",
            ),
            api_server_access_profile=api_access,
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel="patch", node_os_upgrade_channel="NodeImage"),
            auto_scaler_profile=containerservice.ManagedClusterPropertiesAutoScalerProfileArgs(
                balance_similar_node_groups="true",
                expander="least-waste",
                # IM gateways hold long-lived connections: scale down slowly and let them drain.
                scale_down_unneeded_time="15m",
                scale_down_delay_after_add="15m",
                scale_down_utilization_threshold="0.5",
                # Long enough for the slowest tier's drain, or a scale-down cuts its connections.
                max_graceful_termination_sec=str(max(900, spec.max_termination_grace_seconds)),
                # emptyDir scratch space must not pin a node forever.
                skip_nodes_with_local_storage="false",
                max_node_provision_time="15m",
            ),
            agent_pool_profiles=[containerservice.ManagedClusterAgentPoolProfileArgs(
                name=system.name, mode="System", **self._pool_properties(spec, system, subnet))],
            tags=self.tags,
            opts=self.opts(
                protect_in_prod=True,
                depends_on=depends_on,
                # Autoscaler owns the count (pitfall 3); min/max edits still apply (pitfall 2), each as a cluster-wide PUT (pitfall 4).
                ignore_changes=["agentPoolProfiles[0].count"],
            ),
        )

    def _pool_properties(self, spec: ClusterSpec, pool: NodePoolSpec, subnet: network.Subnet) -> dict[str, Any]:
        """What the inline system profile and an AgentPool share: the same keys on both."""
        labels = pool.node_labels
        taints = [t.render() for t in pool.node_taints]
        spot: dict[str, Any] = {}
        if pool.spot:
            labels = {**labels, AKS_SPOT_LABEL[0]: AKS_SPOT_LABEL[1]}
            taints.append(AKS_SPOT_TAINT)
            spot = {
                "scale_set_priority": "Spot",
                "scale_set_eviction_policy": "Delete",
                # Pay up to the on-demand price: evicted for capacity, never for price.
                "spot_max_price": -1,
            }
        return {
            "type": "VirtualMachineScaleSets",
            "os_type": "Linux",
            "vm_size": pool.machine_type,
            "enable_auto_scaling": True,
            "min_count": pool.min_nodes,
            "max_count": pool.max_nodes,
            # The API requires a count; the autoscaler owns it after creation (pitfall 3).
            "count": pool.min_nodes,
            "availability_zones": ZONES,
            "vnet_subnet_id": subnet.id,
            "orchestrator_version": spec.kubernetes_version,
            "node_labels": labels,
            "node_taints": taints or None,
            "enable_node_public_ip": False,
            # AKS rejects surge settings on spot pools ("Spot pools can't set max surge").
            "upgrade_settings": None if pool.spot else _surge(),
            "tags": self.tags,
            **spot,
        }

    def _user_pool(self, name: str, spec: ClusterSpec, pool: NodePoolSpec, rg: pulumi.Output[str],
                   cluster: containerservice.ManagedCluster, subnet: network.Subnet) -> containerservice.AgentPool:
        return containerservice.AgentPool(
            naming.child_name(name, "pool", pool.name),
            agent_pool_name=pool.name,
            resource_name_=cluster.name,
            resource_group_name=rg,
            mode="User",
            **self._pool_properties(spec, pool, subnet),
            opts=self.opts(ignore_changes=["count"]),
        )
