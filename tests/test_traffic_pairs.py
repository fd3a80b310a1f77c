"""Traffic stacks over pairs on every cloud combination written to a tmp folder, planned through the
CLI in-process (StackReferences resolved from the pair's own plans); what a named stack must be;
the `gateway` output's choice of tier; and each cloud's public gateway admitting the health checkers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import stackfiles
from infra.offline.plan import UNKNOWN, plan_stack, reference_outputs
from tests.conftest import ROOT
from tests.plans import sharing_plans, spec_plan, stack_plan
from tests.test_cli import cli_in_process
from tests.test_services_config import SERVICES

HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
# One template per cloud, each on ranges of its own (a pair's ranges must not overlap).
TEMPLATES = {"aws": "prod-aws", "azure": "prod-azure", "gcp": "staging-gcp"}
RANGES = {"aws": ("10.20.0.0/16", "100.64.0.0/14", "172.20.0.0/16"),
          "gcp": ("10.40.0.0/16", "100.68.0.0/14", "172.21.0.0/16"),
          "azure": ("10.50.0.0/16", "100.72.0.0/14", "172.22.0.0/16")}
PAIRS = [("aws", "gcp"), ("aws", "azure"), ("gcp", "azure"), ("azure", "aws")]


def cluster_stack(cloud: str, peer: str, role: str, edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{TEMPLATES[cloud]}.yaml").read_text())
    config = doc["config"]
    config["im-platform:environment"] = "prod"
    cidr, pods, services = RANGES[cloud]
    config["im-platform:cluster"]["network"] = {"cidr": cidr, "podCidr": pods, "serviceCidr": services}
    config["im-platform:dr"] = {"peer": peer, "role": role}
    for service in config["im-platform:services"].values():
        # The staging template's single replicas are below what prod requires.
        service["replicas"]["min"] = max(2, service["replicas"]["min"])
    if edit:
        edit(config)
    return doc


def write_pair(folder: Path, first: str, second: str, traffic: dict[str, Any] | None = None,
               edit: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, str, str]:
    """Two cluster stacks `<first>-<second>-<cloud>` naming each other, and the traffic stack over
    them (`Pulumi.<first>-<second>-traffic.yaml`); `edit` changes the second stack's config."""
    a, b = f"{first}-{second}-{first}", f"{first}-{second}-{second}"
    for name, cloud, peer, role, change in ((a, first, b, "primary", None), (b, second, a, "standby", edit)):
        (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(cluster_stack(cloud, peer, role, change)))
    settings = {"provider": "route53", "zone": "example.com", "name": "chat.example.com", "stacks": [a, b],
                "active": a, "ttl": 30, "healthCheck": {"intervalSeconds": 10, "failureThreshold": 3}}
    settings.update(traffic or {})
    path = folder / f"Pulumi.{first}-{second}-traffic.yaml"
    path.write_text(yaml.safe_dump({"config": {"aws:region": "us-east-1", "im-platform:traffic": settings}}))
    return path, a, b


_SHARED: dict[tuple[str, str], tuple[Path, str, str]] = {}


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pairs")


def shared_pair(root: Path, first: str, second: str) -> tuple[Path, str, str]:
    """`write_pair(first, second)` unedited, written once per module in a folder of its own: tests
    that only read it share its plans (the session's plans are keyed on where stacks are looked up)."""
    if (first, second) not in _SHARED:
        folder = root / f"{first}-{second}"
        folder.mkdir()
        _SHARED[(first, second)] = write_pair(folder, first, second)
    return _SHARED[(first, second)]


