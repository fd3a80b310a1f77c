"""The order of a first deployment, and resources the engine sees before `up`, read from what the
program really registered: each registration's explicit dependencies and the resources its inputs
were built from (the plan JSON's `dependsOn` leaves the latter out), held transitively.

- GCP: whatever names the workload identity pool `<project>.svc.id.goog` waits for the GKE cluster
  (the pool exists only once it does); every IAM object waits for `iam.googleapis.com`.
- AWS: a role waits for the OIDC provider it trusts, a role policy for its role, a Pod Identity
  association for its role, and the add-on that uses them for both.
- Azure: a role assignment to a managed identity waits for the identity, a federated credential
  for its identity, and one trusting this cluster's issuer for the cluster.
- Nowhere is a resource constructed inside an Output callback (every stack in stacks/ and pairs on
  every cloud combination), and the check does fail on a program that constructs one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import stackfiles
from infra.offline.mocks import PlanMocks
from infra.offline.plan import Plan, all_stacks, plan_stack, run_recorded
from tests.plans import sharing_plans, stack_plan
from tests.test_dr import pair_plans

GKE = "gcp:container/cluster:Cluster"
SERVICE = "gcp:projects/service:Service"
GCP_IAM_TYPES = ("gcp:serviceaccount/account:Account", "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
                 "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
TRUST_TYPES = ("aws:iam/openIdConnectProvider:OpenIdConnectProvider",
               "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
               "azure-native:managedidentity:FederatedIdentityCredential")
CLOUD_PAIRS = [("aws", "gcp"), ("gcp", "aws"), ("aws", "azure"), ("azure", "aws"), ("gcp", "azure"), ("azure", "gcp")]

@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    stackfiles.EXTRA_DIRS[:] = [tmp_path]
    yield tmp_path
    stackfiles.EXTRA_DIRS.clear()


def pair(tmp_path_factory: pytest.TempPathFactory, clouds: tuple[str, str]) -> tuple[Plan, Plan]:
    """A pair written as a user would (tmp files): the first cloud primary, the second the standby
    with replication; both planned, each reading the other's planned outputs (the session's plans:
    tests/test_dr.py reads the same pairs)."""
    return pair_plans(tmp_path_factory, clouds)


def by_urn(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in plan.resources}


def waits_for_type(plan: Plan, resource: dict[str, Any], type_: str) -> list[str]:
    return [u for u in plan.waits_for(resource["urn"]) if by_urn(plan).get(u, {}).get("type") == type_]


def iam_api(plan: Plan) -> str:
    found = [r["urn"] for r in plan.of_type(SERVICE) if r["inputs"]["service"] == "iam.googleapis.com"]
    assert found, "no Service enables iam.googleapis.com"
    return found[0]


def is_gcp_iam(resource: dict[str, Any]) -> bool:
    type_ = resource["type"]
    return type_ in GCP_IAM_TYPES or type_.endswith(("IAMMember", "IAMBinding", "IAMPolicy"))


def names_workload_pool(resource: dict[str, Any]) -> bool:
    return ".svc.id.goog[" in json.dumps(resource["inputs"])


# ---------------------------------------------------------------------------------------------
# The dependency reading itself.


def _chain_program() -> None:
    import pulumi_aws as aws

    first = aws.s3.Bucket("first")
    second = aws.s3.BucketVersioning("second", bucket=first.id,
                                     versioning_configuration={"status": "Enabled"})
    third = aws.s3.Bucket("third", opts=pulumi.ResourceOptions(depends_on=[second]))
    aws.s3.Bucket("alone")
    pulumi.export("third", third.id)


def test_waits_for_reads_inputs_and_explicit_dependencies_through_a_chain() -> None:
    plan = run_recorded(_chain_program, "chain", {"aws:region": "eu-west-1"}, mocks=PlanMocks(), project="im-platform")
    urns = {r["name"]: r["urn"] for r in plan.resources}
    # `second` reads first.id (an input, absent from dependsOn); `third` depends on `second` explicitly.
    assert by_urn(plan)[urns["second"]]["options"]["dependsOn"] == []
    assert plan.waits_for(urns["second"]) == {urns["first"]}
    assert plan.waits_for(urns["third"]) == {urns["first"], urns["second"]}
    assert plan.waits_for(urns["alone"]) == set()
    assert plan.property_dependencies[urns["second"]]["bucket"] == frozenset({urns["first"]})


# ---------------------------------------------------------------------------------------------
# GCP.


def check_gcp_order(plan: Plan) -> None:
    gke = [r["urn"] for r in plan.of_type(GKE)]
    assert len(gke) == 1, gke
    api = iam_api(plan)
    pool_grants = [r for r in plan.resources if names_workload_pool(r)]
    iam_objects = [r for r in plan.resources if is_gcp_iam(r)]
    assert iam_objects
    late = [r["name"] for r in pool_grants if gke[0] not in plan.waits_for(r["urn"])]
    assert not late, f"grants naming <project>.svc.id.goog before the GKE cluster exists: {late}"
    early = [r["name"] for r in iam_objects if api not in plan.waits_for(r["urn"])]
    assert not early, f"IAM objects that do not wait for iam.googleapis.com: {early}"


def test_a_gcp_standby_with_replication_waits_for_the_cluster_and_the_iam_api(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    _, standby = pair(tmp_path_factory, ("aws", "gcp"))
    assert [r for r in standby.resources if names_workload_pool(r)]
    check_gcp_order(standby)
    types = {r["type"] for r in standby.resources if is_gcp_iam(r)}
    # The pieces this is about are all there: the writer's account and workload identity grant,
    # the pool and the provider that trusts the peer (the AWS primary has replication off, so the
    # provider comes from the GCP primary below).
    assert {"gcp:serviceaccount/account:Account", "gcp:serviceaccount/iAMMember:IAMMember",
            "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"} <= types, types
    assert [r for r in standby.resources if names_workload_pool(r) and r["name"].endswith("writer-workload-identity")]


def test_a_gcp_primary_trusting_its_peer_waits_for_the_iam_api(tmp_path_factory: pytest.TempPathFactory) -> None:
    primary, _ = pair(tmp_path_factory, ("gcp", "azure"))
    assert primary.of_type("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    api = iam_api(primary)
    for resource in primary.resources:
        if is_gcp_iam(resource):
            assert api in primary.waits_for(resource["urn"]), resource["name"]


def test_every_gcp_example_stack_holds_the_order() -> None:
    stacks = [s for s in all_stacks() if _cloud_of(s) == "gcp"]
    assert stacks
    for stack in stacks:
        check_gcp_order(stack_plan(stack))


def test_cluster_access_grants_on_gcp_wait_for_the_iam_api(folder: Path) -> None:
    """A copy of a GCP example stack with admins and viewers: their project grants wait too."""
    import yaml

    source = next(s for s in all_stacks() if _cloud_of(s) == "gcp")
    doc = yaml.safe_load(stackfiles.stack_file(source).read_text(encoding="utf-8"))
    doc["config"]["im-platform:cluster"]["admins"] = ["group:platform-admins@example.com"]
    doc["config"]["im-platform:cluster"]["viewers"] = ["user:oncall@example.com"]
    path = folder / "Pulumi.order-gcp-access.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    plan = plan_stack(config_file=path)
    grants = [r for r in plan.of_type("gcp:projects/iAMMember:IAMMember") if r["inputs"]["role"].startswith("roles/container.")]
    assert len(grants) == 2
    check_gcp_order(plan)


def _cloud_of(stack: str) -> str | None:
    values, _ = stackfiles.read_stack_config(stackfiles.stack_file(stack), stackfiles.project_name())
    return values.get("im-platform:cloud")


# ---------------------------------------------------------------------------------------------
# AWS.


def check_aws_order(plan: Plan) -> None:
    urns = by_urn(plan)
    roles = plan.of_type("aws:iam/role:Role")
    assert roles
    for role in roles:
        trust = role["inputs"]["assumeRolePolicy"]
        if ":oidc-provider/" in trust:
            # A provider of this stack's is waited for; one its DR peer owns (components.trust) exists
            # before the peer exports it, which is where this stack read its ARN.
            if not waits_for_type(plan, role, "aws:iam/openIdConnectProvider:OpenIdConnectProvider"):
                from components.trust import PROVIDERS_OUTPUT
                from infra.offline.plan import reference_outputs
                peer = plan.outputs["dr"]["peer"]
                with sharing_plans():
                    outputs = reference_outputs(peer, (plan.stack,), plan.project)[0]
                assert any(entry["arn"] in trust for entry in outputs.get(PROVIDERS_OUTPUT, [])), role["name"]
    for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy") + plan.of_type(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        assert waits_for_type(plan, policy, "aws:iam/role:Role"), policy["name"]
    associations = plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert associations
    for association in associations:
        assert waits_for_type(plan, association, "aws:iam/role:Role"), association["name"]
        assert waits_for_type(plan, association, "aws:eks/cluster:Cluster"), association["name"]
        # What runs as that service account starts with its credentials in place.
        users = [r for r in plan.resources if association["urn"] in plan.dependencies.get(r["urn"], ())]
        assert users, association["name"]
        role_urn = next(iter(plan.property_dependencies[association["urn"]]["roleArn"]))
        role_policies = [u for u, r in urns.items() if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                         and role_urn in plan.dependencies.get(u, ())]
        for user in users:
            assert set(role_policies) <= plan.waits_for(user["urn"]), user["name"]


@pytest.mark.parametrize("clouds", [("aws", "gcp"), ("azure", "aws")], ids="+".join)
def test_aws_halves_of_pairs_hold_the_order(tmp_path_factory: pytest.TempPathFactory, clouds: tuple[str, str]) -> None:
    for plan in pair(tmp_path_factory, clouds):
        if plan.of_type("aws:eks/cluster:Cluster"):
            check_aws_order(plan)


def test_every_aws_example_stack_holds_the_order() -> None:
    stacks = [s for s in all_stacks() if _cloud_of(s) == "aws"]
    assert stacks
    for stack in stacks:
        check_aws_order(stack_plan(stack))


# ---------------------------------------------------------------------------------------------
# Azure.

IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
AKS = "azure-native:containerservice:ManagedCluster"


def check_azure_order(plan: Plan) -> None:
    assignments = plan.of_type("azure-native:authorization:RoleAssignment")
    assert assignments
    to_identities = 0
    for assignment in assignments:
        principal_from = plan.property_dependencies[assignment["urn"]].get("principalId", frozenset())
        if principal_from:
            to_identities += 1
            assert {by_urn(plan)[u]["type"] for u in principal_from} & {IDENTITY, AKS}, assignment["name"]
        else:
            # A principal the program did not create (the deployer, a configured admin) exists already;
            # a managed identity's principal is never typed in by hand.
            assert assignment["inputs"]["principalId"] != "[unknown]"
    assert to_identities
    for credential in plan.of_type(CREDENTIAL):
        assert waits_for_type(plan, credential, IDENTITY), credential["name"]
        if credential["inputs"]["issuer"] == plan.outputs.get("oidcIssuer"):
            # Trusting this cluster's own issuer: the issuer exists once the cluster does.
            assert AKS in {by_urn(plan)[u]["type"] for u in plan.property_dependencies[credential["urn"]]["issuer"]}


@pytest.mark.parametrize("clouds", [("aws", "azure"), ("azure", "gcp")], ids="+".join)
def test_azure_halves_of_pairs_hold_the_order(tmp_path_factory: pytest.TempPathFactory, clouds: tuple[str, str]) -> None:
    plans = [p for p in pair(tmp_path_factory, clouds) if p.of_type(AKS)]
    assert plans
    for plan in plans:
        check_azure_order(plan)
    assert any(plan.of_type(CREDENTIAL) for plan in plans)


# ---------------------------------------------------------------------------------------------
# Nothing constructed inside an apply.


def _constructs_inside_apply() -> None:
    import pulumi_aws as aws

    bucket = aws.s3.Bucket("outer")
    bucket.id.apply(lambda bucket_id: aws.s3.BucketVersioning(
        "inner", bucket=bucket_id, versioning_configuration={"status": "Enabled"}) and bucket_id)


def _constructs_at_the_top() -> None:
    import pulumi_aws as aws

    bucket = aws.s3.Bucket("outer")
    aws.s3.BucketVersioning("inner", bucket=bucket.id, versioning_configuration={"status": "Enabled"})


def test_the_check_fails_on_a_resource_constructed_inside_an_apply() -> None:
    inside = run_recorded(_constructs_inside_apply, "inside", {"aws:region": "eu-west-1"}, mocks=PlanMocks(),
                          project="im-platform")
    assert inside.constructed_in_apply == ["aws:s3/bucketVersioning:BucketVersioning inner"]
    top = run_recorded(_constructs_at_the_top, "top", {"aws:region": "eu-west-1"}, mocks=PlanMocks(),
                       project="im-platform")
    assert top.constructed_in_apply == []
    # The same resources in both: only where they were constructed differs.
    assert sorted(r["name"] for r in inside.resources) == sorted(r["name"] for r in top.resources) == ["inner", "outer"]


@pytest.mark.parametrize("stack", all_stacks())
def test_no_stack_constructs_a_resource_inside_an_apply(stack: str) -> None:
    plan = stack_plan(stack)  # the session's plan of the file, as `plan --stack` plans it
    assert plan.resources
    assert plan.constructed_in_apply == []


@pytest.mark.parametrize("clouds", CLOUD_PAIRS, ids="+".join)
def test_no_pair_stack_constructs_a_resource_inside_an_apply(tmp_path_factory: pytest.TempPathFactory,
                                                             clouds: tuple[str, str]) -> None:
    primary, standby = pair(tmp_path_factory, clouds)
    # The pieces that used to be declared inside callbacks are there: the standby's job, the
    # primary's trust of it (the standby exports replication).
    assert standby.of_type("kubernetes:batch/v1:CronJob")
    assert [r for r in primary.resources if r["type"] in TRUST_TYPES and "peer" in r["name"]]
    assert primary.constructed_in_apply == [] and standby.constructed_in_apply == []


# ---------------------------------------------------------------------------------------------
# AWS trust of an AKS issuer (ends in "/"): the condition keys come from the provider's `url`.

AKS_ISSUER = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000001/11111111-2222-3333-4444-555555555555/"


def _aws_primary_trusting(issuer: str, stored_url: str | None) -> Plan:
    """The AWS half of an AWS-Azure pair, its peer exporting `issuer`; with `stored_url`, the OIDC
    provider's `url` output reads back as that (how IAM may hold it), else as the mocks answer."""
    from pulumi.runtime.mocks import MockResourceArgs

    from components.dr import rclone
    from tests.dr_program import PeerMocks, _program, spec_for

    class Mocks(PeerMocks):
        def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            resource_id, outputs = super().new_resource(args)
            if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider" and stored_url is not None:
                outputs["url"] = stored_url
            return resource_id, outputs

    spec = spec_for("aws", "trust-aws", "trust-azure", "azure", "primary")
    peer = {"oidcIssuer": issuer, "replication": {"namespace": rclone.NAMESPACE, "serviceAccount": rclone.SERVICE_ACCOUNT}}
    from tests.conftest import make_config

    return run_recorded(lambda: _program(spec), spec.stack, make_config("aws"), mocks=Mocks(peer),
                        project="im-platform", organization=None)


