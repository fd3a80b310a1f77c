"""A Route 53 zone in another AWS account: `im-platform:tls.hostedZoneId` and `zoneRole`.

cert-manager's Route 53 solver (pkg/issuer/acme/dns/route53/route53.go at the pinned v1.19.2,
`sessionProvider.GetSession`): with `role` and no web identity token it calls sts:AssumeRole with
the ambient credentials (EKS Pod Identity here); with `role` and `auth.kubernetes.serviceAccountRef`
it calls sts:AssumeRoleWithWebIdentity on `role` directly with that account's token (no chaining),
and `hostedZoneID` skips its zone lookup. So: on EKS this cluster's role may assume the zone
account's role and nothing more; on GKE and AKS the zone account's role trusts this cluster's
issuer itself, and the stack declares nothing in AWS. Half a configuration is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.policy.check import plan_clouds
from tests.cert_manager_schema import SCHEMAS
from tests.conftest import ROOT
from tests.test_cli import cli_in_process

ZONE_ID = "Z0123456789ABCDEFGHIJ"
ROLE = "arn:aws:iam::444455556666:role/acme-dns01"


def stack_file(folder: Path, template: str, name: str, tls: dict[str, Any]) -> Path:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{template}.yaml").read_text())
    doc["config"]["im-platform:tls"] = {**doc["config"].get("im-platform:tls", {}), **tls}
    path = folder / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def plan(path: Path) -> dict[str, Any]:
    result = cli_in_process("plan", "--config-file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def solver(doc: dict[str, Any]) -> dict[str, Any]:
    (issuer,) = [r for r in doc["resources"] if r["type"] == "kubernetes:cert-manager.io/v1:ClusterIssuer"]
    body = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {}, "spec": issuer["inputs"]["spec"]}
    jsonschema.validate(body, SCHEMAS[("cert-manager.io/v1", "ClusterIssuer")])
    (only,) = issuer["inputs"]["spec"]["acme"]["solvers"]
    route53: dict[str, Any] = only["dns01"]["route53"]
    return route53


def test_eks_assumes_the_zone_accounts_role_and_writes_no_record_itself(tmp_path: Path) -> None:
    doc = plan(stack_file(tmp_path, "dev-aws", "dev-aws", {"hostedZoneId": ZONE_ID, "zoneRole": ROLE}))
    route53 = solver(doc)
    assert route53["hostedZoneID"] == ZONE_ID and route53["role"] == ROLE and "auth" not in route53
    policies = [json.loads(r["inputs"]["policy"]) for r in doc["resources"]
                if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"].endswith("-tls-dns")]
    assert policies == [{"Version": "2012-10-17", "Statement": [
        {"Sid": "AssumeTheZoneAccountsRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}]}]
    assert not [r for r in doc["resources"] if "route53" in json.dumps(r["inputs"]).lower()
                and r["type"].startswith("aws:iam/")]


@pytest.mark.parametrize("template", ["staging-gcp", "prod-azure"])
def test_gke_and_aks_trade_their_own_token_for_the_zone_accounts_role_and_declare_nothing_in_aws(
        tmp_path: Path, template: str) -> None:
    name = "qa-gcp" if template == "staging-gcp" else "qa-azure"
    path = stack_file(tmp_path, template, name, {"hostedZoneId": ZONE_ID, "zoneRole": ROLE})
    if template == "prod-azure":
        doc = yaml.safe_load(path.read_text())
        doc["config"].pop("im-platform:dr")
        doc["config"]["im-platform:tls"].update({"zone": "example.org", "hosts": ["chat.example.org"]})
        path.write_text(yaml.safe_dump(doc))
    doc = plan(path)
    route53 = solver(doc)
    assert route53 == {"region": "us-east-1", "hostedZoneID": ZONE_ID, "role": ROLE,
                       "auth": {"kubernetes": {"serviceAccountRef": {"name": "cert-manager-route53"}}}}
    assert "aws" not in plan_clouds(doc["resources"]), "nothing in the deployer's AWS account"
    accounts = [r for r in doc["resources"] if r["type"] == "kubernetes:core/v1:ServiceAccount"
                and r["inputs"]["metadata"]["name"] == "cert-manager-route53"]
    assert len(accounts) == 1


BAD = [
    ({"hostedZoneId": ZONE_ID}, "config error: im-platform:tls.zoneRole is not set: required with hostedZoneId"),
    ({"zoneRole": ROLE}, "config error: im-platform:tls.hostedZoneId is not set: required with zoneRole"),
    ({"hostedZoneId": "example.org", "zoneRole": ROLE}, 'config error: im-platform:tls.hostedZoneId is "example.org"'),
    ({"hostedZoneId": ZONE_ID, "zoneRole": "acme-dns01"}, 'config error: im-platform:tls.zoneRole is "acme-dns01"'),
    ({"hostedZoneId": ZONE_ID, "zoneRole": ROLE, "issuer": "own"}, "config error: im-platform:tls.zoneRole is"),
]


@pytest.mark.parametrize(("tls", "line"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_half_or_wrong_zone_account_is_one_config_error_line(tmp_path: Path, tls: dict[str, Any], line: str) -> None:
    result = cli_in_process("plan", "--config-file", str(stack_file(tmp_path, "dev-aws", "dev-aws", tls)), "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
