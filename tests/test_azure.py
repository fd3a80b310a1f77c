"""What only the AKS cluster has, checked on what the program registers under the offline plan."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import uuid
from typing import Any

import pytest
import yaml

from components import azure
from infra.offline.mocks import azure as azure_mocks
from infra.offline.mocks.common import FAKE_CA
from infra.offline.plan import Plan
from tests.conftest import CLUSTER, cluster, plan_config, spec_plan
from tests.contract import unknown_paths

COMPONENT = "im-platform:azure:AksCluster"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
SUBNET = "azure-native:network:Subnet"
NAT_GATEWAY = "azure-native:network:NatGateway"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
WORKSPACE = "azure-native:operationalinsights:Workspace"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"

_PLANS: dict[str, Plan] = {}


def plan(variant: str = "prod") -> Plan:
    """The shared spec on Azure, and a few variants, planned once per test session."""
    if variant not in _PLANS:
        if variant == "prod":
            _PLANS[variant] = spec_plan("azure")
        elif variant == "dev":
            _PLANS[variant] = spec_plan("azure", environment="dev")
        elif variant == "private":
            _PLANS[variant] = spec_plan("azure", environment="dev", cluster_value=cluster(apiAllowedCidrs=[]))
        elif variant == "resized":
            pools = json.loads(json.dumps(CLUSTER["nodePools"]))
            pools["system"].update(minNodes=3, maxNodes=6)
            pools["gateway"].update(minNodes=5, maxNodes=60)
            _PLANS[variant] = spec_plan("azure", cluster_value=cluster(nodePools=pools))
        else:
            raise KeyError(variant)
    return _PLANS[variant]


def managed_cluster(p: Plan) -> dict[str, Any]:
    return p.one(MANAGED_CLUSTER)


def agent_pools(p: Plan) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["agentPoolName"]: r for r in p.of_type(AGENT_POOL)}


def by_urn(p: Plan, urn: str) -> dict[str, Any]:
    return next(r for r in p.resources if r["urn"] == urn)


# ---------------------------------------------------------------------------------------------
# Node pools (pitfalls 2, 3, 4).


def test_only_the_system_pool_is_inline_and_only_its_count_is_ignored() -> None:
    mc = managed_cluster(plan())
    profiles = mc["inputs"]["agentPoolProfiles"]
    assert [p["name"] for p in profiles] == ["system"]
    system = profiles[0]
    assert system["mode"] == "System"
    assert (system["enableAutoScaling"], system["minCount"], system["maxCount"], system["count"]) == (True, 2, 4, 2)
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert system["orchestratorVersion"] == "1.33"
    assert system["enableNodePublicIP"] is False
    assert system["vmSize"] == "Standard_D4s_v5"
    assert system["nodeLabels"] == {"im-platform/pool": "system"}
    assert system["vnetSubnetID"].endswith("/subnets/" + plan().one(SUBNET)["inputs"]["subnetName"])
    assert system["upgradeSettings"]["maxUnavailable"] == "0" and system["upgradeSettings"]["maxSurge"]
    assert mc["options"]["ignoreChanges"] == ["agentPoolProfiles[0].count"]


def test_user_pools_are_agent_pools_whose_count_starts_at_min_and_belongs_to_the_autoscaler() -> None:
    p = plan()
    pools = agent_pools(p)
    assert set(pools) == {"gateway", "worker"}
    subnet = p.one(SUBNET)["inputs"]["subnetName"]
    expected = {"gateway": (3, 40, "Standard_F8s_v2"), "worker": (0, 80, "Standard_D8s_v5")}
    for name, record in pools.items():
        inputs = record["inputs"]
        low, high, size = expected[name]
        assert inputs["mode"] == "User"
        assert (inputs["enableAutoScaling"], inputs["minCount"], inputs["maxCount"]) == (True, low, high)
        assert inputs["count"] == inputs["minCount"]
        assert record["options"]["ignoreChanges"] == ["count"]
        assert inputs["availabilityZones"] == ["1", "2", "3"]
        assert inputs["vmSize"] == size
        assert inputs["orchestratorVersion"] == "1.33"
        assert inputs["enableNodePublicIP"] is False
        assert inputs["vnetSubnetID"].endswith(f"/subnets/{subnet}")
        assert inputs["resourceName"] == managed_cluster(p)["inputs"]["resourceName"]
        assert inputs["nodeLabels"]["im-platform/pool"] == name
        assert re.fullmatch(r"[a-z][a-z0-9]{0,11}", inputs["agentPoolName"])
    gateway = pools["gateway"]["inputs"]
    assert gateway["nodeLabels"]["im-platform/tier"] == "gateway"
    assert gateway["nodeTaints"] == ["im-platform/tier=gateway:NoSchedule"]
    assert gateway["upgradeSettings"] == {"maxSurge": "33%", "maxUnavailable": "0", "drainTimeoutInMinutes": 30}


def test_min_and_max_edits_reach_every_pool_while_only_the_count_stays_ignored() -> None:
    p = plan("resized")
    mc = managed_cluster(p)
    system = mc["inputs"]["agentPoolProfiles"][0]
    assert (system["minCount"], system["maxCount"], system["count"]) == (3, 6, 3)
    assert mc["options"]["ignoreChanges"] == ["agentPoolProfiles[0].count"]
    gateway = agent_pools(p)["gateway"]
    assert (gateway["inputs"]["minCount"], gateway["inputs"]["maxCount"], gateway["inputs"]["count"]) == (5, 60, 5)
    assert gateway["options"]["ignoreChanges"] == ["count"]


def test_spot_pool_is_spot_priced_at_most_on_demand_and_marked_like_every_cloud() -> None:
    pools = agent_pools(plan())
    worker = pools["worker"]["inputs"]
    assert worker["scaleSetPriority"] == "Spot"
    assert worker["scaleSetEvictionPolicy"] == "Delete"
    assert worker["spotMaxPrice"] == -1
    assert worker["nodeLabels"]["im-platform/capacity"] == "spot"
    assert "im-platform/capacity=spot:NoSchedule" in worker["nodeTaints"]
    # What AKS puts on spot nodes anyway, declared so the pool does not drift.
    assert worker["nodeLabels"]["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in worker["nodeTaints"]
    # AKS rejects surge settings on spot pools.
    assert "upgradeSettings" not in worker
    gateway = pools["gateway"]["inputs"]
    assert "scaleSetPriority" not in gateway and "im-platform/capacity" not in gateway["nodeLabels"]


# ---------------------------------------------------------------------------------------------
# Cluster security and operations.


@pytest.mark.parametrize(("variant", "tier"), [("prod", "Standard"), ("dev", "Free")])
def test_sla_tier_only_in_prod(variant: str, tier: str) -> None:
    assert managed_cluster(plan(variant))["inputs"]["sku"] == {"name": "Base", "tier": tier}


def test_local_accounts_off_and_authorization_by_entra_id_and_azure_rbac() -> None:
    inputs = managed_cluster(plan())["inputs"]
    assert inputs["disableLocalAccounts"] is True
    assert inputs["enableRBAC"] is True
    aad = inputs["aadProfile"]
    assert aad["managed"] is True and aad["enableAzureRBAC"] is True
    assert aad["tenantID"] == azure_mocks.TENANT_ID
    assert inputs["kubernetesVersion"] == "1.33"
    assert inputs["identity"]["type"] == "UserAssigned"
    assert len(inputs["identity"]["userAssignedIdentities"]) == 1


def test_public_api_accepts_the_configured_ranges_and_the_nodes_egress() -> None:
    p = plan()
    access = managed_cluster(p)["inputs"]["apiServerAccessProfile"]
    ranges = access["authorizedIPRanges"]
    assert ranges[:-1] == CLUSTER["apiAllowedCidrs"], "exactly the configured ranges"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+/32", ranges[-1]), "plus the NAT gateway's address, for kubelets"
    assert access["enablePrivateCluster"] is False
    assert re.fullmatch(r"https://im-prod-azure-[0-9a-f]+\.hcp\.westeurope\.azmk8s\.io", p.outputs["endpoint"])


def test_no_allowed_ranges_makes_a_private_cluster_reached_on_its_private_fqdn() -> None:
    p = plan("private")
    access = managed_cluster(p)["inputs"]["apiServerAccessProfile"]
    assert access["enablePrivateCluster"] is True
    assert not access.get("authorizedIPRanges")
    assert p.outputs["endpoint"].startswith("https://")
    assert ".privatelink.westeurope.azmk8s.io" in p.outputs["endpoint"]


def test_secrets_are_envelope_encrypted_with_the_vault_key_once_the_identity_may_use_it() -> None:
    p = plan()
    mc = managed_cluster(p)
    kms = mc["inputs"]["securityProfile"]["azureKeyVaultKms"]
    vault = p.one(VAULT)["inputs"]
    key = p.one(KEY)["inputs"]
    assert kms["enabled"] is True
    assert kms["keyVaultNetworkAccess"] == "Public"
    # The versioned URI of this vault's key.
    assert re.fullmatch(rf"https://{vault['vaultName']}\.vault\.azure\.net/keys/{key['keyName']}/[0-9a-f]{{32}}",
                        kms["keyId"])
    assert key["vaultName"] == vault["vaultName"]
    assert key["properties"]["kty"] == "RSA"
    assert "expires" not in key["properties"].get("attributes", {})
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True and props["enableSoftDelete"] is True
    assert props["tenantId"] == azure_mocks.TENANT_ID

    identity_id = mc["inputs"]["identity"]["userAssignedIdentities"][0]
    crypto = [r for r in p.of_type(ROLE_ASSIGNMENT)
              if r["inputs"]["roleDefinitionId"].endswith("/roleDefinitions/" + azure.KEY_VAULT_CRYPTO_USER)]
    assert len(crypto) == 1
    role = crypto[0]["inputs"]
    assert role["scope"].endswith(f"/providers/Microsoft.KeyVault/vaults/{vault['vaultName']}")
    assert role["roleDefinitionId"].startswith(f"/subscriptions/{azure_mocks.SUBSCRIPTION_ID}/providers/")
    assert role["principalId"] == azure_mocks.guid("principal", identity_id)
    assert role["principalType"] == "ServicePrincipal"
    assert crypto[0]["urn"] in mc["options"]["dependsOn"]


def test_control_plane_identity_may_join_the_node_subnet_before_the_cluster_exists() -> None:
    p = plan()
    mc = managed_cluster(p)
    network = [r for r in p.of_type(ROLE_ASSIGNMENT)
               if r["inputs"]["roleDefinitionId"].endswith("/roleDefinitions/" + azure.NETWORK_CONTRIBUTOR)]
    assert len(network) == 1
    assert network[0]["inputs"]["scope"] == mc["inputs"]["agentPoolProfiles"][0]["vnetSubnetID"]
    assert network[0]["urn"] in mc["options"]["dependsOn"]


def test_workload_identity_and_oidc_issuer_are_on_and_exported() -> None:
    p = plan()
    inputs = managed_cluster(p)["inputs"]
    assert inputs["oidcIssuerProfile"] == {"enabled": True}
    assert inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    assert re.fullmatch(r"https://westeurope\.oic\.prod-aks\.azure\.com/[-0-9a-f]+/[-0-9a-f]+/", p.outputs["oidcIssuer"])


def test_egress_leaves_through_the_nat_gateway_only() -> None:
    p = plan()
    net = managed_cluster(p)["inputs"]["networkProfile"]
    assert net["outboundType"] == "userAssignedNATGateway"
    nat = p.one(NAT_GATEWAY)["inputs"]
    ip = p.one(PUBLIC_IP)["inputs"]
    subnet = p.one(SUBNET)["inputs"]
    assert nat["sku"] == {"name": "Standard"}
    assert ip["sku"]["name"] == "Standard" and ip["zones"] == ["1", "2", "3"]
    assert [a["id"] for a in nat["publicIpAddresses"]] == [
        f"/subscriptions/{azure_mocks.SUBSCRIPTION_ID}/resourceGroups/{ip['resourceGroupName']}"
        f"/providers/Microsoft.Network/publicIPAddresses/{ip['publicIpAddressName']}"]
    assert subnet["natGateway"]["id"].endswith(f"/natGateways/{nat['natGatewayName']}")
    assert subnet["defaultOutboundAccess"] is False
    assert ipaddress.ip_network(subnet["addressPrefix"]).subnet_of(ipaddress.ip_network("10.20.0.0/16"))  # type: ignore[arg-type]
    profiles = managed_cluster(p)["inputs"]["agentPoolProfiles"] + [r["inputs"] for r in p.of_type(AGENT_POOL)]
    assert len(profiles) == 3 and all(pr["enableNodePublicIP"] is False for pr in profiles)


def test_overlay_network_with_enforced_cilium_policy_and_configured_ranges() -> None:
    net = managed_cluster(plan())["inputs"]["networkProfile"]
    assert (net["networkPlugin"], net["networkPluginMode"]) == ("azure", "overlay")
    assert (net["networkDataplane"], net["networkPolicy"]) == ("cilium", "cilium")
    assert net["podCidr"] == "100.64.0.0/14"
    assert net["serviceCidr"] == "172.20.0.0/20"
    assert net["dnsServiceIP"] == "172.20.0.10"


def test_upgrades_and_autoscaler_are_managed() -> None:
    inputs = managed_cluster(plan())["inputs"]
    assert inputs["autoUpgradeProfile"] == {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"}
    scaler = inputs["autoScalerProfile"]
    assert scaler["balanceSimilarNodeGroups"] == "true"
    assert scaler["expander"] == "least-waste"
    assert scaler["scaleDownUnneededTime"] and scaler["scaleDownDelayAfterAdd"]


def test_control_plane_audit_logs_go_to_log_analytics() -> None:
    p = plan()
    setting = p.one(DIAGNOSTIC_SETTING)["inputs"]
    cluster_name = managed_cluster(p)["inputs"]["resourceName"]
    workspace = p.one(WORKSPACE)["inputs"]["workspaceName"]
    assert setting["resourceUri"].endswith(f"/providers/Microsoft.ContainerService/managedClusters/{cluster_name}")
    assert setting["workspaceId"].endswith(f"/providers/Microsoft.OperationalInsights/workspaces/{workspace}")
    enabled = {log["category"] for log in setting["logs"] if log["enabled"]}
    assert enabled == {"kube-audit", "kube-audit-admin", "kube-apiserver"}


def test_stateful_resources_are_protected_in_prod_only() -> None:
    protected = {r["type"] for r in plan("prod").resources if r["options"]["protect"]}
    assert protected == {MANAGED_CLUSTER, VAULT, KEY, WORKSPACE}
    assert not [r["name"] for r in plan("dev").resources if r["options"]["protect"]]


# ---------------------------------------------------------------------------------------------
# The plan as a whole.


@pytest.mark.parametrize("variant", ["prod", "dev", "private"])
def test_nothing_in_the_plan_is_unknown(variant: str) -> None:
    p = plan(variant)
    assert len(p.resources) >= 15
    found = [f"{r['name']}{q}" for r in p.resources for q in unknown_paths(r["inputs"])]
    found += [f"outputs{q}" for q in unknown_paths(p.outputs)]
    found += [f"{urn}{q}" for urn, out in p.component_outputs.items() for q in unknown_paths(out)]
    assert not found
    for key in ("clusterName", "endpoint", "oidcIssuer", "kubeconfig", "nodePools"):
        assert p.outputs.get(key), key
    assert p.outputs["kubeconfig"] == "[secret]"


@pytest.mark.parametrize("variant", ["prod", "private"])
def test_every_child_hangs_under_the_aks_component(variant: str) -> None:
    p = plan(variant)
    component = p.one(COMPONENT)
    children = [r for r in p.resources if r is not component]
    assert len(children) >= 15
    for record in children:
        seen, parent = [], record["parent"]
        while parent and parent != component["urn"]:
            seen.append(parent)
            parent = by_urn(p, parent)["parent"] if any(r["urn"] == parent for r in p.resources) else None
        assert parent == component["urn"], f"{record['urn']} is not under {component['urn']} (via {seen})"


def test_taggable_resources_carry_the_fixed_tags() -> None:
    tagged = [r for r in plan().resources if "tags" in r["inputs"]]
    assert len(tagged) >= 10
    for record in tagged:
        assert record["inputs"]["tags"] == {"environment": "prod", "stack": "prod-azure", "managed-by": "im-platform"}


def test_physical_names_fit_azure_limits() -> None:
    p = plan()
    vault = p.one(VAULT)["inputs"]["vaultName"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", vault) and "--" not in vault
    assert vault == azure.key_vault_name("im-prod-azure", azure_mocks.SUBSCRIPTION_ID, "im-platform", "prod-azure")
    inputs = managed_cluster(p)["inputs"]
    assert len(inputs["resourceName"]) <= 63 and len(inputs["dnsPrefix"]) <= 54
    assert len(inputs["nodeResourceGroup"]) <= 80
    roles = p.of_type(ROLE_ASSIGNMENT)
    assert len(roles) == 3
    for role in roles:
        inputs = role["inputs"]
        role_id = inputs["roleDefinitionId"].rsplit("/", 1)[1]
        assert inputs["roleAssignmentName"] == azure.role_assignment_name(inputs["scope"], inputs["principalId"], role_id)


def test_kubeconfig_uses_kubelogin_and_only_stable_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    real = azure.exec_kubeconfig

    def spy(*args: Any, **kwargs: Any) -> str:
        text = real(*args, **kwargs)
        calls.append(json.loads(text))
        return text

    monkeypatch.setattr(azure, "exec_kubeconfig", spy)
    p = plan_config("azure", stack="spy-azure")
    assert len(calls) == 1
    config = calls[0]
    (entry,) = config["clusters"]
    assert entry["cluster"]["server"] == p.outputs["endpoint"]
    assert entry["cluster"]["certificate-authority-data"] == FAKE_CA
    (user,) = config["users"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"] == ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    assert "token" not in user["user"]


# ---------------------------------------------------------------------------------------------
# Pure helpers.


def test_key_vault_names_are_short_valid_stable_and_distinct() -> None:
    sub = azure_mocks.SUBSCRIPTION_ID
    long = "very-long-stack-name-" * 3
    names = {azure.key_vault_name(f"im-{stack}", sub, "im-platform", stack) for stack in ("prod-azure", "dev-azure", long)}
    names.add(azure.key_vault_name("im-prod-azure", "another-subscription", "im-platform", "prod-azure"))
    assert len(names) == 4
    for name in names:
        assert 3 <= len(name) <= 24 and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name) and "--" not in name
    assert azure.key_vault_name("c--d", sub, "p", "s") == azure.key_vault_name("c--d", sub, "p", "s")
    assert "--" not in azure.key_vault_name("c--d", sub, "p", "s")
    assert azure.key_vault_name("9lives", sub, "p", "s").startswith("kv")


def test_role_assignment_names_are_deterministic_guids_of_the_binding() -> None:
    first = azure.role_assignment_name("/subscriptions/s/x", "principal", "role")
    assert str(uuid.UUID(first)) == first
    assert first == azure.role_assignment_name("/subscriptions/s/x", "principal", "role")
    assert first != azure.role_assignment_name("/subscriptions/s/y", "principal", "role")
    assert first != azure.role_assignment_name("/subscriptions/s/x", "other", "role")


def test_network_helpers() -> None:
    assert azure.dns_service_ip("172.20.0.0/20") == "172.20.0.10"
    assert azure.node_subnet_cidr("10.20.0.0/16") == "10.20.0.0/17"
    assert azure.node_subnet_cidr("10.8.0.0/20") == "10.8.0.0/21"


def test_ca_is_read_from_an_aks_credential_kubeconfig() -> None:
    doc = {"clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority-data": "Q0E="}}]}
    encoded = base64.b64encode(yaml.safe_dump(doc).encode()).decode()
    assert azure.ca_from_kubeconfig(encoded) == "Q0E="


def test_deployer_gets_cluster_admin_through_azure_rbac() -> None:
    p = plan()
    admin = next(r for r in p.of_type(ROLE_ASSIGNMENT) if r["name"].endswith("deployer-cluster-admin"))
    assert admin["inputs"]["roleDefinitionId"].endswith("/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")
    # The scope is the cluster's own ARM id (what the mock, like ARM, gives the ManagedCluster),
    # not its resource group or the subscription: the grant reaches this cluster only.
    mc = managed_cluster(p)["inputs"]
    group = p.one("azure-native:resources:ResourceGroup")["inputs"]["resourceGroupName"]
    assert admin["inputs"]["scope"] == (f"/subscriptions/{azure_mocks.SUBSCRIPTION_ID}/resourceGroups/{group}"
                                        f"/providers/Microsoft.ContainerService/managedClusters/{mc['resourceName']}")
    assert admin["inputs"]["principalId"] == azure_mocks.CLIENT_OBJECT_ID, "the identity running `pulumi up`"
    assert admin["inputs"]["principalType"] == "User", "a person signed in with az login"
    ci = spec_plan("azure", extra={"azure-native:clientId": "00000000-0000-0000-0000-000000000001"})
    admin = next(r for r in ci.of_type(ROLE_ASSIGNMENT) if r["name"].endswith("deployer-cluster-admin"))
    assert admin["inputs"]["principalType"] == "ServicePrincipal", "CI signs in as a service principal"


def test_autoscaler_waits_for_the_slowest_drain() -> None:
    profile = managed_cluster(plan())["inputs"]["autoScalerProfile"]
    assert profile["maxGracefulTerminationSec"] == "900"
    services = {"gateway": {"image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "pool": "gateway", "cpu": "1",
                            "memory": "2Gi", "replicas": {"min": 2, "max": 4}, "drainSeconds": 1800}}
    slow = spec_plan("azure", extra={"im-platform:services": services})
    profile = managed_cluster(slow)["inputs"]["autoScalerProfile"]
    assert int(profile["maxGracefulTerminationSec"]) > 1800