def _trust_keys(plan: Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("peer-reader"))
    provider = next(r for r in plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
                    if r["name"].endswith("peer-oidc"))
    # The trust policy is built from the provider's outputs (an input dependency, not a copy of the issuer).
    assert provider["urn"] in plan.property_dependencies[role["urn"]]["assumeRolePolicy"]
    statement = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    return provider, statement


def test_the_trust_of_an_aks_issuer_keys_on_the_providers_url() -> None:
    plan = _aws_primary_trusting(AKS_ISSUER, None)
    provider, statement = _trust_keys(plan)
    assert provider["inputs"]["url"] == AKS_ISSUER, "IAM is given the issuer as the tokens carry it"
    host_path = AKS_ISSUER.removeprefix("https://")
    assert statement["Condition"]["StringEquals"] == {f"{host_path}:sub": "system:serviceaccount:im-dr-replication:replication",
                                                      f"{host_path}:aud": "sts.amazonaws.com"}
    assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{host_path}")
    assert plan.constructed_in_apply == []


def test_the_trust_keys_follow_the_url_iam_reports_not_the_issuer_string() -> None:
    # Were IAM to hold the URL without the trailing slash, the keys follow it: they are read from
    # the provider's `url` output, never formed from the issuer the peer exported.
    stored = AKS_ISSUER.removeprefix("https://").rstrip("/")
    _, statement = _trust_keys(_aws_primary_trusting(AKS_ISSUER, stored))
    assert set(statement["Condition"]["StringEquals"]) == {f"{stored}:sub", f"{stored}:aud"}