def planned(path: Path, *stack: str) -> dict[str, Any]:
    result = cli_in_process("plan", "--config-file", str(path), *stack, "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def of_type(doc: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in doc["resources"] if r["type"] == type_]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=["-".join(p) for p in PAIRS])
def test_the_traffic_plan_shows_both_health_checks_and_failover_records_with_planned_addresses(
        pairs_dir: Path, first: str, second: str) -> None:
    path, a, b = shared_pair(pairs_dir, first, second)
    doc = planned(path)
    assert UNKNOWN not in json.dumps(doc)
    # The pair's gateways as their own plans export them (planned before the traffic stack, kept).
    with sharing_plans(), stackfiles.searching_beside(path):
        gateways = {name: reference_outputs(name, (doc["stack"],), doc["project"])[0]["gateway"] for name in (a, b)}
    for name, cloud in ((a, first), (b, second)):
        address = gateways[name]["address"]
        # EKS: the NLB's hostname; GKE and AKS: the load balancer's IP.
        assert address.endswith(".elb.amazonaws.com") if cloud == "aws" else address.startswith("203.0.113.")

    checks = {next(n for n in (a, b) if r["name"].split("-health")[0].endswith(n)): r["inputs"]
              for r in of_type(doc, HEALTH_CHECK)}
    assert set(checks) == {a, b}
    for name, check in checks.items():
        address = gateways[name]["address"]
        assert (check["type"], check["port"], check["resourcePath"]) == ("HTTPS", 443, "/healthz")
        assert (check["requestInterval"], check["failureThreshold"], check["enableSni"]) == (10, 3, True)
        public = "chat.example.com"
        if address[0].isdigit():
            # Probed at the IP, with the public name as Host and SNI (what clients send).
            assert check["ipAddress"] == address and check["fqdn"] == public
        else:
            # A hostname gateway through its per-stack name: this stack's load balancer only.
            assert check["fqdn"] == f"{name}.{public}" and "ipAddress" not in check

    records = of_type(doc, RECORD)
    endpoints = {r["inputs"]["name"]: r["inputs"] for r in records if "setIdentifier" not in r["inputs"]}
    for name in (a, b):
        endpoint = endpoints[f"{name}.chat.example.com"]
        address = gateways[name]["address"]
        assert endpoint["records"] == [address]
        assert endpoint["type"] == ("A" if address[0].isdigit() else "CNAME")
    by_role = {r["inputs"]["setIdentifier"]: r["inputs"] for r in records if "setIdentifier" in r["inputs"]}
    assert {k: v["failoverRoutingPolicies"] for k, v in by_role.items()} == {"primary": [{"type": "PRIMARY"}],
                                                                             "secondary": [{"type": "SECONDARY"}]}
    # The PRIMARY points at the active stack, the SECONDARY at the other.
    failover = {a: by_role["primary"], b: by_role["secondary"]}
    for name, record in failover.items():
        assert (record["name"], record["type"], record["ttl"]) == ("chat.example.com", "CNAME", 30)
        assert record["records"] == [f"{name}.chat.example.com"]
    # Each failover record carries its own stack's health check.
    checks_out = doc["outputs"]["healthChecks"]
    assert {n: failover[n]["healthCheckId"] for n in (a, b)} == {n: checks_out[n]["id"] for n in (a, b)}
    assert checks_out[a]["id"] != checks_out[b]["id"]
    assert {n: checks_out[n]["address"] for n in (a, b)} == {n: gateways[n]["address"] for n in (a, b)}
    traffic = doc["outputs"]["traffic"]
    assert {k: traffic[k] for k in ("name", "active", "stacks")} == {"name": "chat.example.com", "active": a, "stacks": [a, b]}


def test_switching_active_repoints_the_records_and_replaces_nothing(pairs_dir: Path) -> None:
    path, a, b = shared_pair(pairs_dir, "aws", "azure")
    before = planned(path)
    # The same stack with the other stack active, read from a file beside the pair.
    switched = path.with_name(f"switched-{path.name}")
    switched.write_text(path.read_text().replace(f"active: {a}", f"active: {b}"))
    after = planned(switched, "--stack", path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
    assert {r["urn"] for r in before["resources"]} == {r["urn"] for r in after["resources"]}
    roles = {r["inputs"]["records"][0]: r["inputs"]["failoverRoutingPolicies"][0]["type"]
             for r in of_type(after, RECORD) if "setIdentifier" in r["inputs"]}
    assert roles == {f"{a}.chat.example.com": "SECONDARY", f"{b}.chat.example.com": "PRIMARY"}


def _no_peer(config: dict[str, Any]) -> None:
    del config["im-platform:dr"]


def test_the_pair_must_name_each_other(tmp_path: Path) -> None:
    path, _, b = write_pair(tmp_path, "aws", "gcp", edit=_no_peer)
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2
    assert f'im-platform:traffic.stacks[1] is "{b}", but {b} does not name' in result.stderr


def test_a_pair_on_one_cloud_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path, a, b = write_pair(tmp_path, "aws", "gcp", edit=_onto_aws)
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'config error: im-platform:traffic.stacks[1] is "{b}", but {a} is on aws too: '
        "the two stacks of a DR pair run on different clouds")


def test_a_pair_with_two_standbys_is_a_config_error_naming_the_role(tmp_path: Path) -> None:
    path, a, b = write_pair(tmp_path, "aws", "gcp", edit=lambda c: c["im-platform:dr"].update(role="standby"))
    (tmp_path / f"Pulumi.{a}.yaml").write_text((tmp_path / f"Pulumi.{a}.yaml").read_text().replace(
        "role: primary", "role: standby"))
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'config error: im-platform:traffic.stacks[1] is "{b}", but both stacks have im-platform:dr.role standby: '
        "expected one primary and one standby (with two standbys nobody runs at full size)")


