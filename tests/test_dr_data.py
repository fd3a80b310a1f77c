"""The DR data pieces of a pair stack (components/dr): the object store on each cloud, the keyless
replication job on the standby, and the federation the primary declares for it.

Every cloud as standby with every other cloud as primary, planned in the documented
first-deployment order (standby, primary, standby) with each half reading the other's outputs
through a StackReference mock (tests/dr_program.py): the job authenticates to both clouds with
exactly the values the other half declared, the trust names exactly the standby's issuer and
service account, read-only on that one store, and nothing in either plan is unknown.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.dr import rclone
from infra.offline.manifests import render
from infra.offline.plan import Plan
from infra.policy.rules import Context, Resource, evaluate
from tests.contract import unknown_paths
from tests.dr_program import DrPlan, Pair, plan_half, plan_pair, spec_for

CLOUDS = ("aws", "gcp", "azure")
COMBINATIONS = [(standby, primary) for standby in CLOUDS for primary in CLOUDS if standby != primary]
CRON_JOB = "kubernetes:batch/v1:CronJob"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
SUBJECT = "system:serviceaccount:im-dr-replication:replication"
RCLONE_TYPES = {"aws": "s3", "gcp": "google cloud storage", "azure": "azureblob"}

_PAIRS: dict[tuple[str, str], Pair] = {}


def pair(standby: str, primary: str) -> Pair:
    if (standby, primary) not in _PAIRS:
        _PAIRS[(standby, primary)] = plan_pair(standby, primary)
    return _PAIRS[(standby, primary)]


@pytest.fixture(params=COMBINATIONS, ids=[f"standby-{s}-primary-{p}" for s, p in COMBINATIONS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str, Pair]:
    standby, primary = request.param
    return standby, primary, pair(standby, primary)


def named(plan: Plan, type_: str, suffix: str) -> dict[str, Any]:
    found = [r for r in plan.of_type(type_) if r["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {type_} *{suffix}, found {[r['name'] for r in found]}"
    return found[0]


def cron_job(plan: Plan) -> dict[str, Any]:
    jobs = plan.of_type(CRON_JOB)
    assert len(jobs) == 1, f"expected one CronJob, found {len(jobs)}"
    return jobs[0]


def pod(plan: Plan) -> dict[str, Any]:
    return cron_job(plan)["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env(plan: Plan) -> dict[str, str]:
    containers = pod(plan)["containers"]
    assert len(containers) == 1
    names = [e["name"] for e in containers[0]["env"]]
    assert len(names) == len(set(names)), "an environment variable is set twice"
    return {e["name"]: e["value"] for e in containers[0]["env"]}


def tokens(plan: Plan) -> dict[str, str]:
    """Projected token path -> audience."""
    volumes = {v["name"]: v for v in pod(plan)["volumes"]}
    sources = volumes["cloud-tokens"]["projected"]["sources"] if "cloud-tokens" in volumes else []
    return {f"{rclone.TOKEN_DIR}/{s['serviceAccountToken']['path']}": s["serviceAccountToken"]["audience"] for s in sources}


def unknowns(half: DrPlan) -> list[str]:
    plan = half.plan
    found = [q for r in plan.resources for q in unknown_paths(r["inputs"], r["name"])]
    found += unknown_paths(plan.outputs, "outputs")
    found += [q for urn, out in plan.component_outputs.items() for q in unknown_paths(out, urn)]
    return found


def policy(document: str) -> dict[str, Any]:
    return json.loads(document)


# ---------------------------------------------------------------------------------------------
# Pure pieces: schedule, environment, reading the peer's outputs.


@pytest.mark.parametrize("interval, cron, every", [
    (5, "*/5 * * * *", 5), (15, "*/15 * * * *", 15), (45, "*/30 * * * *", 30), (59, "*/30 * * * *", 30),
    (60, "0 * * * *", 60), (90, "0 * * * *", 60), (120, "0 */2 * * *", 120), (300, "0 */4 * * *", 240),
    (1439, "0 */12 * * *", 720), (1440, "0 0 * * *", 1440),
])
def test_schedule_never_runs_less_often_than_asked(interval: int, cron: str, every: int) -> None:
    assert rclone.schedule(interval) == (cron, every)
    assert every <= interval


def test_schedule_refuses_intervals_below_five_minutes() -> None:
    with pytest.raises(ValueError, match="below the shortest"):
        rclone.schedule(4)


def test_job_env_refuses_one_cloud_twice() -> None:
    aws = rclone.reader_access({"cloud": "aws", "bucket": "b", "region": "eu-west-1", "roleArn": "arn:aws:iam::1:role/r"})
    with pytest.raises(ValueError, match="both on aws"):
        rclone.job_env(aws, aws)
    clash = rclone.Access(cloud="gcp", path="x", remote=(("type", "gcs"),), env=(("AWS_REGION", "x"),))
    with pytest.raises(ValueError, match="AWS_REGION is set for both"):
        rclone.job_env(aws, clash)


@pytest.mark.parametrize("source, missing", [
    ({"cloud": "aws", "bucket": "b", "region": "r"}, "roleArn"),
    ({"cloud": "gcp", "bucket": "b", "audience": "//iam"}, "tokenAudience"),
    ({"cloud": "azure", "account": "a", "container": "c", "clientId": "x"}, "tenantId"),
])
def test_reader_access_names_the_missing_key(source: dict[str, Any], missing: str) -> None:
    with pytest.raises(rclone.PeerOutputError, match=missing):
        rclone.reader_access(source)


def test_reader_access_refuses_an_unknown_cloud_and_a_non_map() -> None:
    with pytest.raises(rclone.PeerOutputError, match="cloud 'oci'"):
        rclone.reader_access({"cloud": "oci"})
    with pytest.raises(rclone.PeerOutputError, match="not a map"):
        rclone.reader_access("s3://bucket")


@pytest.mark.parametrize("replication", [
    {"namespace": "im-dr-replication", "serviceAccount": "*"},
    {"namespace": "*", "serviceAccount": "replication"},
    {"namespace": "a:b", "serviceAccount": "replication"},
    {"namespace": "im-dr-replication"},
    None,
])
def test_peer_subject_is_one_service_account_never_a_pattern(replication: Any) -> None:
    with pytest.raises(rclone.PeerOutputError):
        rclone.peer_subject(replication)


def test_peer_subject_and_issuer_accept_what_the_program_exports() -> None:
    assert rclone.peer_subject({"namespace": rclone.NAMESPACE, "serviceAccount": rclone.SERVICE_ACCOUNT}) == SUBJECT
    assert rclone.peer_issuer("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC") == "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"
    for bad in ("http://issuer", "https://*", None, 3):
        with pytest.raises(rclone.PeerOutputError):
            rclone.peer_issuer(bad)


def test_gcp_credentials_name_the_pool_provider_and_the_token_file_only() -> None:
    doc = json.loads(rclone.gcp_credentials("//iam.googleapis.com/projects/1/x", "/t/gcp/token"))
    assert doc == {
        "type": "external_account", "audience": "//iam.googleapis.com/projects/1/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"file": "/t/gcp/token", "format": {"type": "text"}},
    }


# ---------------------------------------------------------------------------------------------
# Six cloud combinations: the job's settings are what the other half declared.


def test_first_deployment_converges_in_the_documented_order(combo: tuple[str, str, Pair]) -> None:
    standby, primary, p = combo
    # 1. The standby alone: store and replication output, no job yet, one warning naming what to deploy.
    assert p.standby_first.plan.of_type(CRON_JOB) == []
    assert len(p.standby_first.warnings) == 1
    assert "replication job is skipped" in p.standby_first.warnings[0]
    assert f"deploy {primary_stack(primary)}, then this stack again" in p.standby_first.warnings[0]
    assert p.standby_first.outputs["replication"]["active"] is True
    assert p.standby_first.outputs["replicationSource"]["issuer"] is None, "its primary has no replication"
    # 2. The primary trusts the standby; 3. the standby schedules the job. Neither warns.
    assert p.primary.outputs["replicationSource"]["cloud"] == primary
    assert p.primary.warnings == [] and p.standby.warnings == []
    cron_job(p.standby.plan)
    assert p.primary.plan.of_type(CRON_JOB) == []


def primary_stack(cloud: str) -> str:
    return f"prod-{cloud}"


def test_nothing_in_either_plan_is_unknown(combo: tuple[str, str, Pair]) -> None:
    _, _, p = combo
    assert unknowns(p.primary) == [] and unknowns(p.standby) == [] and unknowns(p.standby_first) == []


def test_the_job_reads_through_the_primarys_federation(combo: tuple[str, str, Pair]) -> None:
    standby, primary, p = combo
    source = p.primary.outputs["replicationSource"]
    variables, projected = env(p.standby.plan), tokens(p.standby.plan)
    assert variables["RCLONE_CONFIG_PRIMARY_TYPE"] == RCLONE_TYPES[primary]
    assert variables["RCLONE_CONFIG_PRIMARY_ENV_AUTH"] == "true"
    if primary == "aws":
        # The role the read-only policy is attached to.
        role = named(p.primary.plan, "aws:iam/rolePolicy:RolePolicy", "-store-peer-reader")["inputs"]["role"]
        assert variables["AWS_ROLE_ARN"] == source["roleArn"] == f"arn:aws:iam::123456789012:role/{role}"
        assert projected[variables["AWS_WEB_IDENTITY_TOKEN_FILE"]] == "sts.amazonaws.com"
        assert variables["RCLONE_CONFIG_PRIMARY_REGION"] == variables["AWS_REGION"] == "eu-west-1"
    elif primary == "gcp":
        provider = named(p.primary.plan, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider", "-peer-provider")
        config_map = cron_config_map(p.standby.plan)
        path = variables["GOOGLE_APPLICATION_CREDENTIALS"]
        assert path == f"{rclone.CREDENTIALS_DIR}/{rclone.GCP_CREDENTIALS_FILE}"
        credentials = json.loads(config_map["inputs"]["data"][rclone.GCP_CREDENTIALS_FILE])
        assert credentials["type"] == "external_account"
        pool, provider_id = provider["inputs"]["workloadIdentityPoolId"], provider["inputs"]["workloadIdentityPoolProviderId"]
        assert credentials["audience"].startswith("//iam.googleapis.com/projects/")
        assert credentials["audience"].endswith(f"/workloadIdentityPools/{pool}/providers/{provider_id}")
        # The token is minted for the one audience the provider allows, and read from where it is projected.
        assert projected[credentials["credential_source"]["file"]] == provider["inputs"]["oidc"]["allowedAudiences"][0]
        assert provider["inputs"]["oidc"]["allowedAudiences"] == ["https:" + credentials["audience"]]
        assert variables["RCLONE_CONFIG_PRIMARY_BUCKET_POLICY_ONLY"] == "true"
    else:
        identity = named(p.primary.plan, "azure-native:managedidentity:UserAssignedIdentity", "-store-peer-reader")
        credential = named(p.primary.plan, "azure-native:managedidentity:FederatedIdentityCredential", "-store-peer-reader")
        assert credential["inputs"]["resourceName"] == identity["inputs"]["resourceName"]
        assert variables["AZURE_CLIENT_ID"] == source["clientId"]
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", source["clientId"])
        assert variables["AZURE_TENANT_ID"] == source["tenantId"] != ""
        assert projected[variables["AZURE_FEDERATED_TOKEN_FILE"]] == "api://AzureADTokenExchange"
        assert variables["RCLONE_CONFIG_PRIMARY_ACCOUNT"] == source["account"] == p.primary.outputs["objectStore"]["account"]
    args = pod(p.standby.plan)["containers"][0]["args"]
    assert args[:3] == ["sync", f"primary:{primary_path(p.primary.outputs['objectStore'])}",
                        f"standby:{primary_path(p.standby.outputs['objectStore'])}"]


def cron_config_map(plan: Plan) -> dict[str, Any]:
    maps = plan.of_type(CONFIG_MAP)
    assert len(maps) == 1
    return maps[0]


def primary_path(store: dict[str, Any]) -> str:
    return store["container"] if store["cloud"] == "azure" else store["bucket"]


def test_the_job_writes_through_its_own_workload_identity(combo: tuple[str, str, Pair]) -> None:
    standby, primary, p = combo
    plan, variables, projected = p.standby.plan, env(p.standby.plan), tokens(p.standby.plan)
    assert variables["RCLONE_CONFIG_STANDBY_TYPE"] == RCLONE_TYPES[standby]
    account = named(plan, SERVICE_ACCOUNT, "-replication-account")
    annotations = account["inputs"]["metadata"].get("annotations") or {}
    assert account["inputs"]["automountServiceAccountToken"] is False
    if standby == "aws":
        role = named(plan, "aws:iam/role:Role", "-store-writer")
        trust = policy(role["inputs"]["assumeRolePolicy"])["Statement"]
        issuer = p.standby.outputs["oidcIssuer"].removeprefix("https://")
        assert trust == [{"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{issuer}"},
                          "Action": "sts:AssumeRoleWithWebIdentity",
                          "Condition": {"StringEquals": {f"{issuer}:sub": SUBJECT, f"{issuer}:aud": "sts.amazonaws.com"}}}]
        attached = named(plan, "aws:iam/rolePolicy:RolePolicy", "-store-writer")["inputs"]["role"]
        assert variables["AWS_ROLE_ARN"] == f"arn:aws:iam::123456789012:role/{attached}"
        assert projected[variables["AWS_WEB_IDENTITY_TOKEN_FILE"]] == "sts.amazonaws.com"
        assert variables["RCLONE_CONFIG_STANDBY_NO_CHECK_BUCKET"] == "true"
        assert variables["RCLONE_CONFIG_STANDBY_SERVER_SIDE_ENCRYPTION"] == "aws:kms"
        assert variables["RCLONE_CONFIG_STANDBY_SSE_KMS_KEY_ID"] == key_arn(plan)
        grant = policy(named(plan, "aws:iam/rolePolicy:RolePolicy", "-store-writer")["inputs"]["policy"])
        bucket = p.standby.outputs["objectStore"]["arn"]
        assert {r for s in grant["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])} \
            == {bucket, f"{bucket}/*", key_arn(plan)}
        assert annotations == {}
    elif standby == "gcp":
        writer = named(plan, "gcp:serviceaccount/account:Account", "-store-writer")
        email = f"{writer['inputs']['accountId']}@im-platform-test.iam.gserviceaccount.com"
        assert annotations == {"iam.gke.io/gcp-service-account": email}
        binding = named(plan, "gcp:serviceaccount/iAMMember:IAMMember", "-writer-workload-identity")["inputs"]
        assert binding["role"] == "roles/iam.workloadIdentityUser"
        assert binding["member"] == "serviceAccount:im-platform-test.svc.id.goog[im-dr-replication/replication]"
        grant = named(plan, "gcp:storage/bucketIAMMember:BucketIAMMember", "-writer-objects")["inputs"]
        assert (grant["bucket"], grant["role"], grant["member"]) == (
            p.standby.outputs["objectStore"]["bucket"], "roles/storage.objectAdmin", f"serviceAccount:{email}")
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in variables, "the GKE metadata server serves the writer"
    else:
        identity = named(plan, "azure-native:managedidentity:UserAssignedIdentity", "-store-writer")
        credential = named(plan, "azure-native:managedidentity:FederatedIdentityCredential", "-store-writer")["inputs"]
        assert (credential["issuer"], credential["subject"], credential["audiences"]) == (
            p.standby.outputs["oidcIssuer"], SUBJECT, ["api://AzureADTokenExchange"])
        assert credential["resourceName"] == identity["inputs"]["resourceName"]
        role = named(plan, "azure-native:authorization:RoleAssignment", "-store-writer-blob")["inputs"]
        assert role["roleDefinitionId"].endswith("/ba92f5b4-2d11-453d-a403-e96b0029c9fe")  # Storage Blob Data Contributor
        assert role["scope"] == p.standby.outputs["objectStore"]["resourceId"]
        assert projected[variables["AZURE_FEDERATED_TOKEN_FILE"]] == "api://AzureADTokenExchange"
        assert variables["RCLONE_CONFIG_STANDBY_NO_CHECK_CONTAINER"] == "true"
        assert annotations == {}
    # One token per cloud that reads one: never the Kubernetes API's audience.
    expected = {c: a for c, a in (("aws", "sts.amazonaws.com"), ("azure", "api://AzureADTokenExchange")) if c in (standby, primary)}
    assert {path.split("/")[-2] for path in projected} == set(expected) | ({"gcp"} if primary == "gcp" else set())


def key_arn(plan: Plan) -> str:
    """The ARN the offline plan gives the stack's one KMS key (the cluster's)."""
    [key] = plan.of_type("aws:kms/key:Key")
    return f"arn:aws:kms:eu-west-1:123456789012:key/{key_id(key)}"


def key_id(key: dict[str, Any]) -> str:
    from infra.offline.mocks.common import digest

    return "-".join(digest("kms", key["name"], length=32)[i:j] for i, j in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))


def test_the_primary_trusts_exactly_the_standbys_issuer_and_service_account_read_only(combo: tuple[str, str, Pair]) -> None:
    standby, primary, p = combo
    plan = p.primary.plan
    issuer = p.standby_first.outputs["oidcIssuer"]
    source = p.primary.outputs["replicationSource"]
    assert (source["issuer"], source["subject"]) == (issuer, SUBJECT)
    store = p.primary.outputs["objectStore"]
    if primary == "aws":
        provider = named(plan, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "-store-peer-oidc")["inputs"]
        assert (provider["url"], provider["clientIdLists"]) == (issuer, ["sts.amazonaws.com"])
        role = named(plan, "aws:iam/role:Role", "-store-peer-reader")["inputs"]
        prefix = issuer.removeprefix("https://")
        [statement] = policy(role["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{prefix}"}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {"StringEquals": {f"{prefix}:sub": SUBJECT, f"{prefix}:aud": "sts.amazonaws.com"}}
        grant = policy(named(plan, "aws:iam/rolePolicy:RolePolicy", "-store-peer-reader")["inputs"]["policy"])
        actions = {a for s in grant["Statement"] for a in s["Action"]}
        assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:GetObjectTagging", "kms:Decrypt"}
        resources = {s["Resource"] for s in grant["Statement"]}
        assert resources == {store["arn"], f"{store['arn']}/*", key_arn(plan)}
    elif primary == "gcp":
        provider = named(plan, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider", "-peer-provider")["inputs"]
        assert provider["oidc"]["issuerUri"] == issuer
        assert provider["attributeCondition"] == f"assertion.sub == '{SUBJECT}'"
        assert provider["attributeMapping"] == {"google.subject": "assertion.sub"}
        grants = [g["inputs"] for g in plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")]
        assert len(grants) == 1
        assert grants[0]["bucket"] == store["bucket"]
        assert grants[0]["role"] == "roles/storage.objectViewer"
        assert grants[0]["member"].startswith("principal://iam.googleapis.com/projects/")
        assert grants[0]["member"].endswith(f"/workloadIdentityPools/{provider['workloadIdentityPoolId']}/subject/{SUBJECT}")
    else:
        credential = named(plan, "azure-native:managedidentity:FederatedIdentityCredential", "-store-peer-reader")["inputs"]
        assert (credential["issuer"], credential["subject"], credential["audiences"]) == (
            issuer, SUBJECT, ["api://AzureADTokenExchange"])
        role = named(plan, "azure-native:authorization:RoleAssignment", "-store-peer-reader-blob")["inputs"]
        assert role["roleDefinitionId"].endswith("/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")  # Storage Blob Data Reader
        assert role["scope"] == store["resourceId"]
        assert role["scope"].endswith("/blobServices/default/containers/dr")


def test_the_job_runs_restricted_one_at_a_time_on_schedule(combo: tuple[str, str, Pair]) -> None:
    standby, _, p = combo
    job = cron_job(p.standby.plan)["inputs"]
    spec = job["spec"]
    assert job["metadata"]["namespace"] == rclone.NAMESPACE
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["timeZone"]) == ("*/15 * * * *", "Forbid", "Etc/UTC")
    assert 0 < spec["startingDeadlineSeconds"] <= 300
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 2
    template = pod(p.standby.plan)
    [container] = template["containers"]
    assert container["image"] == rclone.IMAGE and ":latest" not in container["image"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert template["automountServiceAccountToken"] is False and template["serviceAccountName"] == "replication"
    assert template["nodeSelector"] == {"im-platform/pool": "system"}
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] != "/tmp")
    namespace = [r for r in p.standby.plan.of_type("kubernetes:core/v1:Namespace")
                 if r["inputs"]["metadata"]["name"] == rclone.NAMESPACE][0]
    assert namespace["inputs"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_job_may_reach_https_and_dns_only(combo: tuple[str, str, Pair]) -> None:
    standby, _, p = combo
    policies = {r["inputs"]["metadata"]["name"]: r["inputs"]["spec"] for r in p.standby.plan.of_type(NETWORK_POLICY)
                if r["inputs"]["metadata"]["namespace"] == rclone.NAMESPACE}
    assert set(policies) == {"default-deny", "allow-dns", "replication-egress"}
    egress = policies["replication-egress"]["egress"]
    https = egress[0]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    assert https["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "10.20.0.0/16" in https["to"][0]["ipBlock"]["except"], "nothing inside the cluster's own network"
    metadata = [(rule["to"][0]["ipBlock"]["cidr"], rule["ports"][0]["port"]) for rule in egress[1:]]
    # GKE Workload Identity answers at the metadata server; no other cloud needs it.
    assert metadata == ([("169.254.169.254/32", 80), ("169.254.169.252/32", 988)] if standby == "gcp" else [])


def test_kubernetes_objects_match_the_api_schemas(combo: tuple[str, str, Pair]) -> None:
    from tests.test_manifests import schema_errors

    _, _, p = combo
    objects = [m for m in render(p.standby.plan).objects if m.body["metadata"].get("namespace") == rclone.NAMESPACE]
    assert {m.kind for m in objects} >= {"CronJob", "ServiceAccount", "NetworkPolicy"}
    problems = [f"{m.path}: {e}" for m in objects for e in schema_errors(m.body, "1.33")]
    assert not problems, "\n".join(problems)


def test_both_halves_pass_every_policy_rule(combo: tuple[str, str, Pair]) -> None:
    standby, primary, p = combo
    for cloud, half in ((primary, p.primary), (standby, p.standby)):
        items = [Resource.from_plan(r) for r in half.plan.resources]
        assert evaluate(items, Context(stack=half.plan.stack, environment="prod")) == [], cloud


# ---------------------------------------------------------------------------------------------
# The store on each cloud: private, versioned, encrypted with the stack's key, TLS only,
# lifecycle on old versions, protected in prod.


def store_plan(cloud: str) -> DrPlan:
    other = "gcp" if cloud != "gcp" else "aws"
    return pair(other, cloud).primary


def test_s3_store() -> None:
    plan = store_plan("aws").plan
    bucket = named(plan, "aws:s3/bucket:Bucket", "-store-bucket")
    name = bucket["inputs"]["bucket"]
    assert name == "im-prod-aws-store-123456789012-eu-west-1"
    assert bucket["options"]["protect"] is True and bucket["inputs"]["forceDestroy"] is False
    block = named(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "-public-access-block")["inputs"]
    assert block == {"bucket": name, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                     "restrictPublicBuckets": True}
    ownership = named(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "-ownership")["inputs"]
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = named(plan, "aws:s3/bucketVersioning:BucketVersioning", "-versioning")["inputs"]
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    [rule] = named(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                   "-encryption")["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(plan)}
    [life] = named(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-lifecycle")["inputs"]["rules"]
    assert life["status"] == "Enabled" and life["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    [tls] = policy(named(plan, "aws:s3/bucketPolicy:BucketPolicy", "-tls-only")["inputs"]["policy"])["Statement"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    assert store_plan("aws").outputs["objectStore"] == {
        "cloud": "aws", "name": name, "bucket": name, "arn": f"arn:aws:s3:::{name}", "region": "eu-west-1"}


def test_gcs_store() -> None:
    half = store_plan("gcp")
    plan = half.plan
    bucket = named(plan, "gcp:storage/bucket:Bucket", "-store-bucket")
    inputs = bucket["inputs"]
    assert bucket["options"]["protect"] is True and inputs["forceDestroy"] is False
    assert inputs["uniformBucketLevelAccess"] is True and inputs["publicAccessPrevention"] == "enforced"
    assert inputs["versioning"] == {"enabled": True}
    key = named(plan, "gcp:kms/cryptoKey:CryptoKey", "-secrets-key")
    key_id = f"{named(plan, 'gcp:kms/keyRing:KeyRing', '-keyring')['inputs']['name']}"
    assert inputs["encryption"]["defaultKmsKeyName"].endswith(f"/keyRings/{key_id}/cryptoKeys/{key['inputs']['name']}")
    assert inputs["location"] == "ASIA-EAST1", "a CMEK bucket lives where its key does"
    [rule] = inputs["lifecycleRules"]
    assert rule["action"] == {"type": "Delete"}
    assert rule["condition"] == {"daysSinceNoncurrentTime": 30, "withState": "ARCHIVED"}
    grant = named(plan, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "-key-gcs")
    assert grant["inputs"]["member"].endswith("@gs-project-accounts.iam.gserviceaccount.com")
    assert grant["urn"] in bucket["options"]["dependsOn"], "the service agent may use the key before the bucket exists"
    store = half.outputs["objectStore"]
    assert (store["cloud"], store["bucket"], store["project"]) == ("gcp", inputs["name"], "im-platform-test")


def test_azure_store() -> None:
    half = store_plan("azure")
    plan = half.plan
    account = named(plan, "azure-native:storage:StorageAccount", "-store-account")
    inputs = account["inputs"]
    assert account["options"]["protect"] is True
    assert inputs["allowBlobPublicAccess"] is False and inputs["allowSharedKeyAccess"] is False
    assert inputs["minimumTlsVersion"] == "TLS1_2" and inputs["enableHttpsTrafficOnly"] is True
    assert 3 <= len(inputs["accountName"]) <= 24 and inputs["accountName"].isalnum() and inputs["accountName"].islower()
    encryption = inputs["encryption"]
    vault_key = named(plan, "azure-native:keyvault:Key", "-kms-key")["inputs"]
    assert encryption["keySource"] == "Microsoft.Keyvault"
    assert encryption["keyVaultProperties"]["keyName"] == vault_key["keyName"]
    assert encryption["keyVaultProperties"]["keyVaultUri"] == f"https://{vault_key['vaultName']}.vault.azure.net/"
    key_role = named(plan, "azure-native:authorization:RoleAssignment", "-store-key-user")
    assert key_role["inputs"]["roleDefinitionId"].endswith("/e147488a-f6f5-4113-8e2e-b22465e65bf6")
    assert key_role["urn"] in account["options"]["dependsOn"]
    service = named(plan, "azure-native:storage:BlobServiceProperties", "-blob-service")["inputs"]
    assert service["isVersioningEnabled"] is True and service["accountName"] == inputs["accountName"]
    [rule] = named(plan, "azure-native:storage:ManagementPolicy", "-lifecycle")["inputs"]["policy"]["rules"]
    assert rule["definition"]["actions"] == {"version": {"delete": {"daysAfterCreationGreaterThan": 30}}}
    container = named(plan, "azure-native:storage:BlobContainer", "-store-container")
    assert container["inputs"]["publicAccess"] == "None" and container["options"]["protect"] is True
    store = half.outputs["objectStore"]
    assert store["account"] == inputs["accountName"] and store["container"] == "dr"
    assert store["resourceId"].endswith(f"/storageAccounts/{inputs['accountName']}/blobServices/default/containers/dr")


@pytest.mark.parametrize("cloud, types", [
    ("aws", ["aws:s3/bucket:Bucket"]),
    ("gcp", ["gcp:storage/bucket:Bucket"]),
    ("azure", ["azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer"]),
])
def test_stores_outside_prod_are_not_protected(cloud: str, types: list[str]) -> None:
    other = "aws" if cloud != "aws" else "azure"
    spec = spec_for(cloud, f"dev-{cloud}", f"dev-{other}", other, "primary", environment="dev")
    half = plan_half(spec, {})
    for type_ in types:
        [store] = half.plan.of_type(type_)
        assert store["options"]["protect"] is False


# ---------------------------------------------------------------------------------------------
# Roles, missing outputs and bad peers: skip with a warning, never crash.


def test_a_primary_with_replication_configured_runs_no_job_but_is_ready_to_fail_back() -> None:
    p = pair("azure", "aws")
    spec = spec_for("aws", "prod-aws", "prod-azure", "azure", "primary", replication=30)
    half = plan_half(spec, json.loads(json.dumps(p.standby.outputs)))
    assert half.plan.of_type(CRON_JOB) == [] and half.warnings == []
    assert half.outputs["replication"] == {"namespace": rclone.NAMESPACE, "serviceAccount": "replication",
                                           "intervalMinutes": 30, "schedule": "*/30 * * * *", "active": False}
    # Its peer trusts it already, so a failover only starts the job here.
    peer = plan_half(spec_for("azure", "prod-azure", "prod-aws", "aws", "standby", replication=15),
                     json.loads(json.dumps(half.outputs)))
    assert peer.outputs["replicationSource"]["issuer"] == half.outputs["oidcIssuer"]


@pytest.mark.parametrize("cloud, peer", [("aws", "gcp"), ("gcp", "azure"), ("azure", "aws")])
def test_switching_role_adds_or_removes_the_cron_job_and_nothing_else(cloud: str, peer: str) -> None:
    """On a stack with replication, the failover's diff (beyond the minimums, lowered elsewhere)
    is the CronJob alone: identity, namespace, account, policy and credentials stay."""
    peer_outputs = json.loads(json.dumps(pair(cloud, peer).primary.outputs))
    halves = {role: plan_half(spec_for(cloud, f"prod-{cloud}", f"prod-{peer}", peer, role, replication=15), peer_outputs)
              for role in ("standby", "primary")}
    inputs = {role: {r["urn"]: r["inputs"] for r in half.plan.resources} for role, half in halves.items()}
    only_standby = set(inputs["standby"]) - set(inputs["primary"])
    assert {u.split("::")[-2].split("$")[-1] for u in only_standby} == {CRON_JOB}
    assert set(inputs["primary"]) <= set(inputs["standby"])
    assert [u for u in inputs["primary"] if inputs["primary"][u] != inputs["standby"][u]] == []
    assert halves["primary"].warnings == [] and halves["standby"].warnings == []
    assert halves["primary"].plan.of_type(SERVICE_ACCOUNT) and halves["primary"].plan.of_type(NETWORK_POLICY)


def test_without_replication_nothing_is_trusted_and_nothing_copies() -> None:
    standby = plan_half(spec_for("gcp", "prod-gcp", "prod-aws", "aws", "standby"), {})
    assert "replication" not in standby.outputs and standby.plan.of_type(CRON_JOB) == []
    primary = plan_half(spec_for("aws", "prod-aws", "prod-gcp", "gcp", "primary"),
                        json.loads(json.dumps(standby.outputs)))
    source = primary.outputs["replicationSource"]
    assert (source["issuer"], source["subject"]) == (None, None)
    assert [r["name"] for r in primary.plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")] == [
        "im-prod-aws-oidc"], "only the cluster's own provider: no peer is trusted"
    assert [r for r in primary.plan.of_type("aws:iam/role:Role") if "peer-reader" in r["name"]] == []
    assert primary.warnings == []


@pytest.mark.parametrize("peer_outputs, warning", [
    ({"replication": {"namespace": "im-dr-replication", "serviceAccount": "replication"}}, "no oidcIssuer output yet"),
    ({"replication": {"namespace": "im-dr-replication", "serviceAccount": "*"}, "oidcIssuer": "https://issuer.example"},
     "not a Kubernetes name"),
    ({"replication": {"namespace": "im-dr-replication", "serviceAccount": "replication"}, "oidcIssuer": "http://issuer"},
     "not an https URL"),
])
def test_the_primary_skips_trust_it_cannot_name_exactly(peer_outputs: dict[str, Any], warning: str) -> None:
    half = plan_half(spec_for("azure", "prod-azure", "prod-gcp", "gcp", "primary"), peer_outputs)
    assert half.outputs["replicationSource"]["issuer"] is None
    assert half.plan.of_type("azure-native:managedidentity:FederatedIdentityCredential") == []
    assert len(half.warnings) == 1 and warning in half.warnings[0]


@pytest.mark.parametrize("standby, primary", [("aws", "gcp"), ("gcp", "azure"), ("azure", "aws")])
def test_the_other_first_deployment_order_plans_the_same_job(standby: str, primary: str) -> None:
    """Primary first: its read identity does not wait for the peer, so the standby plans the very
    job it plans in the other order, warned that the primary's trust follows on its next `up`."""
    p = pair(standby, primary)
    primary_spec = spec_for(primary, f"prod-{primary}", f"prod-{standby}", standby, "primary")
    standby_spec = spec_for(standby, f"prod-{standby}", f"prod-{primary}", primary, "standby", replication=15)
    primary_first = plan_half(primary_spec, {})
    assert primary_first.outputs["replicationSource"]["issuer"] is None and primary_first.warnings == []
    standby_second = plan_half(standby_spec, json.loads(json.dumps(primary_first.outputs)))
    assert env(standby_second.plan) == env(p.standby.plan)
    assert pod(standby_second.plan) == pod(p.standby.plan)
    assert len(standby_second.warnings) == 1
    assert f"cannot read until prod-{primary} is deployed again" in standby_second.warnings[0]
    primary_third = plan_half(primary_spec, json.loads(json.dumps(standby_second.outputs)))
    assert primary_third.outputs["replicationSource"] == p.primary.outputs["replicationSource"]
    assert unknowns(primary_first) == [] and unknowns(standby_second) == []


