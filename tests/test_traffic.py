"""The traffic stack (im-platform:traffic): validation, and the plan of prod-traffic with the
pair's planned gateway addresses in its records and health checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config.errors import ConfigError
from infra.offline.plan import UNKNOWN, Plan
from infra.traffic.config import load_traffic
from tests.plans import stack_plan

_PLANS: dict[str, Plan] = {}


def plan(stack: str) -> Plan:
    if stack not in _PLANS:
        _PLANS[stack] = stack_plan(stack)
    return _PLANS[stack]


def test_prod_traffic_declares_health_checks_and_failover_records_with_planned_addresses() -> None:
    traffic = plan("prod-traffic")
    assert UNKNOWN not in json.dumps(traffic.to_json())
    gateways = {s: plan(s).outputs["gateway"] for s in ("prod-aws", "prod-azure")}
    checks = {r["name"]: r["inputs"] for r in traffic.of_type("aws:route53/healthCheck:HealthCheck")}
    assert len(checks) == 2
    aws_check, azure_check = checks["im-prod-traffic-prod-aws-health"], checks["im-prod-traffic-prod-azure-health"]
    for check in (aws_check, azure_check):
        assert check["type"] == "HTTPS" and check["enableSni"] is True
        assert (check["port"], check["resourcePath"]) == (443, "/healthz")
        assert (check["requestInterval"], check["failureThreshold"]) == (10, 3)
    # The TLS endpoint with a name both stacks' certificates carry as SNI: an AWS load balancer (a
    # hostname) through the per-stack name that resolves to it alone; Azure's IP with the public name.
    assert aws_check["fqdn"] == "prod-aws.chat.example.com" and "ipAddress" not in aws_check
    assert azure_check["ipAddress"] == gateways["prod-azure"]["address"]
    assert azure_check["fqdn"] == "chat.example.com"
    certificates = {s: next(r["inputs"]["spec"]["dnsNames"] for r in plan(s).of_type("kubernetes:cert-manager.io/v1:Certificate"))
                    for s in ("prod-aws", "prod-azure")}
    assert aws_check["fqdn"] in certificates["prod-aws"] and azure_check["fqdn"] in certificates["prod-azure"]

    records = {r["name"]: r["inputs"] for r in traffic.of_type("aws:route53/record:Record")}
    assert records["im-prod-traffic-prod-aws-endpoint"]["type"] == "CNAME"
    assert records["im-prod-traffic-prod-aws-endpoint"]["records"] == [gateways["prod-aws"]["address"]]
    assert records["im-prod-traffic-prod-azure-endpoint"]["type"] == "A"
    assert records["im-prod-traffic-prod-azure-endpoint"]["records"] == [gateways["prod-azure"]["address"]]
    ids = {r["name"]: r for r in traffic.of_type("aws:route53/healthCheck:HealthCheck")}
    assert ids
    primary, secondary = records["im-prod-traffic-primary"], records["im-prod-traffic-secondary"]
    assert primary["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert secondary["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    for stack, record, role in (("prod-aws", primary, "primary"), ("prod-azure", secondary, "secondary")):
        assert (record["name"], record["type"], record["ttl"]) == ("chat.example.com", "CNAME", 30)
        assert record["records"] == [f"{stack}.chat.example.com"] and record["setIdentifier"] == role
        assert record["healthCheckId"] == traffic.outputs["healthChecks"][stack]["id"]
    assert traffic.outputs["traffic"]["name"] == "chat.example.com"
    assert traffic.outputs["traffic"]["active"] == "prod-aws"
    assert traffic.outputs["traffic"]["stacks"] == ["prod-aws", "prod-azure"]
    assert traffic.outputs["traffic"]["switchSeconds"] == 10 * 3 + 30
    refs = sorted(r["inputs"]["name"] for r in traffic.of_type("pulumi:pulumi:StackReference"))
    assert refs == ["organization/im-platform/prod-aws", "organization/im-platform/prod-azure"]


GOOD: dict[str, Any] = {"provider": "route53", "zone": "example.com", "name": "chat.example.com",
                        "stacks": ["prod-aws", "prod-azure"], "active": "prod-aws"}
BAD = [
    ({"provider": "cloudflare"}, 'im-platform:traffic.provider is "cloudflare": expected one of route53'),
    ({"name": "chat.example.org"}, 'im-platform:traffic.name is "chat.example.org", but zone is example.com: '
                                   "expected a name inside the zone, such as chat.example.com"),
    ({"name": "example.com"}, 'im-platform:traffic.name is "example.com", but zone is example.com: '
                              "expected a name below the zone, not its apex"),
    ({"stacks": ["prod-aws"]}, "im-platform:traffic.stacks is [\"prod-aws\"]: expected exactly two different stacks"),
    ({"stacks": ["prod-aws", "dev-aws"]}, 'im-platform:traffic.stacks[0] is "prod-aws", but prod-aws does not name dev-aws'),
    ({"stacks": ["prod-aws", "nowhere"]}, 'im-platform:traffic.stacks[1] is "nowhere": no stack file Pulumi.nowhere.yaml'),
    ({"active": "dev-aws"}, 'im-platform:traffic.active is "dev-aws": expected one of the stacks: prod-aws, prod-azure'),
    ({"ttl": 61}, "im-platform:traffic.ttl is 61: expected a whole number from 1 to 60"),
    ({"healthCheck": {"intervalSeconds": 20}}, "im-platform:traffic.healthCheck.intervalSeconds is 20: expected 10 or 30"),
    ({"healthCheck": {"failureThreshold": 11}},
     "im-platform:traffic.healthCheck.failureThreshold is 11: expected a whole number from 1 to 10"),
    ({"healthCheck": {"path": "healthz"}}, 'im-platform:traffic.healthCheck.path is "healthz": expected an HTTP path'),
    ({"weight": 1}, "im-platform:traffic.weight is an unknown key"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(" is ")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_traffic_configuration_is_one_error(change: dict[str, Any], message: str) -> None:
    block = {**GOOD, **change}
    config = {"aws:region": "us-east-1", "im-platform:traffic": json.dumps(block)}
    with pytest.raises(ConfigError) as err:
        load_traffic(config, project="im-platform", stack="t")
    assert str(err.value).startswith(f"config error: {message}"), str(err.value)


def test_a_traffic_stack_declares_no_cluster() -> None:
    config = {"aws:region": "us-east-1", "im-platform:traffic": json.dumps(GOOD), "im-platform:cloud": "aws"}
    with pytest.raises(ConfigError, match="it declares no cluster"):
        load_traffic(config, project="im-platform", stack="t")
    spec = load_traffic({"aws:region": "us-east-1", "im-platform:traffic": json.dumps(GOOD)}, project="im-platform", stack="t")
    assert (spec.ttl, spec.health_check.interval_seconds, spec.health_check.failure_threshold) == (30, 10, 3)
    assert spec.environment == "prod" and spec.standby == "prod-azure"
