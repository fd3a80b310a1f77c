"""The policy guardrails (infra/policy/rules.py), their offline `check` command and the policy pack.

- Every rule passes on what the program declares, on every cloud, and fails, naming itself, on a
  crafted violation of each resource type it covers.
- `python -m infra.cli check` passes on every stack in stacks/ and fails with the rule's name on
  every crafted bad stack in tests/bad-stacks/ (exit 1), and exits 2 on a configuration error.
- The policy pack, run by pulumi-policy's own analyzer in the pack's virtual environment
  (policy/venv, built by .ci/run), reports exactly the violations `check` reports, and serves
  them as `pulumi preview --policy-pack policy` starts it, reading the stack's guardrails from
  PULUMI_CONFIG. The module that constructs the PolicyPack is never imported here (it blocks).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import infra.offline.plan
from infra import cli
from infra.offline.plan import Plan, all_stacks, read_stack_config
from infra.policy.check import PLAINTEXT_SECRETS
from infra.policy.rules import (
    AWS_BUCKET,
    AWS_BUCKET_POLICY,
    AWS_BUCKET_VERSIONING,
    AWS_CLUSTER,
    AWS_LAUNCH_TEMPLATE,
    AWS_NODE_GROUP,
    AWS_PUBLIC_ACCESS_BLOCK,
    AWS_ROLE,
    AWS_SUBNET,
    AZURE_AGENT_POOL,
    AZURE_BLOB_CONTAINER,
    AZURE_BLOB_SERVICE,
    AZURE_CLUSTER,
    AZURE_DIAGNOSTIC_SETTINGS,
    AZURE_FEDERATED_CREDENTIAL,
    AZURE_STORAGE_ACCOUNT,
    GCP_BUCKET,
    GCP_CLUSTER,
    GCP_NODE_POOL,
    GCP_POOL_PROVIDER,
    RULES,
    RULES_BY_NAME,
    UNKNOWN,
    Context,
    Resource,
    Violation,
    evaluate,
    open_to_world,
)
from tests.conftest import ROOT, make_config, spec_plan
from tests.plans import sharing_plans

BAD_STACKS = sorted((ROOT / "tests" / "bad-stacks").glob("Pulumi.*.yaml"))
CLOUDS = ("aws", "gcp", "azure")
POLICY_PYTHON = Path(os.environ.get("IM_PLATFORM_POLICY_PYTHON", ROOT / "policy" / "venv" / "bin" / "python"))


# ---------------------------------------------------------------------------------------------
# Plans: each one planned once per session (tests/plans.py).

_real_plan_stack = infra.offline.plan.plan_stack


def cached_plan(stack: str | None = None, config_file: Path | None = None) -> Plan:
    with sharing_plans():
        return _real_plan_stack(stack, config_file)


@pytest.fixture(autouse=True)
def _reuse_plans(shared_plans: None) -> None:
    # `check` plans through infra.offline.plan: the same stack is planned once per session.
    return


def baseline(cloud: str) -> Plan:
    """The shared spec (tests/conftest.py CLUSTER) planned as prod on one cloud, shared with the
    contract tests."""
    return spec_plan(cloud)


def ctx_for(cloud: str, **changes: Any) -> Context:
    return replace(Context(stack=f"prod-{cloud}", environment="prod"), **changes)


def resources(cloud: str) -> list[Resource]:
    return [Resource.from_plan(r) for r in baseline(cloud).resources]


def first(items: list[Resource], type_: str, pool: str | None = None) -> Resource:
    for r in items:
        if r.type == type_ and (pool is None or r.name.endswith(f"-{pool}")):
            return r
    raise AssertionError(f"no {type_} {pool or ''} in the plan")


def setting(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of props with path ("a.b" or "a.list[0].b") set; DELETE removes the key."""
    out = copy.deepcopy(props)
    node: Any = out
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if value is DELETE:
        node.pop(last, None)
    elif last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return out


DELETE = object()


def mutate(r: Resource, path: str, value: Any) -> Resource:
    return replace(r, props=setting(dict(r.props), path, value))


def rules_violated(items: list[Resource], ctx: Context) -> dict[str, list[Violation]]:
    found: dict[str, list[Violation]] = {}
    for v in evaluate(items, ctx):
        found.setdefault(v.rule, []).append(v)
    return found


# ---------------------------------------------------------------------------------------------
# Passing cases: everything the program declares.


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_rule_passes_on_what_the_program_declares(cloud: str) -> None:
    items = resources(cloud)
    types = {r.type for r in items}
    assert {AWS_CLUSTER, AWS_NODE_GROUP} <= types or {GCP_CLUSTER, GCP_NODE_POOL} <= types or {AZURE_CLUSTER, AZURE_AGENT_POOL} <= types
    assert evaluate(items, ctx_for(cloud)) == []


@pytest.mark.parametrize("stack", all_stacks())
def test_check_passes_on_every_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["check", "--stack", stack]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"check {stack}: {len(RULES) + 1} rules passed over "), "the verdict is on stdout"
    assert len(out.splitlines()) == 1 and err == ""


# ---------------------------------------------------------------------------------------------
# Failing cases: one crafted violation per rule, cloud and resource type it covers. Each case
# changes one resource of the real plan; `expect` must appear in the violation's message.

Change = Callable[[list[Resource]], list[Resource]]


def change(type_: str, path: str, value: Any, pool: str | None = None) -> Change:
    def apply(items: list[Resource]) -> list[Resource]:
        target = first(items, type_, pool)
        return [mutate(r, path, value) if r is target else r for r in items]
    return apply


def options(type_: str, pool: str | None = None, **changes: Any) -> Change:
    def apply(items: list[Resource]) -> list[Resource]:
        target = first(items, type_, pool)
        return [replace(r, **changes) if r is target else r for r in items]
    return apply


def without(*types: str) -> Change:
    return lambda items: [r for r in items if r.type not in types]


def extra(resource: Resource) -> Change:
    return lambda items: [*items, resource]


def extras(*added: Resource) -> Change:
    return lambda items: [*items, *added]


# TLS objects as components/k8s declares them, to break one property at a time.

def issuer(dns01: dict[str, Any]) -> Resource:
    return Resource("kubernetes:cert-manager.io/v1:ClusterIssuer", "issuer", "urn:issuer", {
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "acme"},
        "spec": {"acme": {"server": "https://acme.example/directory", "privateKeySecretRef": {"name": "account"},
                          "solvers": [{"dns01": dns01}]}}})


def tier_with_budget(budget: dict[str, Any] | None, namespace: str = "im") -> list[Resource]:
    """A tier's Deployment as components/k8s/services.py declares it, and its PodDisruptionBudget
    (in `namespace`, with this spec; None: no budget at all)."""
    selector = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/part-of": "im-platform"}
    deployment = Resource("kubernetes:apps/v1:Deployment", "gateway-deployment", "urn:deployment", {
        "metadata": {"name": "gateway", "namespace": "im"},
        "spec": {"selector": {"matchLabels": selector}, "template": {
            "metadata": {"labels": {**selector, "app.kubernetes.io/component": "tier"}},
            "spec": {"containers": [{"name": "gateway", "image": "gw:1"}]}}}})
    if budget is None:
        return [deployment]
    return [deployment, Resource("kubernetes:policy/v1:PodDisruptionBudget", "gateway-budget", "urn:budget", {
        "metadata": {"name": "gateway", "namespace": namespace},
        "spec": {**budget, "selector": {"matchLabels": selector}}})]