def test_the_job_warns_until_the_primary_trusts_this_clusters_issuer() -> None:
    p = pair("aws", "gcp")
    stale = dict(p.primary.outputs)
    stale["replicationSource"] = {**stale["replicationSource"], "issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/OLD"}
    spec = spec_for("aws", "prod-aws", "prod-gcp", "gcp", "standby", replication=15)
    half = plan_half(spec, json.loads(json.dumps(stale)))
    assert env(half.plan) == env(p.standby.plan)
    assert len(half.warnings) == 1 and "/id/OLD" in half.warnings[0] and "prod-gcp is deployed again" in half.warnings[0]


def test_the_job_refuses_a_source_on_another_cloud_than_the_peer() -> None:
    p = pair("aws", "gcp")
    spec = spec_for("aws", "prod-aws", "prod-gcp", "azure", "standby", replication=15)
    half = plan_half(spec, json.loads(json.dumps(p.primary.outputs)))
    assert half.plan.of_type(CRON_JOB) == []
    assert len(half.warnings) == 1 and "replicationSource names gcp" in half.warnings[0]


def test_taggable_store_types_are_checked_by_the_tag_rule() -> None:
    """As tests/test_policy.py does for the cluster: every resource type the DR pieces declare that
    takes tags (labels on GCP) is in TAG_PATHS, and carries the stack's tags."""
    import importlib
    import inspect

    from infra.policy.rules import TAG_PATHS

    checked = set()
    for standby, primary in COMBINATIONS:
        p = pair(standby, primary)
        for record in [*p.primary.plan.resources, *p.standby.plan.resources]:
            package, module, cls_name = record["type"].split(":")
            if not record["custom"] or package not in ("aws", "gcp", "azure-native") or record["type"] in checked:
                continue
            sdk = importlib.import_module(f"pulumi_{package.replace('-', '_')}.{module.split('/')[0]}")
            params = inspect.signature(getattr(sdk, cls_name)._internal_init).parameters
            taggable = "tags" in params or "labels" in params or "resource_labels" in params \
                or record["type"] == "gcp:container/nodePool:NodePool"
            assert (record["type"] in TAG_PATHS) is taggable, record["type"]
            checked.add(record["type"])
    assert {"aws:s3/bucket:Bucket", "gcp:storage/bucket:Bucket", "azure-native:storage:StorageAccount"} <= checked