def test_a_pair_with_two_primaries_plans_with_one_warning_naming_both(tmp_path: Path) -> None:
    """Two primaries is where a failover stands between its promote and its demote."""
    path, a, b = write_pair(tmp_path, "aws", "gcp", edit=lambda c: c["im-platform:dr"].update(role="primary"))
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"im-platform:dr.role is primary on both {a} and {b}" in warnings[0]
    assert "both run at full size" in warnings[0]


def _onto_aws(config: dict[str, Any]) -> None:
    """The second (gcp) stack moved onto AWS, on its own ranges: only the cloud breaks the pair."""
    for key in [k for k in config if k.startswith("gcp:")]:
        del config[key]
    config["aws:region"] = "eu-west-1"
    config["im-platform:cloud"] = "aws"


def test_a_traffic_stack_declares_no_cluster(tmp_path: Path) -> None:
    path, _, _ = write_pair(tmp_path, "aws", "gcp")
    doc = yaml.safe_load(path.read_text())
    doc["config"]["im-platform:cloud"] = "aws"
    path.write_text(yaml.safe_dump(doc))
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2
    assert 'im-platform:cloud is "aws", but this is a traffic stack (im-platform:traffic): it declares no cluster' in result.stderr


def _private_only(config: dict[str, Any]) -> None:
    for service in config["im-platform:services"].values():
        service.pop("public", None)


def test_a_named_stack_without_a_gateway_output_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path, _, b = write_pair(tmp_path, "aws", "gcp", edit=_private_only)
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2, result.stderr
    assert f'config error: im-platform:traffic.stacks[1] is "{b}", but {b} has no public tier' in result.stderr


def test_a_named_stack_that_fails_its_own_validation_is_named(tmp_path: Path) -> None:
    def bad_pool(config: dict[str, Any]) -> None:
        config["im-platform:cluster"]["nodePools"]["system"]["minNodes"] = 99

    path, _, b = write_pair(tmp_path, "aws", "gcp", edit=bad_pool)
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2
    # Named through the chain that reached it (the traffic stack, then the pair's reference).
    assert "\nconfig error: im-platform:traffic.stacks[" in result.stderr
    assert f"Pulumi.{b}.yaml is invalid" in result.stderr
    assert "im-platform:cluster.nodePools.system.minNodes is 99" in result.stderr


def test_a_pair_referencing_each_other_plans_without_recursion(pairs_dir: Path) -> None:
    path, a, b = shared_pair(pairs_dir, "gcp", "azure")
    with sharing_plans():
        for name, peer in ((a, b), (b, a)):
            plan = plan_stack(config_file=path.parent / f"Pulumi.{name}.yaml")
            assert plan.outputs["dr"]["peer"] == peer and "gateway" in plan.outputs