def scaled_tier(**spec: Any) -> Resource:
    """A tier's ScaledObject as components/k8s/keda.py declares it, with `spec` keys replaced (DELETE
    removes one)."""
    body: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"},
        "minReplicaCount": 3, "maxReplicaCount": 60,
        "fallback": {"failureThreshold": 4, "replicas": 3, "behavior": "currentReplicasIfHigher"},
        "triggers": [{"type": "prometheus", "metadata": {"query": "sum(im_gateway_connections)", "threshold": "20000"}}],
    }
    for key, value in spec.items():
        if value is DELETE:
            body.pop(key)
        else:
            body[key] = value
    return Resource("kubernetes:keda.sh/v1alpha1:ScaledObject", "gateway-scaling", "urn:scaledobject", {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "gateway", "namespace": "im"}, "spec": body})


def pinned_tier(pool: str, most: int, cpu: str = "2", memory: str = "2Gi") -> list[Resource]:
    """A tier pinned to `pool` with its budget, scaled by a ScaledObject up to `most` replicas."""
    deployment, budget = tier_with_budget({"maxUnavailable": 1})
    pod = {"nodeSelector": {"im-platform/pool": pool}, "containers": [
        {"name": "gateway", "image": "gw:1", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    deployment = mutate(deployment, "spec.template.spec", pod)
    return [deployment, budget, scaled_tier(maxReplicaCount=most)]


def public_tier(*, sidecar: bool, mounted: bool = True, target: str | None = None) -> list[Resource]:
    """A LoadBalancer Service and its Deployment: with the TLS sidecar (mounting the certificate or
    not), or sending 443 straight to the tier (which mounts the certificate or not)."""
    labels = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/part-of": "im-platform"}
    certificate_mount = [{"name": "cert", "mountPath": "/etc/tls", "readOnly": True}] if mounted else []
    tier = {"name": "gateway", "image": "gw:1", "ports": [{"name": "app", "containerPort": 8080}],
            "volumeMounts": [] if sidecar else certificate_mount}
    pod: dict[str, Any] = {"containers": [tier], "volumes": [{"name": "cert", "secret": {"secretName": "tls"}}]}
    if sidecar:
        pod["initContainers"] = [{"name": "tls-proxy", "image": "envoy:1", "restartPolicy": "Always",
                                  "ports": [{"name": "tls", "containerPort": 8443}], "volumeMounts": certificate_mount}]
    service = Resource("kubernetes:core/v1:Service", "gateway-service", "urn:service", {
        "metadata": {"name": "gateway", "namespace": "im"},
        "spec": {"type": "LoadBalancer", "selector": labels,
                 "ports": [{"name": "app", "port": 443, "targetPort": target or ("tls" if sidecar else "app")}]}})
    deployment = Resource("kubernetes:apps/v1:Deployment", "gateway-deployment", "urn:deployment", {
        "metadata": {"name": "gateway", "namespace": "im"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod}}})
    return [service, deployment]


# Object stores as components/dr declares them (private, versioned), to break one property at a time.

def _tags(cloud: str) -> dict[str, str]:
    return {"environment": "prod", "stack": f"prod-{cloud}", "managed-by": "im-platform"}


def s3_store(*, block: dict[str, Any] | None = None, versioning: str | None = "Enabled",
             acl: str | None = None) -> list[Resource]:
    bucket_props: dict[str, Any] = {"bucket": "store", "tags": _tags("aws"), **({"acl": acl} if acl else {})}
    found = [Resource(AWS_BUCKET, "store", "urn:s3:store", bucket_props)]
    if block is not None:
        flags = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}
        found.append(Resource(AWS_PUBLIC_ACCESS_BLOCK, "store-block", "urn:s3:block", {"bucket": "store", **flags, **block}))
    if versioning is not None:
        found.append(Resource(AWS_BUCKET_VERSIONING, "store-versioning", "urn:s3:versioning",
                              {"bucket": "store", "versioningConfiguration": {"status": versioning}}))
    return found


def gcs_bucket(**changes: Any) -> Resource:
    props = {"name": "store", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced",
             "versioning": {"enabled": True}, "labels": _tags("gcp"), **changes}
    return Resource(GCP_BUCKET, "store", "urn:gcs:store", props)


def gcs_member(member: str) -> Resource:
    return Resource("gcp:storage/bucketIAMMember:BucketIAMMember", "reader", "urn:gcs:reader",
                    {"bucket": "store", "role": "roles/storage.objectViewer", "member": member})


def azure_store(*, account: dict[str, Any] | None = None, service: dict[str, Any] | None = None,
                container: dict[str, Any] | None = None, with_service: bool = True) -> list[Resource]:
    found = [
        Resource(AZURE_STORAGE_ACCOUNT, "store", "urn:az:account",
                 {"accountName": "store", "allowBlobPublicAccess": False, "tags": _tags("azure"), **(account or {})}),
        Resource(AZURE_BLOB_CONTAINER, "container", "urn:az:container",
                 {"accountName": "store", "publicAccess": "None", **(container or {})}),
    ]
    if with_service:
        found.append(Resource(AZURE_BLOB_SERVICE, "blob", "urn:az:blob",
                              {"accountName": "store", "isVersioningEnabled": True, **(service or {})}))
    return found


def trust_policy(statement: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


WEB_IDENTITY = {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/issuer.example/id/1"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"issuer.example/id/1:sub": "system:serviceaccount:ns:sa",
                                               "issuer.example/id/1:aud": "sts.amazonaws.com"}}}


def role(statement: dict[str, Any]) -> Resource:
    return Resource(AWS_ROLE, "reader", "urn:iam:reader", {"assumeRolePolicy": trust_policy(statement), "tags": _tags("aws")})


def pool_provider(**changes: Any) -> Resource:
    return Resource(GCP_POOL_PROVIDER, "peer", "urn:gcp:peer",
                    {"oidc": {"issuerUri": "https://issuer.example"}, "attributeMapping": {"google.subject": "assertion.sub"},
                     "attributeCondition": "assertion.sub == 'system:serviceaccount:ns:sa'", **changes})


def federated_credential(subject: str) -> Resource:
    return Resource(AZURE_FEDERATED_CREDENTIAL, "peer", "urn:az:fic",
                    {"issuer": "https://issuer.example/", "subject": subject, "audiences": ["api://AzureADTokenExchange"]})