def test_the_replication_objects_pass_checkov_but_for_listed_skips(tmp_path: Path) -> None:
    """The job's objects hold up to checkov's Kubernetes checks like the tiers do (one pair per
    standby cloud); tests/checkov-skips.yaml lists any exception with its reason."""
    from infra.offline.manifests import write
    from tests.test_manifests import checkov_executable, failed_checks, read_skips

    executable = checkov_executable()
    if executable is None:
        message = "checkov is not installed (./setup.sh makes venv-checks/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    for standby, primary in (("aws", "gcp"), ("gcp", "azure"), ("azure", "aws")):
        write(render(pair(standby, primary).standby.plan), tmp_path / f"standby-{standby}")
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    # Not --quiet: the passed checks show that the CronJobs were scanned at all.
    result = subprocess.run([executable, "-d", str(tmp_path), "--framework", "kubernetes", "--output", "json",
                             "--compact", "--skip-download"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    passed = [c["file_path"] for r in reports for c in (r.get("results") or {}).get("passed_checks") or []]
    scanned = {p for p in passed if p.endswith(f"{rclone.NAMESPACE}/cronjob-replication.yaml")}
    assert len(scanned) == 3, f"checkov did not scan the three CronJobs: {sorted(set(passed))[:10]}"
    skips = read_skips()
    unlisted = sorted(f"{c['check_id']}  {c['file_path']}" for c in failed_checks(report)
                      if rclone.NAMESPACE in c["file_path"] and c["check_id"] not in skips)
    assert not unlisted, "\n".join(unlisted)
