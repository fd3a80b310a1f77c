"""EKS public tiers behind a Network Load Balancer made by the AWS Load Balancer Controller; GKE and
AKS keep their own layer-4 load balancers unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.k8s import addons_aws
from components.k8s.services import NLB_IDLE_TIMEOUT_SECONDS, PUBLIC_SERVICE_ANNOTATIONS, public_annotations
from components.spec import ServiceSpec
from infra.offline.plan import Plan
from tests.conftest import plan_config, stack_plan
from tests.test_services_config import SERVICES

SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
A = "service.beta.kubernetes.io/aws-load-balancer-"
# What EKS's built-in (in-tree) service controller reads to make a classic ELB.
CLASSIC_ANNOTATIONS = (f"{A}connection-idle-timeout", f"{A}connection-draining-enabled",
                       f"{A}connection-draining-timeout", f"{A}cross-zone-load-balancing-enabled")

# Two public tiers with their own port, drain and health path, so per-tier values cannot come from a default.
TIERS: dict[str, Any] = {
    **copy.deepcopy(SERVICES),
    "edge": {"image": "ghcr.io/acme/im-edge:1.0.3", "port": 9443, "cpu": "500m", "memory": "1Gi",
             "replicas": {"min": 2, "max": 10}, "public": True, "publicPort": 8443, "drainSeconds": 0,
             "healthPath": "/ready", "namespace": "edge"},
}

_PLANS: dict[str, Plan] = {}


def plan_of(cloud: str) -> Plan:
    if cloud not in _PLANS:
        _PLANS[cloud] = plan_config(cloud, extra={"im-platform:services": TIERS})
    return _PLANS[cloud]


def service(plan: Plan, name: str) -> dict[str, Any]:
    return next(r for r in plan.of_type(SERVICE) if r["inputs"]["metadata"]["name"] == name)


def release(plan: Plan) -> dict[str, Any]:
    return next(r for r in plan.of_type(RELEASE) if r["inputs"]["name"] == "aws-load-balancer-controller")


def target_group_attributes(annotations: dict[str, str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in annotations[f"{A}target-group-attributes"].split(","))


def test_the_plan_has_nothing_unknown() -> None:
    assert "[unknown]" not in json.dumps(plan_of("aws").to_json())


@pytest.mark.parametrize(("name", "public_port", "port", "drain", "path"), [
    ("gateway", 443, 8080, 300, "/healthz"),
    ("edge", 8443, 9443, 0, "/ready"),
])
def test_a_public_tier_is_an_nlb_with_its_own_drain_idle_timeout_and_health_check(
        name: str, public_port: int, port: int, drain: int, path: str) -> None:
    svc = service(plan_of("aws"), name)["inputs"]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb"
    annotations = svc["metadata"]["annotations"]
    assert annotations[f"{A}nlb-target-type"] == "ip"
    assert annotations[f"{A}scheme"] == "internet-facing"
    assert annotations[f"{A}attributes"] == "load_balancing.cross_zone.enabled=true"
    idle = annotations[f"{A}listener-attributes.TCP-{public_port}"]
    assert idle == f"tcp.idle_timeout.seconds={NLB_IDLE_TIMEOUT_SECONDS}"
    assert 60 <= NLB_IDLE_TIMEOUT_SECONDS <= 6000 and NLB_IDLE_TIMEOUT_SECONDS > 350, "raised, within AWS's range"
    assert target_group_attributes(annotations) == {
        "deregistration_delay.timeout_seconds": str(drain),
        "deregistration_delay.connection_termination.enabled": "false",
        "preserve_client_ip.enabled": "true",
    }
    assert (annotations[f"{A}healthcheck-protocol"], annotations[f"{A}healthcheck-port"],
            annotations[f"{A}healthcheck-path"]) == ("http", str(port), path)
    assert not set(CLASSIC_ANNOTATIONS) & set(annotations)


def test_no_classic_elb_remains_on_eks() -> None:
    for plan in (plan_of("aws"), stack_plan("dev-aws"), stack_plan("prod-aws")):
        balanced = [r for r in plan.of_type(SERVICE) if r["inputs"]["spec"]["type"] == "LoadBalancer"]
        assert balanced, plan.stack
        for r in balanced:
            # Without a class, EKS's built-in controller would make a classic ELB for it.
            assert r["inputs"]["spec"].get("loadBalancerClass") == "service.k8s.aws/nlb", r["name"]
            assert not set(CLASSIC_ANNOTATIONS) & set(r["inputs"]["metadata"]["annotations"]), r["name"]
        assert not [r["type"] for r in plan.resources if r["type"].startswith(("aws:elb/", "aws:elasticloadbalancing:"))]


def test_public_services_and_their_pods_wait_for_the_controller() -> None:
    plan = plan_of("aws")
    controller = release(plan)["urn"]
    for name in ("gateway", "edge"):
        svc = service(plan, name)
        assert controller in svc["options"]["dependsOn"], "its webhook mutates Services on creation"
        assert svc["options"]["replaceOnChanges"] == ["spec.loadBalancerClass"], "the class cannot change in place"
        deployment = next(r for r in plan.of_type(DEPLOYMENT) if r["inputs"]["metadata"]["name"] == name)
        assert controller in deployment["options"]["dependsOn"], "its webhook adds the pods' readiness gate"
    logic = next(r for r in plan.of_type(DEPLOYMENT) if r["inputs"]["metadata"]["name"] == "logic")
    assert controller not in logic["options"]["dependsOn"]


def test_namespaces_of_public_tiers_get_the_readiness_gate_and_only_they() -> None:
    labels = {r["inputs"]["metadata"]["name"]: r["inputs"]["metadata"]["labels"] for r in plan_of("aws").of_type(NAMESPACE)}
    gate = "elbv2.k8s.aws/pod-readiness-gate-inject"
    assert {ns for ns, lab in labels.items() if lab.get(gate) == "enabled"} == {"gateway", "edge"}


def test_the_controller_is_pinned_and_needs_no_instance_metadata() -> None:
    plan = plan_of("aws")
    inputs = release(plan)["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
        "aws-load-balancer-controller", addons_aws.LB_CONTROLLER_CHART_VERSION, "https://aws.github.io/eks-charts")
    assert inputs["version"].count(".") == 2 and inputs["namespace"] == "kube-system"
    values = inputs["values"]
    vpc = plan.one("aws:ec2/vpc:Vpc")
    assert values["clusterName"] == plan.outputs["clusterName"] and values["region"] == "eu-west-1"
    assert values["vpcId"].startswith("vpc-") and vpc["name"].endswith("-vpc")
    assert values["nodeSelector"] == {"im-platform/pool": "system"} and values["replicaCount"] == 2
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    association = next(r for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                       if r["name"].endswith("lb-controller"))
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
        "kube-system", values["serviceAccount"]["name"])
    assert association["urn"] in release(plan)["options"]["dependsOn"], "credentials before the pod starts"


def _controller_policy(plan: Plan) -> dict[str, Any]:
    policy = next(r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r["name"].endswith("lb-controller"))
    return json.loads(policy["inputs"]["policy"])


def test_the_controllers_role_is_for_its_service_account_only() -> None:
    plan = plan_of("aws")
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("lb-controller"))
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == "aws-load-balancer-controller"
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-name"] == plan.outputs["clusterName"]


def test_the_controller_changes_only_this_clusters_load_balancers() -> None:
    plan = plan_of("aws")
    cluster = plan.outputs["clusterName"]
    statements = _controller_policy(plan)["Statement"]
    text = json.dumps(statements)
    assert '"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}' not in text, "tag presence alone is not enough"
    assert '"aws:RequestTag/elbv2.k8s.aws/cluster": "false"' not in text
    for action in ("elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroupAttributes",
                   "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:RegisterTargets",
                   "elasticloadbalancing:DeregisterTargets", "ec2:DeleteSecurityGroup"):
        granting = [s for s in statements if action in s["Action"]]
        assert granting and all(s["Condition"]["StringEquals"]["aws:ResourceTag/elbv2.k8s.aws/cluster"] == cluster
                                for s in granting), action
    for action in ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"):
        granting = [s for s in statements if action in s["Action"]]
        assert granting and all(s["Condition"]["StringEquals"]["aws:RequestTag/elbv2.k8s.aws/cluster"] == cluster
                                for s in granting), action
    arns = [r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
            if r != "*"]
    assert arns and all(r.startswith("arn:aws:") and ":eu-west-1:" in r for r in arns), arns
    # What the NLB's listener attribute (the idle timeout) needs.
    assert any("elasticloadbalancing:ModifyListenerAttributes" in s["Action"] for s in statements)


def test_the_nodes_security_group_is_the_one_the_controller_opens_to_the_nlb() -> None:
    """The controller adds the NLB's traffic and health-check rules to the security group of the
    pods' network interfaces, which it finds as the one EKS tags for the cluster: the cluster
    security group, as long as nodes and pods carry no other."""
    plan = plan_of("aws")
    for template in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        inputs = template["inputs"]
        assert "vpcSecurityGroupIds" not in inputs and "securityGroupNames" not in inputs, template["name"]
        assert not any("securityGroups" in ni for ni in inputs.get("networkInterfaces") or []), template["name"]
    vpc_cni = next(r for r in plan.of_type("aws:eks/addon:Addon") if r["inputs"]["addonName"] == "vpc-cni")
    assert "ENABLE_POD_ENI" not in (vpc_cni["inputs"].get("configurationValues") or ""), "no per-pod security groups"
    values = release(plan)["inputs"]["values"]
    assert values["enableBackendSecurityGroup"] is True and values["enableManageBackendSecurityGroupRules"] is True
    for name in ("gateway", "edge"):
        annotations = service(plan, name)["inputs"]["metadata"]["annotations"]
        assert annotations[f"{A}manage-backend-security-group-rules"] == "true"
        assert f"{A}security-groups" not in annotations, "the controller makes the NLB's own group"
    # Inside the cluster, the public tier's NetworkPolicy admits every source on the TLS sidecar's
    # port (clients, their own addresses preserved), and the NLB's health checker, from inside the
    # VPC, on the tier's plain port, which nothing outside the node network reaches.
    policy = next(r for r in plan.of_type(NETWORK_POLICY) if r["inputs"]["metadata"]["name"] == "gateway"
                  and r["inputs"]["metadata"]["namespace"] == "gateway")
    assert policy["inputs"]["spec"]["ingress"] == [
        {"ports": [{"port": 8443, "protocol": "TCP"}]},
        {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_the_nlb_has_a_tagged_public_subnet_in_each_zone() -> None:
    plan = plan_of("aws")
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    public = [s["inputs"] for s in subnets if s["inputs"]["tags"].get("kubernetes.io/role/elb") == "1"]
    assert len(public) == 3 and len({s["availabilityZone"] for s in public}) == 3
    assert all(s["tags"].get("kubernetes.io/role/internal-elb") is None for s in public)
    tables = {r["urn"]: r for r in plan.of_type("aws:ec2/routeTable:RouteTable")}
    igw_routed = [t for t in tables.values() if any("gatewayId" in route for route in t["inputs"].get("routes") or [])]
    assert igw_routed, "the public subnets route to an internet gateway"


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_gke_and_aks_keep_their_own_load_balancers(cloud: str) -> None:
    plan = plan_of(cloud)
    svc = service(plan, "gateway")
    assert "loadBalancerClass" not in svc["inputs"]["spec"]
    assert svc["inputs"]["metadata"]["annotations"] == PUBLIC_SERVICE_ANNOTATIONS[cloud]
    assert svc["options"]["replaceOnChanges"] == [] and svc["options"]["dependsOn"] == []
    assert not [r for r in plan.of_type(NAMESPACE) if "elbv2.k8s.aws/pod-readiness-gate-inject" in r["inputs"]["metadata"]["labels"]]
    # No load balancer controller of AWS's: the only Helm release there may be is cert-manager (TLS,
    # on a stack a traffic stack routes to).
    assert {r["inputs"]["chart"] for r in plan.of_type(RELEASE)} <= {"cert-manager"}


@pytest.mark.parametrize("drain", [0, 30, 3600])
def test_every_allowed_drain_is_a_valid_deregistration_delay(drain: int) -> None:
    tier = ServiceSpec(name="gateway", image="x:1", port=8080, cpu="1", memory="1Gi", min_replicas=2, max_replicas=3,
                       cpu_limit="2", namespace="gateway", public=True, drain_seconds=drain)
    delay = int(target_group_attributes(public_annotations("aws", tier))["deregistration_delay.timeout_seconds"])
    assert delay == drain and 0 <= delay <= 3600, "AWS's range for target groups"


def test_what_stays_account_wide_is_only_what_iam_cannot_narrow() -> None:
    from components.k8s.addons_aws import LB_CONTROLLER_DESCRIBE, LB_CONTROLLER_INTEGRATIONS

    plan = plan_of("aws")
    cluster = plan.outputs["clusterName"]
    vpc_id = release(plan)["inputs"]["values"]["vpcId"]
    statements = _controller_policy(plan)["Statement"]
    unbounded = {a for s in statements if s["Resource"] == "*" and "Condition" not in s for a in s["Action"]}
    # Describe calls have no resource-level permissions; the ALB integrations are kept as documented.
    assert unbounded == set(LB_CONTROLLER_DESCRIBE) | set(LB_CONTROLLER_INTEGRATIONS)
    vpc_arn = f"arn:aws:ec2:eu-west-1:123456789012:vpc/{vpc_id}"
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"):
        granting = [s for s in statements if action in s["Action"]]
        assert granting and all(s["Resource"].endswith(":security-group/*") for s in granting)
        assert all(s["Condition"].get("ArnEquals") == {"ec2:Vpc": vpc_arn}
                   or s["Condition"]["StringEquals"]["aws:ResourceTag/elbv2.k8s.aws/cluster"] == cluster
                   for s in granting), action
    creating = [s for s in statements if "ec2:CreateSecurityGroup" in s["Action"]]
    assert {s["Resource"] for s in creating} == {"arn:aws:ec2:eu-west-1:123456789012:security-group/*", vpc_arn}
    assert all(s["Condition"]["StringEquals"]["aws:RequestTag/elbv2.k8s.aws/cluster"] == cluster
               for s in creating if s["Resource"] != vpc_arn)
    for action in ("elasticloadbalancing:CreateListener", "elasticloadbalancing:SetWebAcl"):
        granting = [s for s in statements if action in s["Action"]]
        assert granting and all(s["Condition"]["StringEquals"]["aws:ResourceTag/elbv2.k8s.aws/cluster"] == cluster
                                for s in granting), action
    # Listeners and rules: this account's in this region, never another's.
    for action in ("elasticloadbalancing:DeleteListener", "elasticloadbalancing:ModifyRule"):
        granting = [s for s in statements if action in s["Action"]]
        assert granting and all(r.startswith("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener")
                                for s in granting for r in s["Resource"]), action