FAILING: list[tuple[str, str, Change, str]] = [
    # rule, cloud, change, expected message fragment
    ("api-endpoint-not-open", "aws", change(AWS_CLUSTER, "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]), "'0.0.0.0/0'"),
    ("api-endpoint-not-open", "aws", change(AWS_CLUSTER, "vpcConfig.publicAccessCidrs", DELETE), "no publicAccessCidrs"),
    ("api-endpoint-not-open", "gcp", change(GCP_CLUSTER, "masterAuthorizedNetworksConfig.cidrBlocks",
                                            [{"cidrBlock": "203.0.113.0/24"}, {"cidrBlock": "0.0.0.0/0"}]), "'0.0.0.0/0'"),
    ("api-endpoint-not-open", "gcp", change(GCP_CLUSTER, "masterAuthorizedNetworksConfig", DELETE), "no masterAuthorizedNetworksConfig"),
    ("api-endpoint-not-open", "gcp", change(GCP_CLUSTER, "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled", True),
     "every Google Cloud public IP"),
    ("api-endpoint-not-open", "azure", change(AZURE_CLUSTER, "apiServerAccessProfile.authorizedIPRanges", ["::/0"]), "'::/0'"),
    ("api-endpoint-not-open", "azure", change(AZURE_CLUSTER, "apiServerAccessProfile.authorizedIPRanges", []), "any address"),
    ("secrets-encryption", "aws", change(AWS_CLUSTER, "encryptionConfig", DELETE), "encryptionConfig"),
    ("secrets-encryption", "aws", change(AWS_CLUSTER, "encryptionConfig.resources", []), "encryptionConfig"),
    ("secrets-encryption", "gcp", change(GCP_CLUSTER, "databaseEncryption.state", "DECRYPTED"), "ENCRYPTED"),
    ("secrets-encryption", "azure", change(AZURE_CLUSTER, "securityProfile.azureKeyVaultKms.enabled", False), "azureKeyVaultKms"),
    ("audit-logging", "aws", change(AWS_CLUSTER, "enabledClusterLogTypes", ["api", "authenticator"]), '"audit"'),
    ("audit-logging", "gcp", change(GCP_CLUSTER, "loggingConfig.enableComponents", ["SYSTEM_COMPONENTS"]), "APISERVER"),
    ("audit-logging", "gcp", change(GCP_CLUSTER, "loggingService", "none"), "loggingService"),
    ("audit-logging", "azure", without(*AZURE_DIAGNOSTIC_SETTINGS), "kube-audit"),
    ("audit-logging", "azure", change(AZURE_DIAGNOSTIC_SETTINGS[0], "logs", [{"category": "kube-apiserver", "enabled": True}]),
     "kube-audit"),
    ("audit-logging", "azure", change(AZURE_DIAGNOSTIC_SETTINGS[0], "resourceUri",
                                      "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerService/managedClusters/other"),
     "kube-audit"),
    ("no-public-node-ips", "aws", change(AWS_LAUNCH_TEMPLATE, "networkInterfaces", [{"associatePublicIpAddress": "true"}]),
     "associatePublicIpAddress"),
    ("no-public-node-ips", "aws", change(AWS_SUBNET, "mapPublicIpOnLaunch", True), "mapPublicIpOnLaunch"),
    ("no-public-node-ips", "gcp", change(GCP_CLUSTER, "privateClusterConfig.enablePrivateNodes", False), "enablePrivateNodes"),
    ("no-public-node-ips", "gcp", change(GCP_NODE_POOL, "networkConfig.enablePrivateNodes", False), "enablePrivateNodes"),
    ("no-public-node-ips", "azure", change(AZURE_AGENT_POOL, "enableNodePublicIP", True), "enableNodePublicIP"),
    ("no-public-node-ips", "azure", change(AZURE_CLUSTER, "agentPoolProfiles[0].enableNodePublicIP", True), "enableNodePublicIP"),
    ("autoscaler-owns-count", "aws", options(AWS_NODE_GROUP, ignore_changes=()), "scalingConfig.desiredSize"),
    ("autoscaler-owns-count", "aws", options(AWS_NODE_GROUP, ignore_changes=("scalingConfig",)), "hides more"),
    ("autoscaler-owns-count", "gcp", options(GCP_NODE_POOL, ignore_changes=("nodeCount",)), "initialNodeCount"),
    ("autoscaler-owns-count", "gcp", options(GCP_NODE_POOL, ignore_changes=("initialNodeCount", "nodeCount", "autoscaling")),
     "hides more"),
    ("autoscaler-owns-count", "azure", options(AZURE_AGENT_POOL, ignore_changes=()), "count"),
    ("autoscaler-owns-count", "azure", options(AZURE_CLUSTER, ignore_changes=("agentPoolProfiles",)), "hides more"),
    ("autoscaler-owns-count", "azure", options(AZURE_CLUSTER, ignore_changes=()), "agentPoolProfiles[0].count"),
    ("system-pool-not-spot", "aws", change(AWS_NODE_GROUP, "capacityType", "SPOT", pool="system"), "SPOT"),
    ("system-pool-not-spot", "gcp", change(GCP_NODE_POOL, "nodeConfig.spot", True, pool="system"), "spot"),
    ("system-pool-not-spot", "gcp", change(GCP_NODE_POOL, "nodeConfig.preemptible", True, pool="system"), "preemptible"),
    ("system-pool-not-spot", "azure", change(AZURE_CLUSTER, "agentPoolProfiles[0].scaleSetPriority", "Spot"), "Spot"),
    ("prod-cluster-protected", "aws", options(AWS_CLUSTER, protect=False), "protect=True"),
    ("prod-cluster-protected", "aws", change(AWS_CLUSTER, "deletionProtection", False), "deletionProtection"),
    ("prod-cluster-protected", "gcp", options(GCP_CLUSTER, protect=False), "protect=True"),
    ("prod-cluster-protected", "gcp", change(GCP_CLUSTER, "deletionProtection", False), "deletionProtection"),
    ("prod-cluster-protected", "azure", options(AZURE_CLUSTER, protect=False), "protect=True"),
    ("required-tags", "aws", change("aws:ec2/vpc:Vpc", "tags.stack", DELETE), "missing stack"),
    ("required-tags", "aws", change(AWS_NODE_GROUP, "tags", DELETE), "missing environment, stack, managed-by"),
    ("required-tags", "gcp", change(GCP_NODE_POOL, "nodeConfig.resourceLabels.managed-by", DELETE), "missing managed-by"),
    ("required-tags", "gcp", change(GCP_CLUSTER, "resourceLabels", DELETE), "resourceLabels is missing"),
    ("required-tags", "azure", change("azure-native:resources:ResourceGroup", "tags.environment", "dev"), "expected 'prod'"),
    ("required-tags", "azure", change(AZURE_CLUSTER, "agentPoolProfiles[0].tags", {}), "agentPoolProfiles[0].tags"),
    ("required-tags", "aws", extra(Resource("aws:s3/bucket:Bucket", "logs", "urn:bucket", {"tags": {"environment": "prod"}})),
     "missing stack, managed-by"),
    ("max-nodes-per-pool", "aws", change(AWS_NODE_GROUP, "scalingConfig.maxSize", 201, pool="worker"), "201 nodes"),
    # The policy SDK hands numbers over as doubles.
    ("max-nodes-per-pool", "aws", change(AWS_NODE_GROUP, "scalingConfig.maxSize", 201.0, pool="worker"), "201 nodes"),
    ("max-nodes-per-pool", "gcp", change(GCP_NODE_POOL, "autoscaling.totalMaxNodeCount", 201, pool="worker"), "201 nodes"),
    ("max-nodes-per-pool", "gcp", change(GCP_NODE_POOL, "autoscaling", {"minNodeCount": 0, "maxNodeCount": 70}, pool="worker"),
     "210 nodes"),
    ("max-nodes-per-pool", "azure", change(AZURE_AGENT_POOL, "maxCount", 201), "201 nodes"),
    ("max-nodes-per-pool", "azure", change(AZURE_CLUSTER, "agentPoolProfiles[0].maxCount", 250), "250 nodes"),
    ("max-nodes-per-cluster", "aws", change(AWS_NODE_GROUP, "scalingConfig.maxSize", 200, pool="worker"), "all ("),
    ("max-nodes-per-cluster", "gcp", change(GCP_NODE_POOL, "autoscaling.totalMaxNodeCount", 200, pool="gateway"), "all ("),
    ("max-nodes-per-cluster", "azure", change(AZURE_CLUSTER, "agentPoolProfiles[0].maxCount", 200), "all ("),
    ("object-store-private", "aws", extras(*s3_store(block={"blockPublicPolicy": False})), "blockPublicPolicy"),
    ("object-store-private", "aws", extras(*s3_store()), "no aws:s3/bucketPublicAccessBlock"),
    ("object-store-private", "aws", extras(*s3_store(block={}, acl="public-read")), "'public-read'"),
    ("object-store-private", "gcp", extras(gcs_bucket(publicAccessPrevention="inherited")), "publicAccessPrevention"),
    ("object-store-private", "gcp", extras(gcs_bucket(uniformBucketLevelAccess=False)), "uniformBucketLevelAccess"),
    ("object-store-private", "gcp", extras(gcs_bucket(), gcs_member("allUsers")), "allUsers"),
    ("object-store-private", "azure", extras(*azure_store(account={"allowBlobPublicAccess": True})), "allowBlobPublicAccess"),
    ("object-store-private", "azure", extras(*azure_store(container={"publicAccess": "Container"})), "publicAccess 'Container'"),
    ("no-wildcard-principal", "aws", extras(role({**WEB_IDENTITY, "Principal": {"Federated": "*"}})), "any principal"),
    ("no-wildcard-principal", "aws", extras(role({**WEB_IDENTITY, "Condition": {
        "StringLike": {"issuer.example/id/1:sub": "system:serviceaccount:*"}}})), "exactly one subject"),
    ("no-wildcard-principal", "aws", extras(*s3_store(block={}), Resource(
        AWS_BUCKET_POLICY, "store-policy", "urn:s3:policy",
        {"bucket": "store", "policy": trust_policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                     "Resource": "arn:aws:s3:::store/*"})})), "any principal"),
    ("no-wildcard-principal", "gcp", extras(pool_provider(attributeCondition="")), "attributeCondition is empty"),
    ("no-wildcard-principal", "gcp", extras(gcs_bucket(), gcs_member(
        "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/peer/*")), "every identity"),
    ("no-wildcard-principal", "azure", extras(federated_credential("system:serviceaccount:*")), "a pattern"),
    ("object-store-versioned", "aws", extras(*s3_store(block={}, versioning=None)), "no aws:s3/bucketVersioning"),
    ("object-store-versioned", "aws", extras(*s3_store(block={}, versioning="Suspended")), "'Suspended'"),
    ("object-store-versioned", "gcp", extras(gcs_bucket(versioning={"enabled": False})), "versioning.enabled"),
    ("object-store-versioned", "azure", extras(*azure_store(with_service=False)), "no azure-native:storage:BlobServiceProperties"),
    ("object-store-versioned", "azure", extras(*azure_store(service={"isVersioningEnabled": False})), "isVersioningEnabled"),
    ("issuer-no-stored-credentials", "aws", extras(issuer({"route53": {"region": "us-east-1", "hostedZoneID": "Z1",
        "accessKeyID": "AKIAEXAMPLE", "secretAccessKeySecretRef": {"name": "route53", "key": "secret"}}})),
     "spec.acme.solvers[0].dns01.route53.accessKeyID"),
    ("issuer-no-stored-credentials", "gcp", extras(issuer({"cloudDNS": {
        "project": "p", "serviceAccountSecretRef": {"name": "dns-key", "key": "key.json"}}})), "serviceAccountSecretRef"),
    ("issuer-no-stored-credentials", "azure", extras(issuer({"azureDNS": {
        "clientID": "c", "clientSecretSecretRef": {"name": "dns", "key": "secret"}}})), "clientSecretSecretRef"),
    ("public-tier-tls", "aws", extras(*public_tier(sidecar=False)), "serves no TLS certificate"),
    ("public-tier-tls", "gcp", extras(*public_tier(sidecar=True, mounted=False)), "tls-proxy, which serves no TLS"),
    ("public-tier-tls", "azure", extras(*public_tier(sidecar=False, mounted=True)), "sends port 443 to gateway"),
    ("tier-disruption-budget", "aws", extras(*tier_with_budget(None)), "has no PodDisruptionBudget selecting its pods"),
    ("tier-disruption-budget", "aws", extras(*tier_with_budget({"maxUnavailable": 1}, namespace="other")),
     "im/gateway has no PodDisruptionBudget"),
    ("tier-disruption-budget", "gcp", extras(*tier_with_budget({"maxUnavailable": 0})),
     "allows no pod down (maxUnavailable 0)"),
    ("tier-disruption-budget", "azure", extras(*tier_with_budget({"minAvailable": "100%"})),
     "allows no pod down (minAvailable 100%)"),
    ("scaled-tier-fallback", "aws", extras(scaled_tier(fallback=DELETE)), "has no fallback"),
    ("scaled-tier-fallback", "gcp", extras(scaled_tier(fallback={"failureThreshold": 3, "replicas": 2})),
     "behavior 'static'"),
    ("scaled-tier-fallback", "azure", extras(scaled_tier(minReplicaCount=1)), "minReplicaCount 1"),
    ("scaled-tier-fallback", "azure", extras(scaled_tier(minReplicaCount=DELETE)), "minReplicaCount 0"),
    # The shared spec's gateway pool: 8 vCPU, 16 GiB nodes, maxNodes 40. 2-CPU pods: 3 a node.
    ("tier-fits-pool", "aws", extras(*pinned_tier("gateway", 200)), "replicas.max 200 needs 67 nodes of pool gateway"),
    ("tier-fits-pool", "gcp", extras(*pinned_tier("gateway", 121)), "but its maxNodes is 40"),
    ("tier-fits-pool", "azure", extras(*pinned_tier("gateway", 3, memory="64Gi")), "fits no node of pool gateway"),
    # The shared spec as planned, under a 1000 USD limit (its max is far above it).
    ("max-monthly-cost", "aws", lambda items: items, "above im-platform:guardrails.maxMonthlyCost (1000.00)"),
    ("max-monthly-cost", "gcp", lambda items: items, "above im-platform:guardrails.maxMonthlyCost (1000.00)"),
    ("max-monthly-cost", "azure", lambda items: items, "above im-platform:guardrails.maxMonthlyCost (1000.00)"),
]


