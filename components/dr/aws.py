"""The pair stack's object store on AWS: an S3 bucket, private, versioned, encrypted with the
stack's KMS key, TLS only; the standby's job writes it through IRSA and a peer cluster reads it
through an IAM OIDC provider and a read-only role."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.base import ClusterComponent
from components.dr import rclone
from components.dr.base import ABORT_INCOMPLETE_UPLOAD_DAYS, NONCURRENT_VERSION_DAYS, ObjectStore
from components.spec import ClusterSpec
from components.trust import condition_prefix, web_identity_trust  # noqa: F401 - the names this module always had
from components.trust.aws import issuer_provider

READ_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectTagging"]
LIST_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation"]
WRITE_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging",
                        "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def bucket_name(component: str, account: str, region: str) -> str:
    """S3 names are global: the component, the account and the region make it unique, with no
    random suffix (the same stack always names the same bucket)."""
    return naming.shorten(f"{component}-{account}-{region}", 63)


def tls_only_policy(bucket_arn: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })


def store_policy(bucket_arn: str, key_arn: str, region: str, *, write: bool) -> str:
    """List this bucket and read (or read and write) its objects; use the key only through S3."""
    key_actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListTheStore", "Effect": "Allow", "Action": LIST_ACTIONS, "Resource": bucket_arn},
            {"Sid": "WriteObjects" if write else "ReadObjects", "Effect": "Allow",
             "Action": WRITE_OBJECT_ACTIONS if write else READ_OBJECT_ACTIONS, "Resource": f"{bucket_arn}/*"},
            {"Sid": "UseTheStoreKeyThroughS3", "Effect": "Allow", "Action": key_actions, "Resource": key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
        ],
    })


class S3Store(ObjectStore):
    TYPE = "im-platform:aws:ObjectStore"

    def _build(self, name: str, cluster: ClusterComponent, spec: ClusterSpec) -> dict[str, Any]:
        if cluster.key is None:
            raise ValueError(f"{self.TYPE} {name}: the cluster component exposes no KMS key to encrypt the store with")
        self.key_arn = cluster.key.id
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        self.account = account
        self.partition = aws.get_partition_output(opts=invoke).partition
        bucket = aws.s3.Bucket(
            self.child("bucket"),
            bucket=account.apply(lambda a: bucket_name(name, a, spec.region)),
            # Never emptied by a destroy: deleting the stack leaves the data (and the bucket) behind.
            force_destroy=False,
            tags=self.tags,
            opts=self.opts(protect_in_prod=True),
        )
        self.bucket = bucket
        # ACLs off: the bucket owner owns every object, and only policies grant access.
        aws.s3.BucketOwnershipControls(
            self.child("ownership"),
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self.opts(),
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            self.child("public-access-block"),
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self.opts(),
        )
        versioning = aws.s3.BucketVersioning(
            self.child("versioning"),
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self.opts(),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            self.child("encryption"),
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=self.key_arn),
                # One data key per bucket instead of one KMS call per object: KMS cost and throttling.
                bucket_key_enabled=True,
            )],
            opts=self.opts(),
        )
        aws.s3.BucketLifecycleConfiguration(
            self.child("lifecycle"),
            bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_VERSION_DAYS),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS),
            )],
            # S3 rejects noncurrent-version rules on a bucket whose versioning is not configured yet.
            opts=self.opts(depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            self.child("tls-only"),
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            # With the public access block in place first, no policy can ever make the bucket public.
            opts=self.opts(depends_on=[public_block]),
        )
        return {"cloud": "aws", "name": bucket.bucket, "bucket": bucket.bucket, "arn": bucket.arn, "region": spec.region}

    def grant_writer(self, namespace: str, service_account: str) -> rclone.Access:
        """IRSA: a role only this cluster's job service account may assume, with write on this bucket.

        (IRSA rather than Pod Identity: the job's egress policy admits HTTPS only, and the Pod
        Identity agent answers on plain HTTP at a link-local address.)"""
        from components.aws import EksCluster

        cluster = self.cluster
        if not isinstance(cluster, EksCluster):
            raise TypeError(f"{self.TYPE} needs an EksCluster, got {type(cluster).__name__}")
        subject = rclone.subject(namespace, service_account)
        role = aws.iam.Role(
            self.child("writer"),
            description=f"The DR replication job of {self.spec.stack}: writes its object store only",
            assume_role_policy=pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_provider_url).apply(
                lambda a: web_identity_trust(a[0], a[1], subject)),
            tags=self.tags,
            opts=self.opts(),
        )
        aws.iam.RolePolicy(
            self.child("writer"),
            role=role.name,
            policy=pulumi.Output.all(self.bucket.arn, self.key_arn).apply(
                lambda a: store_policy(a[0], a[1], self.spec.region, write=True)),
            opts=self.opts(),
        )
        return rclone.Access(
            cloud="aws", path=self.bucket.bucket,
            remote=(("type", "s3"), ("provider", "AWS"), ("env_auth", "true"), ("region", self.spec.region),
                    # The job may not create buckets; the bucket exists.
                    ("no_check_bucket", "true"),
                    # Stated on every upload (as the bucket's default says): rclone then knows a KMS
                    # object's ETag is no MD5 and does not report a good upload as corrupted.
                    ("server_side_encryption", "aws:kms"),
                    ("sse_kms_key_id", self.key_arn)),
            env=(("AWS_ROLE_ARN", role.arn),
                 ("AWS_WEB_IDENTITY_TOKEN_FILE", rclone.token_path("aws")),
                 ("AWS_ROLE_SESSION_NAME", "im-platform-replication"),
                 ("AWS_REGION", self.spec.region),
                 ("AWS_STS_REGIONAL_ENDPOINTS", "regional")),
            token_audience=rclone.AWS_AUDIENCE,
        )

    def read_access(self) -> dict[str, Any]:
        """The peer's job assumes a role named after this stack: its ARN is known before the role
        exists, so the peer can plan its job before this stack trusts it."""
        self.reader_role_name = naming.physical_name(naming.cluster_name(self.spec.stack), "dr-peer-reader", max_len=64)
        role_arn = pulumi.Output.concat("arn:", self.partition, ":iam::", self.account, ":role/", self.reader_role_name)
        return {"cloud": "aws", "bucket": self.bucket.bucket, "region": self.spec.region, "roleArn": role_arn,
                "audience": rclone.AWS_AUDIENCE}

    def trust_reader(self, issuer: str, subject: str) -> None:
        # The peer's issuer has one IAM provider in this account: the peer's own when it declared
        # one (its DNS-01 trust), else this one (components.trust).
        peer_stack = self.spec.dr.peer if self.spec.dr else ""
        provider = issuer_provider(self.child("peer-oidc"), issuer, peer_stack, self.cluster.peer,
                                   tags=self.tags, opts=self.opts(), invoke=pulumi.InvokeOptions(parent=self))
        if provider.declared is not None:
            self.cluster.aws_oidc_providers.append(provider.declared)
        role = aws.iam.Role(
            self.child("peer-reader"),
            name=self.reader_role_name,
            description=f"The DR peer's replication job: reads {self.spec.stack}'s object store only",
            assume_role_policy=pulumi.Output.all(provider.arn, provider.url).apply(
                lambda a: web_identity_trust(a[0], a[1], subject)),
            # The job's longest run is bounded by its token; an hour covers one assume.
            max_session_duration=3600,
            tags=self.tags,
            opts=self.opts(),
        )
        aws.iam.RolePolicy(
            self.child("peer-reader"),
            role=role.name,
            policy=pulumi.Output.all(self.bucket.arn, self.key_arn).apply(
                lambda a: store_policy(a[0], a[1], self.spec.region, write=False)),
            opts=self.opts(),
        )
