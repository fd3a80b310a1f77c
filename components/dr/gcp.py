"""The pair stack's object store on GCP: a GCS bucket, private (uniform bucket-level access, public
access prevention enforced), versioned, encrypted with the stack's Cloud KMS key; GCS serves only
HTTPS, so TLS needs no policy. The standby's job writes it through GKE Workload Identity and a
peer cluster reads it through a workload identity pool and OIDC provider."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from components import naming
from components.base import ClusterComponent
from components.dr import rclone
from components.dr.base import NONCURRENT_VERSION_DAYS, ObjectStore
from components.gcp import GkeCluster, enable_apis
from components.spec import ClusterSpec

# A new project may have these off: Google's STS trades the peer's tokens; storage serves the bucket.
REQUIRED_APIS = ("storage.googleapis.com", "sts.googleapis.com")
PEER_PROVIDER_ID = "peer-cluster"


def bucket_name(component: str, project: str) -> str:
    """GCS names are global: the component and the project make it unique, no random suffix."""
    return naming.shorten(f"{component}-{project}", 63)


def pool_id(stack: str) -> str:
    """4-32 characters. A deleted pool keeps its id for 30 days (undelete it rather than rename)."""
    return naming.shorten(naming.dns_label(f"im-{stack}-dr-peer"), 32)


def attribute_condition(subject: str) -> str:
    """CEL: only this one Kubernetes service account of the peer's cluster."""
    return f"assertion.sub == '{subject}'"


def pool_principal(project_number: str, pool: str, subject: str) -> str:
    """The federated identity itself (no service account to impersonate) as an IAM member."""
    return f"principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}/subject/{subject}"


def provider_resource(project_number: str, pool: str, provider: str) -> str:
    return f"projects/{project_number}/locations/global/workloadIdentityPools/{pool}/providers/{provider}"


class GcsStore(ObjectStore):
    TYPE = "im-platform:gcp:ObjectStore"

    def _build(self, name: str, cluster: ClusterComponent, spec: ClusterSpec) -> dict[str, Any]:
        project = spec.gcp_project
        if not project:
            raise ValueError(f"{self.TYPE} {name}: spec.gcp_project is not set; expected the GCP project id (gcp:project)")
        if cluster.key is None:
            raise ValueError(f"{self.TYPE} {name}: the cluster component exposes no KMS key to encrypt the store with")
        if not isinstance(cluster, GkeCluster):
            raise TypeError(f"{self.TYPE} needs a GkeCluster, got {type(cluster).__name__}")
        self.project = project
        # Every service account, pool, provider and grant here waits for IAM's API (the cluster's
        # Service resource enables it); the grant naming `<project>.svc.id.goog` waits for the cluster.
        self.iam_api = cluster.services["iam.googleapis.com"]
        self.gke = cluster.gke
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.project_number = gcp.organizations.get_project_output(project_id=project, opts=invoke).number
        self.apis = enable_apis(self.component_name, project, REQUIRED_APIS, self.opts)
        # Cloud Storage's service agent wraps the bucket's data keys with the stack's key.
        agent = gcp.storage.get_project_service_account_output(project=project, opts=invoke)
        key_grant = gcp.kms.CryptoKeyIAMMember(
            self.child("key-gcs"),
            crypto_key_id=cluster.key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=agent.member,
            opts=self.opts(depends_on=self.apis),
        )
        bucket = gcp.storage.Bucket(
            self.child("bucket"),
            name=bucket_name(name, project),
            project=project,
            # The key ring's region: a CMEK bucket must be where its key is.
            location=spec.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=cluster.key.id),
            lifecycle_rules=[gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    days_since_noncurrent_time=NONCURRENT_VERSION_DAYS, with_state="ARCHIVED"),
            )],
            # Never emptied by a destroy: deleting the stack leaves the data (and the bucket) behind.
            force_destroy=False,
            labels=self.tags,
            opts=self.opts(protect_in_prod=True, depends_on=[key_grant, *self.apis]),
        )
        self.bucket = bucket
        return {"cloud": "gcp", "name": bucket.name, "bucket": bucket.name, "project": project,
                "location": bucket.location, "url": bucket.url}

    def grant_writer(self, namespace: str, service_account: str) -> rclone.Access:
        """GKE Workload Identity: a service account with objectAdmin on this bucket only, which only
        the job's Kubernetes service account may act as."""
        writer = gcp.serviceaccount.Account(
            self.child("writer"),
            account_id=naming.physical_name(naming.cluster_name(self.spec.stack), "repl", max_len=30),
            display_name=f"DR replication job of {self.spec.stack}: writes its object store only",
            project=self.project,
            opts=self.opts(depends_on=[self.iam_api]),
        )
        gcp.serviceaccount.IAMMember(
            self.child("writer-workload-identity"),
            service_account_id=writer.name,
            role="roles/iam.workloadIdentityUser",
            member=f"serviceAccount:{self.project}.svc.id.goog[{namespace}/{service_account}]",
            # The pool exists only once the cluster with Workload Identity does.
            opts=self.opts(depends_on=[self.gke]),
        )
        gcp.storage.BucketIAMMember(
            self.child("writer-objects"),
            bucket=self.bucket.name,
            role="roles/storage.objectAdmin",
            member=writer.member,
            opts=self.opts(),
        )
        return rclone.Access(
            cloud="gcp", path=self.bucket.name,
            # Uniform bucket-level access: objects carry no ACLs to set.
            remote=(("type", "google cloud storage"), ("env_auth", "true"), ("bucket_policy_only", "true")),
            # No token file: the GKE metadata server serves the pod's credentials.
            service_account_annotations=(("iam.gke.io/gcp-service-account", writer.email),),
        )

    def read_access(self) -> dict[str, Any]:
        """A workload identity pool whose provider (declared with the trust) has a known name, so
        the audience the peer's job presents is known before this stack trusts it."""
        self.pool_name = pool_id(self.spec.stack)
        self.pool = gcp.iam.WorkloadIdentityPool(
            self.child("peer-pool"),
            workload_identity_pool_id=self.pool_name,
            project=self.project,
            display_name="DR peer cluster",
            description=f"The DR peer cluster of {self.spec.stack}: its replication job reads the object store",
            opts=self.opts(depends_on=[*self.apis, self.iam_api]),
        )
        provider = self.project_number.apply(lambda n: provider_resource(n, self.pool_name, PEER_PROVIDER_ID))
        self.token_audience = provider.apply(lambda r: f"https://iam.googleapis.com/{r}")
        return {"cloud": "gcp", "bucket": self.bucket.name, "project": self.project,
                "audience": provider.apply(lambda r: f"//iam.googleapis.com/{r}"),
                "tokenAudience": self.token_audience, "provider": provider}

    def trust_reader(self, issuer: str, subject: str) -> None:
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            self.child("peer-provider"),
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=PEER_PROVIDER_ID,
            project=self.project,
            display_name="DR peer cluster OIDC",
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=issuer, allowed_audiences=[self.token_audience]),
            attribute_mapping={"google.subject": "assertion.sub"},
            attribute_condition=attribute_condition(subject),
            opts=self.opts(),
        )
        gcp.storage.BucketIAMMember(
            self.child("peer-reader"),
            bucket=self.bucket.name,
            role="roles/storage.objectViewer",
            member=self.project_number.apply(lambda n: pool_principal(n, self.pool_name, subject)),
            opts=self.opts(depends_on=[provider]),
        )