def cluster_case_context(rule: str, cloud: str) -> Context:
    """The cluster cases raise one pool to the 200-node pool limit: within it, but the pools
    together (124 nodes in the shared spec, plus the raise) then pass a 200-node cluster limit."""
    if rule == "max-monthly-cost":
        return spec_context(cloud, max_monthly_cost=Decimal(1000))
    if rule == "tier-fits-pool":
        return spec_context(cloud)  # the pools' shapes and maxNodes
    return ctx_for(cloud, max_nodes_per_cluster=200) if rule == "max-nodes-per-cluster" else ctx_for(cloud)


def spec_context(cloud: str, **changes: Any) -> Context:
    """The Context `check` builds for the shared spec (conftest.CLUSTER) as prod on one cloud."""
    from infra.config.loader import load_spec

    return replace(Context.from_spec(load_spec(make_config(cloud), project="im-platform", stack=f"prod-{cloud}")),
                   **changes)


def context_json(ctx: Context) -> dict[str, Any]:
    """A Context as policy.offline's --batch reads it."""
    return {"stack": ctx.stack, "environment": ctx.environment, "maxNodesPerPool": ctx.max_nodes_per_pool,
            "maxNodesPerCluster": ctx.max_nodes_per_cluster,
            "maxMonthlyCost": None if ctx.max_monthly_cost is None else str(ctx.max_monthly_cost),
            "cloud": ctx.cloud, "region": ctx.region, "costCatalog": ctx.cost_catalog,
            "costPools": [{"name": p.name, "instanceTypes": list(p.instance_types), "spot": p.spot,
                           "minNodes": p.min_nodes, "maxNodes": p.max_nodes} for p in ctx.cost_pools],
            "tlsSelf": list(ctx.tls_self),
            "poolShapes": [{"name": n, "vcpu": v, "memoryGiB": m, "maxNodes": x} for n, v, m, x in ctx.pool_shapes],
            "drStandby": ctx.dr_standby}


