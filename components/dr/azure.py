"""The pair stack's object store on Azure: a storage account and one blob container, private (no
public blob access, no shared keys: Entra ID only), HTTPS and TLS 1.2 only, blob versioning,
encrypted with the stack's Key Vault key. The standby's job writes it through AKS workload
identity; a peer cluster reads it through a user-assigned identity with a federated credential."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pulumi
from pulumi_azure_native import authorization, managedidentity, storage

from components import naming
from components.azure import AksCluster, role_assignment_name
from components.base import ClusterComponent
from components.dr import rclone
from components.dr.base import NONCURRENT_VERSION_DAYS, ObjectStore
from components.spec import ClusterSpec

# Built-in role definition ids (the same in every tenant).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2e-b22465e65bf6"
CONTAINER = "dr"
ACCOUNT_NAME_MAX = 24
# Deleted blobs and containers stay recoverable this long (besides the versions the lifecycle keeps).
SOFT_DELETE_DAYS = 7

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def storage_account_name(component: str, subscription_id: str, project: str, stack: str) -> str:
    """3-24 lowercase letters and digits, unique in all of Azure: the component name cut short plus a
    stable hash of where it lives (the subscription too, so two organisations never collide)."""
    digest = hashlib.sha256(f"{subscription_id}/{project}/{stack}/{component}".encode()).hexdigest()[:8]
    base = _NOT_ALNUM.sub("", component.lower())[: ACCOUNT_NAME_MAX - len(digest)]
    return f"{base}{digest}"


class BlobStore(ObjectStore):
    TYPE = "im-platform:azure:ObjectStore"

    def _build(self, name: str, cluster: ClusterComponent, spec: ClusterSpec) -> dict[str, Any]:
        if not isinstance(cluster, AksCluster):
            raise TypeError(f"{self.TYPE} needs an AksCluster, got {type(cluster).__name__}")
        key = cluster.key
        if key is None or key.vault_uri is None or key.name is None or key.vault_id is None:
            raise ValueError(f"{self.TYPE} {name}: the cluster component exposes no Key Vault key to encrypt the store with")
        self.client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.rg = cluster.resource_group_name
        # The account's own identity reads the key (wrap/unwrap) and nothing else.
        key_identity = managedidentity.UserAssignedIdentity(
            self.child("key-identity"),
            resource_name_=naming.physical_name(name, "key", max_len=128),
            resource_group_name=self.rg,
            location=spec.region,
            tags=self.tags,
            opts=self.opts(),
        )
        key_role = self._role("key-user", key.vault_id, key_identity.principal_id,
                              KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER)
        account = storage.StorageAccount(
            self.child("account"),
            account_name=self.client.subscription_id.apply(
                lambda sub: storage_account_name(name, sub, spec.project, spec.stack)),
            resource_group_name=self.rg,
            location=spec.region,
            kind="StorageV2",
            # Zone-redundant: the store survives the loss of a zone, as the cluster does.
            sku=storage.SkuArgs(name="Standard_ZRS"),
            access_tier=storage.AccessTier.HOT,
            allow_blob_public_access=False,
            # Entra ID only: no account key or SAS can read it, so no key can leak.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_cross_tenant_replication=False,
            # The peer's job reads over the internet (no private link between clouds); access is RBAC only.
            public_network_access="Enabled",
            identity=storage.IdentityArgs(type="UserAssigned", user_assigned_identities=[key_identity.id]),
            encryption=storage.EncryptionArgs(
                key_source="Microsoft.Keyvault",
                key_vault_properties=storage.KeyVaultPropertiesArgs(key_name=key.name, key_vault_uri=key.vault_uri),
                encryption_identity=storage.EncryptionIdentityArgs(encryption_user_assigned_identity=key_identity.id),
                # A second, platform-managed layer under the customer-managed one.
                require_infrastructure_encryption=True,
                services=storage.EncryptionServicesArgs(blob=storage.EncryptionServiceArgs(enabled=True, key_type="Account")),
            ),
            tags=self.tags,
            # Azure checks at creation that the identity may use the key.
            opts=self.opts(protect_in_prod=True, depends_on=[key_role]),
        )
        self.account = account
        storage.BlobServiceProperties(
            self.child("blob-service"),
            account_name=account.name,
            resource_group_name=self.rg,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=SOFT_DELETE_DAYS),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=SOFT_DELETE_DAYS),
            opts=self.opts(),
        )
        storage.ManagementPolicy(
            self.child("lifecycle"),
            account_name=account.name,
            resource_group_name=self.rg,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(rules=[storage.ManagementPolicyRuleArgs(
                name="expire-old-versions",
                type="Lifecycle",
                enabled=True,
                definition=storage.ManagementPolicyDefinitionArgs(
                    filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"]),
                    actions=storage.ManagementPolicyActionArgs(version=storage.ManagementPolicyVersionArgs(
                        delete=storage.DateAfterCreationArgs(days_after_creation_greater_than=NONCURRENT_VERSION_DAYS))),
                ),
            )]),
            opts=self.opts(),
        )
        container = storage.BlobContainer(
            self.child("container"),
            account_name=account.name,
            resource_group_name=self.rg,
            container_name=CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=self.opts(protect_in_prod=True),
        )
        self.container = container
        return {"cloud": "azure", "name": pulumi.Output.concat(account.name, "/", container.name),
                "account": account.name, "container": container.name, "resourceId": container.id,
                "accountId": account.id, "endpoint": account.primary_endpoints.apply(lambda e: e.blob)}

    def _role(self, suffix: str, scope: pulumi.Input[str], principal_id: pulumi.Input[str],
              role_id: str) -> authorization.RoleAssignment:
        return authorization.RoleAssignment(
            self.child(suffix),
            role_assignment_name=pulumi.Output.all(scope, principal_id).apply(
                lambda a: role_assignment_name(a[0], a[1], role_id)),
            scope=scope,
            principal_id=principal_id,
            # A brand-new identity may not have replicated yet; the type skips the directory lookup.
            principal_type="ServicePrincipal",
            role_definition_id=self.client.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"),
            opts=self.opts(),
        )

    def _identity(self, suffix: str, role_id: str) -> managedidentity.UserAssignedIdentity:
        """A user-assigned identity with `role_id` on this store's container only."""
        identity = managedidentity.UserAssignedIdentity(
            self.child(suffix),
            resource_name_=naming.physical_name(self.component_name, suffix, max_len=128),
            resource_group_name=self.rg,
            location=self.spec.region,
            tags=self.tags,
            opts=self.opts(),
        )
        self._role(f"{suffix}-blob", self.container.id, identity.principal_id, role_id)
        return identity

    def _federate(self, suffix: str, identity: managedidentity.UserAssignedIdentity, issuer: pulumi.Input[str],
                  subject: str) -> None:
        """Only `subject` of `issuer`'s cluster may use the identity."""
        managedidentity.FederatedIdentityCredential(
            self.child(suffix),
            federated_identity_credential_resource_name="kubernetes-service-account",
            resource_name_=identity.name,
            resource_group_name=self.rg,
            # Compared verbatim with the token's iss claim (AKS issuers end with a slash).
            issuer=issuer,
            subject=subject,
            audiences=[rclone.AZURE_AUDIENCE],
            opts=self.opts(),
        )

    def grant_writer(self, namespace: str, service_account: str) -> rclone.Access:
        """AKS workload identity: the job's service account, trusted on this cluster's own issuer,
        with Storage Blob Data Contributor on this container."""
        identity = self._identity("writer", STORAGE_BLOB_DATA_CONTRIBUTOR)
        self._federate("writer", identity, self.cluster.oidc_issuer, rclone.subject(namespace, service_account))
        return rclone.Access(
            cloud="azure", path=self.container.name,
            remote=(("type", "azureblob"), ("account", self.account.name), ("env_auth", "true"),
                    # The job may not create containers; the container exists.
                    ("no_check_container", "true")),
            # Set here rather than by the workload identity webhook: the pod is complete as declared.
            env=(("AZURE_CLIENT_ID", identity.client_id),
                 ("AZURE_TENANT_ID", self.client.tenant_id),
                 ("AZURE_FEDERATED_TOKEN_FILE", rclone.token_path("azure")),
                 ("AZURE_AUTHORITY_HOST", rclone.AZURE_AUTHORITY)),
            token_audience=rclone.AZURE_AUDIENCE,
        )

    def read_access(self) -> dict[str, Any]:
        """An identity with Storage Blob Data Reader on the container, which no one may use until
        `trust_reader` federates it."""
        self.reader = self._identity("peer-reader", STORAGE_BLOB_DATA_READER)
        return {"cloud": "azure", "account": self.account.name, "container": self.container.name,
                "clientId": self.reader.client_id, "tenantId": self.client.tenant_id,
                "audience": rclone.AZURE_AUDIENCE}

    def trust_reader(self, issuer: str, subject: str) -> None:
        self._federate("peer-reader", self.reader, issuer, subject)
