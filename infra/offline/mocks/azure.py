"""Computed outputs of the azure-native resources and invokes the program uses.

ARM ids follow `/subscriptions/<sub>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>`, GUIDs
and addresses derive from the resource's name, so the same program gives the same plan every run.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import yaml
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from infra.offline.mocks.common import FAKE_CA, autoname, config_value, digest

SUBSCRIPTION_ID = "8f2b6d1e-4c3a-4b7e-9a51-2d6c0e9f4a10"
TENANT_ID = "3c9e7a52-1f08-4d6b-8e2a-7b45c1d09e3f"
# The identity the deployment runs as (Pulumi's client config).
CLIENT_ID = "5a1d3e9c-72b4-4f60-a8d3-0e6f2b9c1d47"
CLIENT_OBJECT_ID = "b7c40e21-9d3f-4a85-b6e1-4f2a8c0d5e93"


def location() -> str:
    return config_value("azure-native:location", "westeurope")


def guid(*parts: str) -> str:
    return str(uuid.UUID(digest("guid", *parts, length=32)))


def _name(args: MockResourceArgs, key: str) -> str:
    return autoname(args, key)


def _group_id(rg: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}"


def _arm_id(args: MockResourceArgs, provider_path: str) -> str:
    return f"{_group_id(str(args.inputs['resourceGroupName']))}/providers/{provider_path}"


def _loc(args: MockResourceArgs) -> str:
    return str(args.inputs.get("location") or location())


def _resource_group(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "resourceGroupName")
    return _group_id(name), {"name": name, "location": _loc(args), "type": "Microsoft.Resources/resourceGroups",
                             "provisioningState": "Succeeded"}


def _simple(provider_type: str, name_key: str, extra: Any = None) -> Any:
    """A resource whose id is `<rg>/providers/<provider_type>/<name>` plus a few computed fields."""
    def fn(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = _name(args, name_key)
        rid = _arm_id(args, f"{provider_type}/{name}")
        out: dict[str, Any] = {"name": name, "location": _loc(args), "type": provider_type,
                               "provisioningState": "Succeeded", "etag": f'W/"{guid(rid)}"'}
        if extra:
            out.update(extra(args, name, rid))
        return rid, out
    return fn


def _vnet(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    return {"resourceGuid": guid(rid), "subnets": []}


def _public_ip(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    octets = bytes.fromhex(digest("ip", rid, length=6))
    return {"ipAddress": f"20.{octets[0]}.{octets[1]}.{octets[2] or 1}", "resourceGuid": guid(rid)}


def _nat(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    return {"resourceGuid": guid(rid)}


def _subnet(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "subnetName")
    vnet = str(args.inputs["virtualNetworkName"])
    rid = _arm_id(args, f"Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}")
    return rid, {"name": name, "type": "Microsoft.Network/virtualNetworks/subnets",
                 "provisioningState": "Succeeded", "etag": f'W/"{guid(rid)}"'}


def _identity(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    return {"principalId": guid("principal", rid), "clientId": guid("client", rid), "tenantId": TENANT_ID}


def _vault(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    # `properties` is an input too: keep what the program set and add what Azure computes.
    properties = dict(args.inputs.get("properties") or {})
    properties.update({"vaultUri": f"https://{name}.vault.azure.net/", "provisioningState": "Succeeded",
                       "hsmPoolResourceId": "", "privateEndpointConnections": []})
    return {"properties": properties}


def _key(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "keyName")
    vault = str(args.inputs["vaultName"])
    rid = _arm_id(args, f"Microsoft.KeyVault/vaults/{vault}/keys/{name}")
    props = args.inputs.get("properties") or {}
    uri = f"https://{vault}.vault.azure.net/keys/{name}"
    return rid, {
        "name": name, "type": "Microsoft.KeyVault/vaults/keys", "location": location(),
        "keyUri": uri, "keyUriWithVersion": f"{uri}/{digest('key-version', rid, length=32)}",
        "kty": props.get("kty", "RSA"), "keySize": props.get("keySize", 2048), "keyOps": props.get("keyOps", []),
        "attributes": {**(props.get("attributes") or {}), "created": 1767225600, "updated": 1767225600,
                       "recoveryLevel": "Recoverable"},
    }


def _role_assignment(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "roleAssignmentName")
    scope = str(args.inputs["scope"])
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", {
        "name": name, "type": "Microsoft.Authorization/roleAssignments",
        "createdBy": CLIENT_OBJECT_ID, "createdOn": "2026-01-01T00:00:00Z",
    }


def _workspace(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    return {"customerId": guid("workspace", rid), "createdDate": "2026-01-01T00:00:00Z"}


def _diagnostic_setting(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "name")
    return f"{args.inputs['resourceUri']}/providers/Microsoft.Insights/diagnosticSettings/{name}", {
        "name": name, "type": "Microsoft.Insights/diagnosticSettings"}


def cluster_fqdn(resource_name: str, dns_prefix: str, private: bool) -> str:
    tail = f"{guid('private-zone', resource_name)}.privatelink" if private else "hcp"
    return f"{dns_prefix}-{digest('fqdn', resource_name, length=8)}.{tail}.{location()}.azmk8s.io"


def _managed_cluster(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "resourceName")
    rid = _arm_id(args, f"Microsoft.ContainerService/managedClusters/{name}")
    version = str(args.inputs.get("kubernetesVersion") or "1.33")
    dns_prefix = str(args.inputs.get("dnsPrefix") or name)
    private = bool((args.inputs.get("apiServerAccessProfile") or {}).get("enablePrivateCluster"))
    out: dict[str, Any] = {
        "name": name, "type": "Microsoft.ContainerService/ManagedClusters", "location": _loc(args),
        "provisioningState": "Succeeded", "powerState": {"code": "Running"}, "maxAgentPools": 100,
        "currentKubernetesVersion": f"{version}.3",
        # Like AKS, a private cluster keeps a public FQDN that resolves to the private address.
        "fqdn": cluster_fqdn(name, dns_prefix, private=False),
        "azurePortalFQDN": f"{dns_prefix}-{digest('portal', name, length=8)}.portal.hcp.{location()}.azmk8s.io",
        "resourceUID": digest("uid", rid, length=24),
        "oidcIssuerProfile": {**(args.inputs.get("oidcIssuerProfile") or {}),
                              "issuerURL": f"https://{location()}.oic.prod-aks.azure.com/{TENANT_ID}/{guid('oidc', rid)}/"},
        "identityProfile": {"kubeletidentity": {
            "resourceId": f"{_group_id(str(args.inputs.get('nodeResourceGroup') or 'MC_' + name))}/providers/"
                          f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
            "clientId": guid("kubelet-client", rid), "objectId": guid("kubelet-object", rid)}},
        "agentPoolProfiles": [
            {**p, "currentOrchestratorVersion": f"{version}.3", "provisioningState": "Succeeded",
             "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202601.01.0", "powerState": {"code": "Running"}}
            for p in args.inputs.get("agentPoolProfiles") or []
        ],
    }
    out.update(_assigned_identities(args))
    if private:
        out["privateFQDN"] = cluster_fqdn(name, dns_prefix, private=True)
    return rid, out


def _agent_pool(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "agentPoolName")
    cluster = str(args.inputs["resourceName"])
    rid = _arm_id(args, f"Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{name}")
    version = str(args.inputs.get("orchestratorVersion") or "1.33")
    return rid, {"name": name, "type": "Microsoft.ContainerService/managedClusters/agentPools",
                 "provisioningState": "Succeeded", "currentOrchestratorVersion": f"{version}.3",
                 "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202601.01.0", "powerState": {"code": "Running"},
                 "eTag": guid("etag", rid)}


def _storage_account(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    blob = f"https://{name}.blob.core.windows.net/"
    return {"primaryEndpoints": {"blob": blob, "dfs": f"https://{name}.dfs.core.windows.net/",
                                 "queue": f"https://{name}.queue.core.windows.net/",
                                 "table": f"https://{name}.table.core.windows.net/",
                                 "file": f"https://{name}.file.core.windows.net/",
                                 "web": f"https://{name}.z6.web.core.windows.net/"},
            "primaryLocation": _loc(args), "statusOfPrimary": "available",
            "creationTime": "2026-01-01T00:00:00Z", **_assigned_identities(args)}


def _assigned_identities(args: MockResourceArgs) -> dict[str, Any]:
    """ARM returns the user-assigned identities an input lists as a map keyed by their ids."""
    identity = args.inputs.get("identity") or {}
    if not identity.get("userAssignedIdentities"):
        return {}
    return {"identity": {"type": identity.get("type", "UserAssigned"), "userAssignedIdentities": {
        uid: {"principalId": guid("principal", uid), "clientId": guid("client", uid)}
        for uid in identity["userAssignedIdentities"]}}}


def _account_part(kind: str, name_key: str) -> Any:
    """A child of a storage account (blob service, policy, container): id under the account's."""
    def fn(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = _name(args, name_key)
        account = str(args.inputs["accountName"])
        rid = _arm_id(args, f"Microsoft.Storage/storageAccounts/{account}/{kind}/{name}")
        return rid, {"name": name, "type": f"Microsoft.Storage/storageAccounts/{kind}", "etag": f'"{guid(rid)}"'}
    return fn


def _federated_credential(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = _name(args, "federatedIdentityCredentialResourceName")
    identity = str(args.inputs["resourceName"])
    rid = _arm_id(args, f"Microsoft.ManagedIdentity/userAssignedIdentities/{identity}/federatedIdentityCredentials/{name}")
    return rid, {"name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"}


def _monitor_workspace(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    region = str(args.inputs.get("location") or location())
    return {"accountId": guid("amw", rid), "metrics": {
        "internalId": f"mac_{guid('mac', rid)}",
        "prometheusQueryEndpoint": f"https://{name}-{digest('amw', rid, length=6)}.{region}.prometheus.monitor.azure.com"}}


def _dce(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    region = str(args.inputs.get("location") or location())
    return {"immutableId": f"dce-{digest('dce', rid, length=32)}", "metricsIngestion": {
        "endpoint": f"https://{name}-{digest('dce', rid, length=4)}.{region}-1.metrics.ingest.monitor.azure.com"}}


def _dcr(args: MockResourceArgs, name: str, rid: str) -> dict[str, Any]:
    return {"immutableId": f"dcr-{digest('dcr', rid, length=32)}"}


def _dcr_association(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = str(args.inputs.get("associationName") or args.name)
    rid = f"{args.inputs['resourceUri']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}"
    return rid, {"name": name, "type": "Microsoft.Insights/dataCollectionRuleAssociations", "provisioningState": "Succeeded"}


RESOURCES = {
    "azure-native:storage:StorageAccount": _simple("Microsoft.Storage/storageAccounts", "accountName", _storage_account),
    "azure-native:storage:BlobServiceProperties": _account_part("blobServices", "blobServicesName"),
    "azure-native:storage:ManagementPolicy": _account_part("managementPolicies", "managementPolicyName"),
    "azure-native:storage:BlobContainer": _account_part("blobServices/default/containers", "containerName"),
    "azure-native:managedidentity:FederatedIdentityCredential": _federated_credential,
    "azure-native:resources:ResourceGroup": _resource_group,
    "azure-native:network:VirtualNetwork": _simple("Microsoft.Network/virtualNetworks", "virtualNetworkName", _vnet),
    "azure-native:network:Subnet": _subnet,
    "azure-native:network:PublicIPAddress": _simple("Microsoft.Network/publicIPAddresses", "publicIpAddressName", _public_ip),
    "azure-native:network:NatGateway": _simple("Microsoft.Network/natGateways", "natGatewayName", _nat),
    "azure-native:managedidentity:UserAssignedIdentity": _simple(
        "Microsoft.ManagedIdentity/userAssignedIdentities", "resourceName", _identity),
    "azure-native:keyvault:Vault": _simple("Microsoft.KeyVault/vaults", "vaultName", _vault),
    "azure-native:keyvault:Key": _key,
    "azure-native:authorization:RoleAssignment": _role_assignment,
    "azure-native:operationalinsights:Workspace": _simple(
        "Microsoft.OperationalInsights/workspaces", "workspaceName", _workspace),
    "azure-native:monitor:DiagnosticSetting": _diagnostic_setting,
    "azure-native:containerservice:ManagedCluster": _managed_cluster,
    "azure-native:containerservice:AgentPool": _agent_pool,
    "azure-native:monitor:AzureMonitorWorkspace": _simple(
        "Microsoft.Monitor/accounts", "azureMonitorWorkspaceName", _monitor_workspace),
    "azure-native:monitor:DataCollectionEndpoint": _simple(
        "Microsoft.Insights/dataCollectionEndpoints", "dataCollectionEndpointName", _dce),
    "azure-native:monitor:DataCollectionRule": _simple(
        "Microsoft.Insights/dataCollectionRules", "dataCollectionRuleName", _dcr),
    "azure-native:monitor:DataCollectionRuleAssociation": _dcr_association,
}


def _client_config(args: MockCallArgs) -> dict[str, Any]:
    return {"clientId": CLIENT_ID, "objectId": CLIENT_OBJECT_ID, "subscriptionId": SUBSCRIPTION_ID,
            "tenantId": TENANT_ID}


def _user_credentials(args: MockCallArgs) -> dict[str, Any]:
    """An AAD cluster's user kubeconfig: CA data plus a kubelogin exec user, base64 encoded."""
    name = str(args.args["resourceName"])
    server = f"https://{cluster_fqdn(name, name, private=False)}:443"
    user = f"clusterUser_{args.args['resourceGroupName']}_{name}"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": FAKE_CA}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin",
            "args": ["get-token", "--login", "devicecode", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630",
                     "--tenant-id", TENANT_ID, "--environment", "AzurePublicCloud"]}}}],
    }
    value = base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()
    return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}


CALLS = {
    "azure-native:authorization:getClientConfig": _client_config,
    "azure-native:containerservice:listManagedClusterUserCredentials": _user_credentials,
}