def _case_id(case: tuple[str, str, Change, str]) -> str:
    return f"{case[0]}-{case[1]}-{re.sub(r'[^a-z0-9]+', '-', case[3].lower()).strip('-')}"


CASE_IDS = [f"{i:02d}-{_case_id(c)}" for i, c in enumerate(FAILING)]
assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", FAILING, ids=CASE_IDS)
def test_each_rule_fails_on_a_crafted_violation(case: tuple[str, str, Change, str]) -> None:
    rule, cloud, apply, expect = case
    ctx = cluster_case_context(rule, cloud)
    found = rules_violated(apply(resources(cloud)), ctx)
    assert set(found) == {rule}, f"expected only {rule}, got {found}"
    assert any(expect in v.message for v in found[rule]), [v.message for v in found[rule]]
    assert all(v.urn for v in found[rule]), "every violation names the resource"


def test_every_rule_has_a_failing_case_on_every_cloud_it_covers() -> None:
    covered = {(rule, cloud) for rule, cloud, _, _ in FAILING}
    assert covered == {(r.name, c) for r in RULES for c in r.clouds}


@pytest.mark.parametrize("budget", [{"maxUnavailable": 1}, {"maxUnavailable": "25%"}, {"minAvailable": 1}])
def test_a_tier_with_a_budget_that_lets_one_pod_go_passes(budget: dict[str, Any]) -> None:
    items = [*resources("aws"), *tier_with_budget(budget)]
    assert rules_violated(items, ctx_for("aws")) == {}


def test_placeholders_that_are_not_a_tier_need_no_budget() -> None:
    """The capacity buffer's pods carry another component label: they are meant to go first."""
    deployment, = tier_with_budget(None)
    labels = deployment.props["spec"]["template"]["metadata"]["labels"]
    buffer = mutate(deployment, "spec.template.metadata.labels", {**labels, "app.kubernetes.io/component": "capacity-buffer"})
    assert rules_violated([*resources("aws"), buffer], ctx_for("aws")) == {}


@pytest.mark.parametrize("cloud, added", [
    ("aws", [*s3_store(block={}), role(WEB_IDENTITY), Resource(
        AWS_BUCKET_POLICY, "store-tls", "urn:s3:tls",
        {"bucket": "store", "policy": trust_policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                     "Resource": "arn:aws:s3:::store/*",
                                                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}})})]),
    ("gcp", [gcs_bucket(), pool_provider(), gcs_member(
        "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/peer/subject/system:serviceaccount:ns:sa")]),
    ("azure", [*azure_store(), federated_credential("system:serviceaccount:ns:sa")]),
], ids=CLOUDS)
def test_private_versioned_stores_and_pinned_trust_pass(cloud: str, added: list[Resource]) -> None:
    """What components/dr declares passes; a Deny to every principal (TLS only) is not a wildcard grant."""
    assert rules_violated([*resources(cloud), *added], ctx_for(cloud)) == {}


def test_the_tls_sidecar_with_its_certificate_and_a_tier_that_says_it_ends_tls_pass() -> None:
    assert rules_violated([*resources("aws"), *public_tier(sidecar=True)], ctx_for("aws")) == {}
    # 443 straight to the tier, which the stack says ends TLS itself (services.<name>.tls: self).
    assert rules_violated([*resources("aws"), *public_tier(sidecar=False, mounted=False)],
                          ctx_for("aws", tls_self=("gateway",))) == {}
    # Workload identity (no credential field) and the ACME account key cert-manager makes itself.
    keyless = issuer({"route53": {"region": "us-east-1", "hostedZoneID": "Z1", "role": "arn:aws:iam::1:role/dns",
                                  "auth": {"kubernetes": {"serviceAccountRef": {"name": "cert-manager-route53"}}}}})
    assert rules_violated([*resources("gcp"), keyless], ctx_for("gcp")) == {}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_planned_tls_of_every_cloud_passes_and_plain_tcp_does_not(cloud: str) -> None:
    """What the program declares for a public tier with hosts passes; the same tier with no host
    known (no im-platform:tls, no traffic stack) serves plain TCP and is reported."""
    from tests.test_services_config import SERVICES

    tls = {"hosts": ["chat-test.example.com"], "zone": "example.com"}
    served = spec_plan(cloud, stack=f"tls-{cloud}", extra={"im-platform:services": SERVICES, "im-platform:tls": tls})
    assert served.of_type("kubernetes:cert-manager.io/v1:Certificate")
    ctx = ctx_for(cloud, stack=f"tls-{cloud}")
    assert rules_violated([Resource.from_plan(r) for r in served.resources], ctx) == {}
    plain = spec_plan(cloud, stack=f"tls-{cloud}", extra={"im-platform:services": SERVICES})
    found = rules_violated([Resource.from_plan(r) for r in plain.resources], ctx)
    assert set(found) == {"public-tier-tls"}


def test_store_rules_never_report_what_unknown_values_cannot_prove() -> None:
    """A first preview knows neither the bucket's name nor its policy."""
    bucket = Resource(AWS_BUCKET, "store", "urn:s3:store", {"bucket": UNKNOWN, "tags": _tags("aws")})
    unknown_block = Resource(AWS_PUBLIC_ACCESS_BLOCK, "b", "urn:s3:b", {"bucket": UNKNOWN, "blockPublicAcls": UNKNOWN,
                                                                        "blockPublicPolicy": True, "ignorePublicAcls": True,
                                                                        "restrictPublicBuckets": True})
    policy = Resource(AWS_BUCKET_POLICY, "p", "urn:s3:p", {"bucket": UNKNOWN, "policy": UNKNOWN})
    named_bucket = Resource(AWS_BUCKET, "named", "urn:s3:named", {"bucket": "named", "tags": _tags("aws")})
    versioning = Resource(AWS_BUCKET_VERSIONING, "v", "urn:s3:v", {"bucket": UNKNOWN,
                                                                 "versioningConfiguration": {"status": UNKNOWN}})
    assert rules_violated([bucket, unknown_block, policy, named_bucket, versioning], ctx_for("aws")) == {}
    gcs = gcs_bucket(publicAccessPrevention=UNKNOWN, versioning={"enabled": UNKNOWN})
    assert rules_violated([gcs], ctx_for("gcp")) == {}
    account = azure_store(account={"accountName": UNKNOWN}, with_service=False)
    assert rules_violated(account, ctx_for("azure")) == {}


