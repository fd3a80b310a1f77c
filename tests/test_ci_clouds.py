"""What each CI job signs in to, against what the stack's offline plan declares.

A GKE or AKS stack with ACME TLS declares AWS resources (IAM for DNS-01 in Route 53) beside its own
cloud's: a job that signed in only to the stack's `im-platform:cloud` would fail its preview and its
`up`. Here, for every stack file in stacks/ and for stacks written beside them (a GKE and an AKS
pair half with ACME TLS), the workflows' own `if:` expressions are evaluated (tests/gh_expr.py, the
GitHub expression rules) with the values the workflow would pass for that stack, and the clouds of
the sign-in steps that run must cover the clouds of the plan's resource types, and no more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.failover.command import github_outputs as failover_outputs
from infra.offline.plan import plan_stack
from infra.policy.check import list_stacks
from tests.conftest import ROOT
from tests.gh_expr import evaluate, interpolate, step_runs
from tests.plans import sharing_plans
from tests.test_traffic_pairs import write_pair
from tests.test_workflows import OIDC_ACTIONS, load, steps, uses

PACKAGE_CLOUD = {"aws": "aws", "gcp": "gcp", "azure-native": "azure"}
VARS = {"AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/im-platform-deploy", "AWS_REGION": "eu-west-1",
        "GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/locations/global/workloadIdentityPools/github/providers/github",
        "GCP_SERVICE_ACCOUNT": "deploy@p.iam.gserviceaccount.com", "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t",
        "AZURE_SUBSCRIPTION_ID": "s", "PULUMI_ORG": "acme", "PULUMI_BACKEND_URL": ""}


def planned_clouds(path: Path) -> set[str]:
    """The clouds of the plan's resource types (a provider resource is `pulumi:providers:<pkg>`)."""
    with sharing_plans():
        plan = plan_stack(config_file=path)
    clouds = set()
    for resource in plan.resources:
        parts = resource["type"].split(":")
        package = parts[2] if parts[:2] == ["pulumi", "providers"] else parts[0]
        if package in PACKAGE_CLOUD:
            clouds.add(PACKAGE_CLOUD[package])
    return clouds


def signed_in(job: dict[str, Any], context: dict[str, Any]) -> set[str]:
    by_action = {action: cloud for cloud, action in OIDC_ACTIONS.items()}
    clouds = {by_action[uses(step).split("@")[0]] for step in steps(job)
              if uses(step).split("@")[0] in by_action and step_runs(step, context)}
    # azure-native signs in with the job's token itself when ARM_USE_OIDC is set on the Pulumi step.
    for step in steps(job):
        env = step.get("env") or {}
        if "ARM_USE_OIDC" in env and (evaluate(str(env["ARM_USE_OIDC"]), context) == "true") != ("azure" in clouds):
            raise AssertionError(f"ARM_USE_OIDC disagrees with the Azure sign-in: {env['ARM_USE_OIDC']}")
    return clouds


def stack_job_inputs(caller: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The inputs a caller's matrix leg hands stack.yml, its `with:` evaluated for this stack."""
    context = {"matrix": entry, "vars": VARS}
    return {key: interpolate(str(value), context) for key, value in caller["with"].items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """stacks/, and pairs whose GKE and AKS halves serve ACME TLS (their traffic stack names them),
    each pair alone in its folder as the traffic and drill tests write it (their plans are shared)."""
    written = []
    for first, second in (("aws", "gcp"), ("gcp", "azure")):
        folder = tmp_path_factory.mktemp(f"{first}-{second}")
        write_pair(folder, first, second)
        written.append(folder)
    return [ROOT / "stacks", *written]


@pytest.mark.parametrize(("workflow", "job_name"), [("preview.yml", "preview"), ("deploy.yml", "prod"),
                                                    ("deploy.yml", "dev"), ("drift.yml", "drift")])
def test_every_stack_job_signs_in_to_exactly_the_clouds_its_plan_declares(
        folders: list[Path], workflow: str, job_name: str) -> None:
    caller = load(workflow)["jobs"][job_name]
    job = load("stack.yml")["jobs"]["pulumi"]
    seen = set()
    for folder in folders:
        with sharing_plans():
            entries = list_stacks(folder, with_clouds=True)
        for entry in entries:
            inputs = stack_job_inputs(caller, json.loads(json.dumps(entry)))
            clouds = signed_in(job, {"inputs": inputs, "vars": VARS})
            planned = planned_clouds(folder / f"Pulumi.{entry['stack']}.yaml")
            assert planned <= clouds, f"{entry['stack']}: plans on {sorted(planned)}, signs in to {sorted(clouds)}"
            assert clouds <= planned, f"{entry['stack']}: signs in to {sorted(clouds - planned)} it declares nothing on"
            seen.add((entry["cloud"], frozenset(planned)))
    # The seam itself was crossed: a GKE and an AKS stack that need AWS as well.
    assert ("gcp", frozenset({"gcp", "aws"})) in seen and ("azure", frozenset({"azure", "aws"})) in seen


def test_the_failover_jobs_sign_in_to_the_clouds_of_the_stacks_they_update(folders: list[Path]) -> None:
    doc = load("failover.yml")
    pairs = [(ROOT / "stacks", "prod-azure"), (ROOT / "stacks", "prod-aws"),
             (folders[1], "aws-gcp-gcp"), (folders[2], "gcp-azure-azure"), (folders[2], "gcp-azure-gcp")]
    for folder, target in pairs:
        with sharing_plans():
            outputs = failover_outputs(target, folder)
        context = {"needs": {"pair": {"outputs": outputs}}, "inputs": {"to": target}, "vars": VARS}
        updated = {"failover": [target, outputs["traffic-stack"]], "demote": [outputs["peer"]]}
        for job_name, stacks in updated.items():
            planned = set().union(*(planned_clouds(folder / f"Pulumi.{s}.yaml") for s in stacks))
            clouds = signed_in(doc["jobs"][job_name], context)
            assert planned == clouds, (target, job_name, sorted(planned), sorted(clouds))
