"""Every stack file in stacks/ plans cleanly, and the example layouts are the ones documented."""

from __future__ import annotations

import json

import pytest

from infra.offline.plan import all_stacks, cluster_stacks, project_name, read_stack_config, stack_file, traffic_stacks
from tests.conftest import stack_plan

REQUIRED = {"dev-aws", "staging-gcp", "prod-aws", "prod-azure", "prod-traffic"}


def test_required_example_stacks_exist() -> None:
    assert REQUIRED <= set(all_stacks())


@pytest.mark.parametrize("stack", cluster_stacks())
def test_stack_plans_cleanly(stack: str) -> None:
    """Any stack file in stacks/ (one someone adds too): planned with no unknown left, its outputs
    saying the cloud and environment its own file names; the examples keep the documented layout."""
    plan = stack_plan(stack)
    assert "[unknown]" not in json.dumps(plan.to_json())
    config, _ = read_stack_config(stack_file(stack), project_name())
    assert plan.outputs["environment"] == config["im-platform:environment"]
    assert plan.outputs["cloud"] == config["im-platform:cloud"]
    if stack not in REQUIRED:
        return
    pools = {p["name"]: p for p in plan.outputs["nodePools"]}
    assert {"system", "gateway"} <= set(pools), "an IM layout: system pool and connection gateways"
    assert not pools["system"]["spot"] and not pools["gateway"]["spot"], "gateways hold connections: never spot"
    assert any(p["spot"] for p in pools.values()), "a tier that tolerates interruption runs on spot"
    assert plan.outputs["environment"] == stack.split("-")[0]
    assert plan.outputs["cloud"] == stack.split("-")[1]


@pytest.mark.parametrize("stack", traffic_stacks())
def test_traffic_stack_plans_cleanly(stack: str) -> None:
    plan = stack_plan(stack)
    assert "[unknown]" not in json.dumps(plan.to_json())
    assert len(plan.of_type("aws:route53/healthCheck:HealthCheck")) == 2
    assert set(plan.outputs["traffic"]) >= {"name", "active", "stacks"}


@pytest.mark.parametrize("stack", cluster_stacks())
def test_stack_refuses_the_ambient_kubeconfig(stack: str) -> None:
    import yaml

    from infra.offline.plan import stack_file
    config = yaml.safe_load(stack_file(stack).read_text())["config"]
    assert "kubernetes" in config["pulumi:disable-default-providers"]