def test_cluster_limit_counts_every_pool_and_allows_exactly_the_limit() -> None:
    items = resources("azure")
    # 4 (system, inline) + 40 + 80 = 124 nodes.
    assert rules_violated(items, ctx_for("azure", max_nodes_per_cluster=124)) == {}
    found = rules_violated(items, ctx_for("azure", max_nodes_per_cluster=123))
    assert list(found) == ["max-nodes-per-cluster"]
    assert "124 nodes in all" in found["max-nodes-per-cluster"][0].message
    assert found["max-nodes-per-cluster"][0].urn == first(items, AZURE_CLUSTER).urn


def test_pool_limit_allows_exactly_the_limit() -> None:
    items = change(AWS_NODE_GROUP, "scalingConfig.maxSize", 200, pool="worker")(resources("aws"))
    assert rules_violated(items, ctx_for("aws", max_nodes_per_cluster=1000)) == {}
    assert list(rules_violated(items, ctx_for("aws", max_nodes_per_pool=199, max_nodes_per_cluster=1000))) == ["max-nodes-per-pool"]


@pytest.mark.parametrize("cloud, apply", [
    ("aws", change(AWS_CLUSTER, "vpcConfig", {"endpointPrivateAccess": True, "endpointPublicAccess": False,
                                              "subnetIds": ["subnet-1"]})),
    ("gcp", change(GCP_CLUSTER, "privateClusterConfig.enablePrivateEndpoint", True)),
    ("gcp", change(GCP_CLUSTER, "masterAuthorizedNetworksConfig.cidrBlocks", [])),
    ("azure", change(AZURE_CLUSTER, "apiServerAccessProfile", {"enablePrivateCluster": True})),
], ids=["aws-private", "gcp-private", "gcp-no-outside-range", "azure-private"])
def test_a_private_api_endpoint_passes(cloud: str, apply: Change) -> None:
    assert rules_violated(apply(resources(cloud)), ctx_for(cloud)) == {}


def test_unprotected_clusters_pass_outside_prod() -> None:
    for cloud, type_ in (("aws", AWS_CLUSTER), ("gcp", GCP_CLUSTER), ("azure", AZURE_CLUSTER)):
        items = options(type_, protect=False)(resources(cloud))
        assert rules_violated(items, ctx_for(cloud, environment="prod")).keys() == {"prod-cluster-protected"}
        dev = ctx_for(cloud, environment="dev")
        # Tags name the environment, so compare against tags of the same environment.
        relabelled = [retag(r, "dev") for r in items]
        assert rules_violated(relabelled, dev) == {}, cloud


def retag(r: Resource, environment: str) -> Resource:
    props = json.loads(json.dumps(r.props).replace('"environment": "prod"', f'"environment": "{environment}"'))
    return replace(r, props=props)


def test_a_spot_user_pool_passes_and_a_system_agent_pool_never_is_spot() -> None:
    items = resources("azure")
    worker = first(items, AZURE_AGENT_POOL, "worker")
    assert worker.props["scaleSetPriority"] == "Spot"
    assert rules_violated(items, ctx_for("azure")) == {}
    as_system = mutate(worker, "mode", "System")
    assert list(rules_violated([as_system], ctx_for("azure"))) == ["system-pool-not-spot"]


def test_unknown_values_are_never_reported() -> None:
    """During a first preview many inputs are unknown; a rule reports only what it can prove."""
    items = resources("azure")
    unknown = [mutate(r, "resourceUri", UNKNOWN) if r.type in AZURE_DIAGNOSTIC_SETTINGS else r for r in items]
    unknown = [mutate(r, "apiServerAccessProfile", UNKNOWN) if r.type == AZURE_CLUSTER else r for r in unknown]
    assert rules_violated(unknown, ctx_for("azure")) == {}
    aws = [mutate(r, "vpcConfig.publicAccessCidrs", UNKNOWN) if r.type == AWS_CLUSTER else r for r in resources("aws")]
    assert rules_violated(aws, ctx_for("aws")) == {}


@pytest.mark.parametrize("cidr, is_open", [
    ("0.0.0.0/0", True), ("::/0", True), ("0.0.0.0/0 ", True), ("*", True), ("0.0.0.0/1", False),
    ("203.0.113.0/24", False), ("10.0.0.0/8", False), (UNKNOWN, False), ("not-a-cidr", False),
])
def test_open_to_world(cidr: str, is_open: bool) -> None:
    assert open_to_world(cidr) is is_open


def test_taggable_types_match_the_provider_sdks() -> None:
    """Every resource type the program declares that takes tags (labels on GCP) in its SDK is in
    infra.policy.rules.TAG_PATHS, so the tag rule cannot miss a resource that omits its tags."""
    import importlib
    import inspect

    from infra.policy.rules import TAG_PATHS

    checked = 0
    for cloud in CLOUDS:
        for record in baseline(cloud).resources:
            if not record["custom"]:
                continue
            package, module, cls_name = record["type"].split(":")
            if package not in ("aws", "gcp", "azure-native"):
                continue  # Kubernetes objects carry labels in metadata, not cloud tags
            sdk = importlib.import_module(f"pulumi_{package.replace('-', '_')}.{module.split('/')[0]}")
            params = inspect.signature(getattr(sdk, cls_name)._internal_init).parameters
            taggable = ("tags" in params or "labels" in params or "resource_labels" in params
                        or record["type"] == GCP_NODE_POOL)  # node_config.resource_labels
            assert (record["type"] in TAG_PATHS) is taggable, (
                f"{record['type']}: {'add it to' if taggable else 'remove it from'} TAG_PATHS in infra/policy/rules.py "
                "(where its tags live), so the required-tags rule checks it even when the tags are left out")
            checked += 1
    assert checked > 60


# ---------------------------------------------------------------------------------------------
# The command line on crafted bad stacks.


