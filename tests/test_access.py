"""im-platform:cluster.admins and .viewers: validated per cloud, then granted through each cloud's
own mechanism (EKS access entries, GKE IAM members, AKS role assignments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config.access import aws_partition
from infra.offline.plan import Plan
from tests.conftest import cluster, plan_config
from tests.test_cli import cli, copy_stack
from tests.test_config import config, error_of, load

ROLE = "arn:aws:iam::123456789012:role/platform-admins"
SSO_ROLE = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_ReadOnly_0a1b"
USER = "arn:aws:iam::123456789012:user/alice"
GUID = "0f4b2c1e-7d3a-4e8b-9c6f-1a2b3c4d5e6f"
GUID2 = "5e6f0f4b-2c1e-4d3a-8e8b-9c6f1a2b3c4d"
GUID3 = "9c6f1a2b-3c4d-4e8b-8d3a-0f4b2c1e7d3a"

ACCESS = {
    "aws": ([ROLE, USER], [SSO_ROLE]),
    "gcp": (["group:platform-admins@example.com", "serviceAccount:deploy@ci-project.iam.gserviceaccount.com"],
            ["user:oncall@example.com"]),
    "azure": ([GUID, f"servicePrincipal:{GUID3}"], [f"user:{GUID2.upper()}"]),
}


def with_access(cloud: str, admins: Any = None, viewers: Any = None) -> dict[str, str]:
    extra = {k: v for k, v in (("admins", admins), ("viewers", viewers)) if v is not None}
    return config(cloud, cluster(**extra))


# ---------------------------------------------------------------------------------------------
# Validation: one line naming the key path, the value and what is expected


def test_lists_are_optional_and_read_into_the_spec() -> None:
    assert (load(config("aws")).admins, load(config("aws")).viewers) == ((), ())
    spec = load(with_access("aws", [ROLE, USER], [SSO_ROLE]))
    assert (spec.admins, spec.viewers) == ((ROLE, USER), (SSO_ROLE,))
    assert load(with_access("azure", [GUID.upper(), f"user:{GUID2}"])).admins == (f"group:{GUID}", f"user:{GUID2}"), \
        "a bare object id is a group; ids are lowercased"


@pytest.mark.parametrize(("cloud", "value", "expected"), [
    ("aws", "platform-admins", "expected the ARN of an IAM role or user, e.g. arn:aws:iam::123456789012:role/platform-admins"),
    ("aws", "arn:aws:iam::123456789012:role/*", "wildcards are not allowed"),
    ("aws", "arn:aws:iam::123456789012:group/admins", "an IAM group cannot be given cluster access"),
    ("aws", "arn:aws:iam::123456789012:root", "the account root stands for every principal"),
    ("aws", "arn:aws:iam::12345:role/admins", "expected the ARN of an IAM role or user"),
    ("aws", "arn:aws-cn:iam::123456789012:role/admins", "but aws:region is eu-west-1, in partition aws: expected arn:aws:iam::"),
    ("aws", "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/alice@example.com",
     "an assumed-role session ARN names one sign-in, not the role, and EKS rejects it: use the role's own ARN, "
     "arn:aws:iam::123456789012:role/PlatformAdmin"),
    ("gcp", "platform-admins@example.com", 'expected "user:", "group:" or "serviceAccount:" followed by an email'),
    ("gcp", "domain:example.com", 'expected "user:", "group:" or "serviceAccount:"'),
    ("gcp", "group:platform-admins", 'expected "user:", "group:" or "serviceAccount:"'),
    ("azure", "alice@example.com", "expected the Entra object id (a GUID)"),
    ("azure", "0f4b2c1e7d3a4e8b9c6f1a2b3c4d5e6f", "expected the Entra object id (a GUID)"),
    ("azure", f"app:{GUID}", "as user:<id> or servicePrincipal:<id>"),
    ("aws", 42, "expected a principal as a string"),
])
def test_a_bad_principal_is_one_line_naming_its_key(cloud: str, value: Any, expected: str) -> None:
    message = error_of(with_access(cloud, admins=[value]))
    assert message.startswith(f"config error: im-platform:cluster.admins[0] is {json.dumps(value)}"), message
    assert expected in message, message
    assert "\n" not in message


def test_the_viewers_list_is_checked_the_same_way() -> None:
    assert error_of(with_access("gcp", viewers=["user:a@example.com", "bob"])).startswith(
        'config error: im-platform:cluster.viewers[1] is "bob": expected "user:"')
    assert error_of(with_access("aws", viewers=ROLE)) == \
        f'config error: im-platform:cluster.viewers is "{ROLE}": expected a list of principals'


@pytest.mark.parametrize(("cloud", "first", "again"), [
    ("aws", ROLE, ROLE),
    ("gcp", "group:Platform@Example.com", "group:platform@example.com"),
    ("azure", GUID, f"group:{GUID.upper()}"),
])
def test_a_principal_listed_twice_is_an_error(cloud: str, first: str, again: str) -> None:
    assert error_of(with_access(cloud, admins=[first, again])) == (
        f"config error: im-platform:cluster.admins[1] is {json.dumps(again)}, "
        "but [0] names the same principal: list each principal once")


def test_a_principal_in_both_lists_is_an_error() -> None:
    assert error_of(with_access("aws", admins=[USER, ROLE], viewers=[ROLE])) == (
        f'config error: im-platform:cluster.viewers[0] is "{ROLE}", but admins[1] names the same principal: '
        "an admin can already read everything; list it in one of the two")


@pytest.mark.parametrize(("region", "partition"), [
    ("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
    ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"),
])
def test_the_arn_must_be_in_the_regions_partition(region: str, partition: str) -> None:
    assert aws_partition(region) == partition
    values = with_access("aws", admins=[f"arn:{partition}:iam::123456789012:role/admins"])
    values["aws:region"] = region
    assert load(values).admins == (f"arn:{partition}:iam::123456789012:role/admins",)


def test_a_bad_principal_exits_2_from_the_command_line(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "qa-aws", lambda c: c["im-platform:cluster"].update(admins=["arn:aws:iam::123456789012:role/*"]))
    result = cli("plan", "--config-file", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        'config error: im-platform:cluster.admins[0] is "arn:aws:iam::123456789012:role/*": wildcards are not allowed')
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# Each cloud's mechanism

_PLANS: dict[str, Plan] = {}


def access_plan(cloud: str) -> Plan:
    if cloud not in _PLANS:
        admins, viewers = ACCESS[cloud]
        _PLANS[cloud] = plan_config(cloud, cluster_value=cluster(admins=admins, viewers=viewers))
    return _PLANS[cloud]


def test_nothing_is_unknown_in_the_plans() -> None:
    for cloud in ACCESS:
        assert "[unknown]" not in json.dumps(access_plan(cloud).to_json()), cloud


def test_eks_gives_each_principal_an_access_entry_and_policy_on_the_whole_cluster() -> None:
    plan = access_plan("aws")
    cluster_ = plan.one("aws:eks/cluster:Cluster")
    assert cluster_["inputs"]["accessConfig"]["authenticationMode"] in ("API", "API_AND_CONFIG_MAP"), \
        "access entries need an authentication mode that reads them"
    entries = {r["inputs"]["principalArn"]: r for r in plan.of_type("aws:eks/accessEntry:AccessEntry")}
    assert sorted(entries) == sorted([ROLE, USER, SSO_ROLE])
    assert all(e["inputs"]["type"] == "STANDARD" and e["inputs"]["clusterName"] == cluster_["inputs"]["name"]
               for e in entries.values())
    policies = {r["inputs"]["principalArn"]: r["inputs"] for r in plan.of_type(
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    prefix = "arn:aws:eks::aws:cluster-access-policy/"
    assert {p: i["policyArn"] for p, i in policies.items()} == {
        ROLE: prefix + "AmazonEKSClusterAdminPolicy", USER: prefix + "AmazonEKSClusterAdminPolicy",
        SSO_ROLE: prefix + "AmazonEKSViewPolicy"}
    assert all(i["accessScope"] == {"type": "cluster"} for i in policies.values())
    for association in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        # EKS refuses a policy for a principal without an entry: the association waits for it.
        assert association["options"]["dependsOn"] == [entries[association["inputs"]["principalArn"]]["urn"]]


def test_gke_binds_container_roles_without_removing_other_bindings() -> None:
    plan = access_plan("gcp")
    admins, viewers = ACCESS["gcp"]
    members = [r["inputs"] for r in plan.of_type("gcp:projects/iAMMember:IAMMember")
               if r["inputs"]["role"].startswith("roles/container.")]
    assert sorted((m["member"], m["role"]) for m in members) == sorted(
        [(a, "roles/container.admin") for a in admins] + [(v, "roles/container.viewer") for v in viewers])
    assert all(m["project"] == "im-platform-test" for m in members)
    authoritative = [r["type"] for r in plan.resources if r["type"] in (
        "gcp:projects/iAMBinding:IAMBinding", "gcp:projects/iAMPolicy:IAMPolicy")]
    assert authoritative == [], "authoritative bindings would remove members granted elsewhere"


def test_aks_assigns_rbac_roles_scoped_to_the_cluster() -> None:
    plan = access_plan("azure")
    cluster_name = plan.one("azure-native:containerservice:ManagedCluster")["inputs"]["resourceName"]
    assignments = [r["inputs"] for r in plan.of_type("azure-native:authorization:RoleAssignment")
                   if r["inputs"]["principalId"] in (GUID, GUID2, GUID3)]
    by_principal: dict[tuple[str, str], set[str]] = {}
    for a in assignments:
        assert a["scope"].endswith(f"/managedClusters/{cluster_name}"), a["scope"]
        by_principal.setdefault((a["principalId"], a["principalType"]), set()).add(a["roleDefinitionId"].rsplit("/", 1)[-1])
    admin_role, reader_role, user_role = ("b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b", "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
                                          "4abbcc35-e782-43d8-92c5-2d3abe4cd4d3")
    assert by_principal == {(GUID, "Group"): {admin_role, user_role},
                            (GUID3, "ServicePrincipal"): {admin_role, user_role},
                            (GUID2, "User"): {reader_role, user_role}}


def test_the_tag_rule_checks_access_entries() -> None:
    from infra.policy.rules import TAG_PATHS

    plan = access_plan("aws")
    entries = plan.of_type("aws:eks/accessEntry:AccessEntry")
    assert entries and all(TAG_PATHS.get(e["type"]) == "tags" and e["inputs"]["tags"]["managed-by"] == "im-platform"
                           for e in entries)