def test_check_and_manifests_handle_a_traffic_stack(pairs_dir: Path, tmp_path: Path) -> None:
    path, _, _ = shared_pair(pairs_dir, "aws", "azure")
    result = cli_in_process("check", "--config-file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules passed over" in result.stdout and "violation" not in result.stdout
    out = tmp_path / "manifests"
    result = cli_in_process("manifests", "--config-file", str(path), "--out", str(out))
    assert result.returncode == 2 and "is a traffic stack" in result.stderr and not out.exists()


# -- the gateway output of a cluster stack ---------------------------------------------------------


@pytest.mark.parametrize(("stack", "host"), [("prod-aws", ".eu-west-1.elb.amazonaws.com"), ("prod-azure", "203.0.113."),
                                              ("staging-gcp", "203.0.113.")])
def test_a_stack_with_a_public_tier_exports_its_gateway(stack: str, host: str) -> None:
    gateway = stack_plan(stack).outputs["gateway"]
    assert set(gateway) == {"service", "address", "port", "healthPath"}
    assert (gateway["service"], gateway["port"], gateway["healthPath"]) == ("gateway", 443, "/healthz")
    assert host in gateway["address"] and ":" not in gateway["address"]


def test_the_gateway_is_the_tier_named_gateway_else_the_first_public_tier() -> None:
    services = copy.deepcopy(SERVICES)
    services["logic"].update({"public": True, "publicPort": 8443, "healthPath": "/ready"})
    services = {"logic": services["logic"], "gateway": services["gateway"], "push": services["push"]}
    assert spec_plan("gcp", extra={"im-platform:services": services}).outputs["gateway"]["service"] == "gateway"
    del services["gateway"]
    services["logic"]["allowFrom"] = []
    gateway = spec_plan("gcp", extra={"im-platform:services": services}).outputs["gateway"]
    assert (gateway["service"], gateway["port"], gateway["healthPath"]) == ("logic", 8443, "/ready")


def test_no_public_tier_no_gateway_output() -> None:
    services = copy.deepcopy(SERVICES)
    services["gateway"].pop("public")
    assert "gateway" not in spec_plan("azure", extra={"im-platform:services": services}).outputs


# -- the DNS provider's health checkers reach each cloud's gateway ------------------------------------

# Annotations that would narrow who may reach a cloud's load balancer (the checkers come from the
# provider's own, changing, address ranges).
SOURCE_LIMITS = ("service.beta.kubernetes.io/load-balancer-source-ranges",
                 "service.beta.kubernetes.io/aws-load-balancer-security-groups",
                 "service.beta.kubernetes.io/azure-allowed-service-tags",
                 "service.beta.kubernetes.io/azure-allowed-ip-ranges")


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_health_checkers_reach_the_public_gateway(cloud: str) -> None:
    plan = spec_plan(cloud, extra={"im-platform:services": SERVICES})
    service = next(r for r in plan.of_type("kubernetes:core/v1:Service") if r["inputs"]["metadata"]["name"] == "gateway")
    spec, annotations = service["inputs"]["spec"], service["inputs"]["metadata"].get("annotations") or {}
    # The load balancer listens on the public port for everyone: no source ranges, no narrowing annotation.
    assert spec["type"] == "LoadBalancer" and "loadBalancerSourceRanges" not in spec
    assert [p["port"] for p in spec["ports"]] == [443]
    assert not set(annotations) & set(SOURCE_LIMITS)
    if cloud == "aws":
        assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
        # The controller opens the pods' security group to the NLB (traffic and its own health checks).
        assert annotations["service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules"] == "true"
    # The pods admit any source on the port the Service sends 443 to (the load balancer keeps the
    # checker's address): the TLS sidecar's when the platform ends TLS, else the tier's own.
    policy = next(r for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                  if r["inputs"]["metadata"]["name"] == "gateway")
    open_rules = [rule for rule in policy["inputs"]["spec"]["ingress"] if "from" not in rule]
    target = spec["ports"][0]["targetPort"]
    deployment = next(r for r in plan.of_type("kubernetes:apps/v1:Deployment") if r["inputs"]["metadata"]["name"] == "gateway")
    pod = deployment["inputs"]["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for c in [*pod["containers"], *pod.get("initContainers", [])] for p in c["ports"]}
    assert open_rules == [{"ports": [{"protocol": "TCP", "port": ports[target]}]}]