def expected_rules(path: Path) -> set[str]:
    match = re.search(r"^# expect: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{path} has no '# expect:' line"
    return set(match.group(1).split())


def test_bad_stacks_cover_the_rules_a_stack_file_can_break() -> None:
    named = set().union(*(expected_rules(p) for p in BAD_STACKS))
    assert {"api-endpoint-not-open", "max-nodes-per-pool", "max-nodes-per-cluster", PLAINTEXT_SECRETS} <= named
    assert named <= set(RULES_BY_NAME) | {PLAINTEXT_SECRETS}


@pytest.mark.parametrize("path", BAD_STACKS, ids=[p.name for p in BAD_STACKS])
def test_check_fails_on_a_bad_stack_naming_the_rule(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["check", "--config-file", str(path)]) == 1
    out, err = capsys.readouterr()
    *lines, verdict = out.splitlines()
    assert lines, "violations are printed on stdout, then the verdict"
    stack = path.name[len("Pulumi."):-len(".yaml")]
    for line in lines:
        rule, where, message = line.split(": ", 2)
        assert rule in expected_rules(path), line
        assert where.startswith(f"urn:pulumi:{stack}::im-platform::") or where == str(path), line
        assert message
    assert {line.split(":", 1)[0] for line in lines} == expected_rules(path)
    assert verdict.startswith(f"check {stack}: {len(lines)} violation(s)") and err == ""


def test_encrypted_values_and_the_secrets_provider_pass_the_stack_file_rule(tmp_path: Path) -> None:
    from infra.policy.check import stack_file_violations

    good = tmp_path / "Pulumi.prod-x.yaml"
    good.write_text("secretsprovider: awskms://alias/pulumi-secrets?region=eu-west-1\n"
                    "encryptedkey: AQICAHhexample\n"
                    "config:\n  aws:region: eu-west-1\n  aws:secretKey:\n    secure: v1:Zm9vYmFy\n"
                    "  im-platform:cluster:\n    nodePools:\n      system: {vcpu: 2, memoryGiB: 8, minNodes: 1, maxNodes: 3}\n")
    assert stack_file_violations(good) == []
    bad = tmp_path / "Pulumi.prod-y.yaml"
    bad.write_text("config:\n  azure-native:clientSecret: hunter2\n  gcp:accessToken: ya29.x\n  aws:region: eu-west-1\n")
    assert [(v.rule, v.message.split(" ")[0]) for v in stack_file_violations(bad)] == [
        (PLAINTEXT_SECRETS, "azure-native:clientSecret"), (PLAINTEXT_SECRETS, "gcp:accessToken")]


def test_check_json_lists_rules_and_violations(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "tests" / "bad-stacks" / "Pulumi.prod-open-api-aws.yaml"
    assert cli.run(["check", "--config-file", str(path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["rules"] == [r.name for r in RULES] + [PLAINTEXT_SECRETS]
    assert [v["rule"] for v in doc["violations"]] == ["api-endpoint-not-open"]
    assert doc["violations"][0]["urn"].endswith("aws:eks/cluster:Cluster::im-prod-open-api-aws-eks")


def test_check_exits_2_on_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text((ROOT / "tests" / "bad-stacks" / "Pulumi.dev-pool-over-limit.yaml").read_text()
                   .replace("minNodes: 0, maxNodes: 250", "minNodes: 9, maxNodes: 5"))
    assert cli.run(["check", "--config-file", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("config error: im-platform:cluster.nodePools.worker.minNodes is 9")
    assert "Traceback" not in err


def test_check_needs_a_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run(["check"])
    assert exc.value.code == 2
    assert "check needs --stack NAME or --config-file FILE" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The policy pack, in its own environment.


@pytest.fixture(scope="module")
def policy_python() -> Path:
    if not POLICY_PYTHON.exists():
        message = (f"{POLICY_PYTHON} is missing: python3 -m venv policy/venv && "
                   "policy/venv/bin/pip install -r policy/requirements.txt")
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run builds it: never skip the pack's tests there
        pytest.skip(message)
    return POLICY_PYTHON


def crafted_documents() -> list[tuple[str, Plan | dict[str, Any], Context]]:
    """Plans whose violations the pack and `check` must both find: every stack, every bad stack,
    and every crafted failing case above (as plan JSON), plus a plan full of unknowns."""
    docs: list[tuple[str, Plan | dict[str, Any], Context]] = []
    for stack in all_stacks():
        docs.append((f"stack:{stack}", cached_plan(stack), context_of(ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack)))
    for path in BAD_STACKS:
        stack = path.name[len("Pulumi."):-len(".yaml")]
        docs.append((f"bad:{stack}", cached_plan(None, path), context_of(path, stack)))
    for case_id, (rule, cloud, apply, _) in zip(CASE_IDS, FAILING, strict=True):
        ctx = cluster_case_context(rule, cloud)
        docs.append((f"case:{case_id}", plan_document(baseline(cloud), apply(resources(cloud))), ctx))
    unknowns = [mutate(r, "resourceUri", UNKNOWN) if r.type in AZURE_DIAGNOSTIC_SETTINGS else
                mutate(r, "apiServerAccessProfile.authorizedIPRanges", UNKNOWN) if r.type == AZURE_CLUSTER else r
                for r in resources("azure")]
    docs.append(("unknowns:azure", plan_document(baseline("azure"), unknowns), ctx_for("azure")))
    return docs


def context_of(path: Path, stack: str) -> Context:
    from infra.config.loader import load_spec
    from infra.traffic.config import is_traffic, load_traffic

    values, _ = read_stack_config(path, "im-platform")
    if is_traffic(values):
        return Context(stack=stack, environment=load_traffic(values, project="im-platform", stack=stack).environment)
    return Context.from_spec(load_spec(values, project="im-platform", stack=stack))


def plan_document(plan: Plan, items: list[Resource]) -> dict[str, Any]:
    return {"project": plan.project, "stack": plan.stack, "outputs": {}, "resources": [
        {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": True, "inputs": dict(r.props),
         "options": {"protect": r.protect, "ignoreChanges": list(r.ignore_changes)}}
        for r in items
    ]}


def check_violations(doc: Plan | dict[str, Any], ctx: Context) -> set[tuple[str, str | None, str]]:
    records = doc.resources if isinstance(doc, Plan) else doc["resources"]
    return {(v.rule, v.urn, v.message) for v in evaluate([Resource.from_plan(r) for r in records], ctx)}


def test_policy_pack_reports_exactly_what_check_reports(policy_python: Path) -> None:
    docs = crafted_documents()
    batch = [{"name": name, "plan": doc.to_json() if isinstance(doc, Plan) else doc,
              "context": context_json(ctx)}
             for name, doc, ctx in docs]
    run = subprocess.run([str(policy_python), "-m", "policy.offline", "--batch"], input=json.dumps(batch),
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)

    kinds = {"resource": "ResourceValidationPolicy", "stack": "StackValidationPolicy"}
    assert result["policies"] == [{"name": r.name, "kind": kinds["resource" if r.resource_check else "stack"]}
                                  for r in RULES]
    seen: set[str] = set()
    for name, doc, ctx in docs:
        pack = {(v["rule"], v["urn"], v["message"]) for v in result["results"][name]}
        # The batch carries the context as JSON, without the spec (the pack under `pulumi preview`
        # builds the spec from PULUMI_CONFIG: test_policy_pack_serves_the_rules_as_pulumi_runs_it).
        assert pack == check_violations(doc, dataclasses.replace(ctx, spec=None)), name
        seen |= {rule for rule, _, _ in pack}
        if name.startswith("stack:") or name.startswith("unknowns:"):
            assert pack == set(), name
    assert seen == set(RULES_BY_NAME), "every rule fired through the pack at least once"


def test_policy_pack_serves_the_rules_as_pulumi_runs_it(policy_python: Path) -> None:
    """Start the pack the way `pulumi preview --policy-pack policy` does (the CLI's
    pulumi-analyzer-policy-python runs `python -u -m pulumi.policy ENGINE .` in policy/, with the
    stack's configuration in PULUMI_CONFIG), then ask it over gRPC, as the engine does."""
    import grpc
    from google.protobuf import empty_pb2, json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    path = ROOT / "tests" / "bad-stacks" / "Pulumi.staging-own-guardrails.yaml"
    stack = "staging-own-guardrails"
    plan = cached_plan(None, path)
    config, _ = read_stack_config(path, "im-platform")
    env = {**os.environ, "PULUMI_CONFIG": json.dumps(config), "PULUMI_PROJECT": "im-platform",
           "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true"}
    server = subprocess.Popen([str(policy_python), "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
                              cwd=ROOT / "policy", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _read_port(server)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "im-platform-guardrails"
            assert [p.name for p in info.policies] == [r.name for r in RULES]

            def request(record: dict[str, Any]) -> Any:
                props = struct_pb2.Struct()
                json_format.ParseDict(record["inputs"], props)
                opts = analyzer_pb2.AnalyzerResourceOptions(protect=record["options"]["protect"],
                                                            ignoreChanges=record["options"]["ignoreChanges"],
                                                            parent=record["parent"] or "")
                return record, props, opts

            pool = next(r for r in plan.resources if r["type"] == AZURE_AGENT_POOL and r["name"].endswith("gateway"))
            record, props, opts = request(pool)
            response = stub.Analyze(analyzer_pb2.AnalyzeRequest(type=record["type"], urn=record["urn"], name=record["name"],
                                                                properties=props, options=opts), timeout=30)
            # maxCount 30 breaks this stack's own maxNodesPerPool (20), read from PULUMI_CONFIG;
            # the default (200) would have let it pass.
            assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
                ("max-nodes-per-pool", analyzer_pb2.MANDATORY)]
            assert "above im-platform:guardrails.maxNodesPerPool (20)" in response.diagnostics[0].message

            resources = []
            for r in plan.resources:
                record, props, opts = request(r)
                resources.append(analyzer_pb2.AnalyzerResource(type=r["type"], urn=r["urn"], name=r["name"],
                                                               properties=props, options=opts, parent=r["parent"] or ""))
            stacked = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=60)
            assert [d.policyName for d in stacked.diagnostics] == ["max-nodes-per-cluster"]
            assert "45 nodes in all" in stacked.diagnostics[0].message
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _read_port(server: subprocess.Popen[str]) -> int:
    """The pack prints its port on its first stdout line (PolicyPack starts a gRPC server)."""
    import selectors

    assert server.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(server.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=60):
            raise AssertionError("the policy pack did not print its port within 60 s")
    line = server.stdout.readline()
    if not line.strip().isdigit():
        server.kill()
        _, err = server.communicate(timeout=10)
        raise AssertionError(f"the policy pack did not start: {line!r}\n{err}")
    return int(line)


def test_check_does_not_call_the_name_of_a_kubernetes_secret_a_plain_text_secret(tmp_path: Path) -> None:
    # docs/tls.md: `secretName` is the name of the certificate's Secret (a Kubernetes object name,
    # https://kubernetes.io/docs/concepts/configuration/secret/), set in plain text like any name.
    from tests.test_cli import cli_in_process, copy_stack

    def edit(config: dict[str, Any]) -> None:
        config["im-platform:tls"]["secretName"] = "chat-tls"
        config["aws:secretKey"] = "hunter2"  # a value that is a secret still is one

    path = copy_stack(tmp_path, "dev-aws", edit)
    result = cli_in_process("check", "--config-file", str(path))
    flagged = [line for line in result.stdout.splitlines() if line.startswith(f"{PLAINTEXT_SECRETS}:")]
    assert len(flagged) == 1 and "aws:secretKey" in flagged[0], result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Tiers scaled on load, on the real plans of the example stacks.


def test_a_prod_scaled_object_that_could_scale_down_in_an_outage_fails_on_the_real_plan() -> None:
    path = ROOT / "stacks" / "Pulumi.prod-aws.yaml"
    items = [Resource.from_plan(r) for r in cached_plan("prod-aws").resources]
    ctx = context_of(path, "prod-aws")
    scaled = [r for r in items if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject"]
    assert scaled, "prod-aws scales a tier on its load"
    assert "scaled-tier-fallback" not in rules_violated(items, ctx)
    static = [mutate(r, "spec.fallback.behavior", "static") if r is scaled[0] else r for r in items]
    found = rules_violated(static, ctx)["scaled-tier-fallback"]
    assert [v.urn for v in found] == [scaled[0].urn] and "behavior 'static'" in found[0].message
    # Outside prod the same object passes.
    assert "scaled-tier-fallback" not in rules_violated(static, replace(ctx, environment="dev"))


def test_a_dr_standby_idles_below_two_replicas_and_its_promotion_would_not() -> None:
    # prod-azure is prod-aws's standby: its tiers idle at dr.standby.replicasMin (1).
    path = ROOT / "stacks" / "Pulumi.prod-azure.yaml"
    items = [Resource.from_plan(r) for r in cached_plan("prod-azure").resources]
    ctx = context_of(path, "prod-azure")
    assert ctx.dr_standby and ctx.is_prod
    assert any(r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject" and r.props["spec"]["minReplicaCount"] == 1
               for r in items)
    assert "scaled-tier-fallback" not in rules_violated(items, ctx)
    found = rules_violated(items, replace(ctx, dr_standby=False))["scaled-tier-fallback"]
    assert found and all("minReplicaCount 1" in v.message for v in found)


def test_tier_fits_pool_reads_the_scaled_objects_bound_from_the_real_plan(tmp_path: Path) -> None:
    # dev-aws's gateway scales on load: its ScaledObject's maxReplicaCount is what gets packed.
    text = (ROOT / "stacks" / "Pulumi.dev-aws.yaml").read_text()
    base = [Resource.from_plan(r) for r in cached_plan("dev-aws").resources]
    scaled = next(r for r in base if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject"
                  and r.props["spec"]["scaleTargetRef"]["name"] == "gateway")
    assert not any(r.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
                   and r.props["spec"]["scaleTargetRef"]["name"] == "gateway" for r in base)
    most = scaled.props["spec"]["maxReplicaCount"]
    assert f"max: {most}" in text
    bigger = text.replace(f"max: {most}", "max: 5000", 1)
    path = tmp_path / "Pulumi.dev-aws.yaml"
    path.write_text(bigger)
    assert cli.run(["check", "--config-file", str(path)]) == 1
    items = [Resource.from_plan(r) for r in cached_plan(None, path).resources]
    found = rules_violated(items, context_of(path, "dev-aws"))["tier-fits-pool"]
    assert any("tier gateway: replicas.max 5000 needs" in v.message for v in found), found


def test_tier_fits_pool_judges_a_tier_whose_other_fields_are_unknown_and_skips_unknown_bounds() -> None:
    ctx = spec_context("aws")
    deployment, budget, scaled = pinned_tier("gateway", 200)
    # An image digest the preview cannot know yet: the sizing is still known, the rule still judges.
    unknown_image = mutate(deployment, "spec.template.spec.containers[0].image", UNKNOWN)
    found = rules_violated([unknown_image, budget, scaled], ctx)
    assert "needs 67 nodes" in found["tier-fits-pool"][0].message
    # Unknown bounds or requests prove nothing.
    for r in (mutate(scaled, "spec.maxReplicaCount", UNKNOWN),):
        assert "tier-fits-pool" not in rules_violated([deployment, budget, r], ctx)
    unknown_cpu = mutate(deployment, "spec.template.spec.containers[0].resources.requests.cpu", UNKNOWN)
    assert "tier-fits-pool" not in rules_violated([unknown_cpu, budget, scaled], ctx)
