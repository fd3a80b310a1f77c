"""Names that are global in a cloud account, declared once per account across every stack the docs
put in it.

docs/ci.md gives each environment its own AWS account, GCP project and Azure subscription ("one
role pair per account: dev, staging, prod"), so every stack of one environment deploys into the
same ones. There, a name the cloud keys globally must be declared by one stack only:

- AWS IAM: an OpenID Connect provider's ARN is derived from its URL, one provider per URL per
  account; CreateOpenIDConnectProvider answers EntityAlreadyExists for a second (IAM API
  Reference). Role names are unique per account (CreateRole: EntityAlreadyExists).
- GCP: a workload identity pool id is unique in its project (and kept 30 days after deletion).
- Azure: a federated identity credential's name, and its issuer and subject together, are unique
  on one identity (Microsoft Entra workload identity federation: "the combination of issuer and
  subject must be unique on the app").

Read from the real offline plans of every stack in stacks/, where each pair stack's references to
its peer resolve from the peer's own plan.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from components.trust import normalize_issuer
from infra.offline.plan import Plan
from tests.plans import stack_plan
from tests.test_workflows import stack_files

PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"


def environment(plan: Plan) -> str:
    names = {r["inputs"].get("tags", {}).get("environment") for r in plan.resources
             if isinstance(r["inputs"].get("tags"), dict)}
    names.discard(None)
    if not names:
        return str(plan.outputs.get("traffic", {}).get("environment") or plan.stack.split("-")[0])
    (name,) = names
    return str(name)


def account_names(plan: Plan) -> list[tuple[str, ...]]:
    """Every account-global name the plan declares."""
    found: list[tuple[str, ...]] = []
    for r in plan.resources:
        inputs: dict[str, Any] = r["inputs"]
        if r["type"] == PROVIDER:
            found.append(("aws", "oidc provider", normalize_issuer(str(inputs["url"]))))
        elif r["type"] == "aws:iam/role:Role" and inputs.get("name"):
            found.append(("aws", "role", str(inputs["name"])))
        elif r["type"] == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            found.append(("gcp", "pool", str(inputs.get("project")), str(inputs["workloadIdentityPoolId"])))
        elif r["type"] == "azure-native:managedidentity:FederatedIdentityCredential":
            identity = (str(inputs["resourceGroupName"]), str(inputs["resourceName"]))
            found.append(("azure", "credential name", *identity, str(inputs["federatedIdentityCredentialResourceName"])))
            found.append(("azure", "issuer and subject", *identity, str(inputs["issuer"]), str(inputs["subject"])))
    return found


def test_no_account_global_name_is_declared_twice_in_one_environment() -> None:
    plans = [stack_plan(name) for name in sorted(stack_files())]
    by_env: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for plan in plans:
        by_env.setdefault(environment(plan), []).extend((plan.stack, name) for name in account_names(plan))
    for env, named in by_env.items():
        counts = Counter(name for _, name in named)
        twice = {name: sorted(s for s, n in named if n == name) for name, c in counts.items() if c > 1}
        assert not twice, f"environment {env}: declared by more than one stack: {twice}"
    prod = dict(by_env)["prod"]
    # Not vacuous: prod-azure's AKS issuer is trusted in the prod AWS account (DNS-01 and the DR
    # copy), through one provider that both trusts name.
    providers = [(s, n) for s, n in prod if n[:2] == ("aws", "oidc provider")]
    assert len(providers) >= 2, providers  # prod-aws's EKS issuer and prod-azure's AKS issuer


def test_every_web_identity_trust_names_a_provider_declared_in_its_environment() -> None:
    plans = {name: stack_plan(name) for name in sorted(stack_files())}
    declared: dict[str, set[str]] = {}
    for plan in plans.values():
        urls = declared.setdefault(environment(plan), set())
        for r in plan.of_type(PROVIDER):
            urls.add(normalize_issuer(str(r["inputs"]["url"])))
    trusts = 0
    for plan in plans.values():
        for role in plan.of_type("aws:iam/role:Role"):
            for statement in json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]:
                federated = statement.get("Principal", {}).get("Federated")
                if federated:
                    trusts += 1
                    # An IAM OIDC provider's ARN is arn:aws:iam::<account>:oidc-provider/<url without scheme>.
                    url = normalize_issuer(federated.split(":oidc-provider/", 1)[1])
                    assert url in declared[environment(plan)], (plan.stack, role["name"], federated)
    assert trusts >= 3  # EKS IRSA, the DR reader, cert-manager's DNS-01 role on AKS
