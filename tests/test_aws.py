"""What only the EKS cluster has, from the recorded registrations."""

from __future__ import annotations

import ipaddress

import pytest

from components.aws import subnet_cidrs
from infra.offline.plan import Plan
from tests.conftest import cluster, spec_plan


@pytest.fixture(scope="module")
def prod() -> Plan:
    return spec_plan("aws")


@pytest.fixture(scope="module")
def dev() -> Plan:
    return spec_plan("aws", environment="dev", cluster_value=cluster(apiAllowedCidrs=[]))


def test_nodes_require_imdsv2_with_one_hop(prod: Plan) -> None:
    templates = {r["urn"]: r for r in prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    groups = prod.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(templates) == len(groups) == 3
    for r in templates.values():
        assert r["inputs"]["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                                  "httpPutResponseHopLimit": 1}
        ebs = r["inputs"]["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
    template_ids = {g["inputs"]["launchTemplate"]["id"] for g in groups}
    assert len(template_ids) == 3 and all(i.startswith("lt-") for i in template_ids)


def test_node_groups_span_three_private_subnets_in_three_zones(prod: Plan) -> None:
    subnets = {r["inputs"]["cidrBlock"]: r for r in prod.of_type("aws:ec2/subnet:Subnet")}
    private = [r for r in subnets.values() if "kubernetes.io/role/internal-elb" in r["inputs"]["tags"]]
    assert len({r["inputs"]["availabilityZone"] for r in private}) == 3
    assert not any(r["inputs"].get("mapPublicIpOnLaunch") for r in subnets.values())
    for group in prod.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert len(group["inputs"]["subnetIds"]) == 3
        assert all(sid.startswith("subnet-") for sid in group["inputs"]["subnetIds"])
    cluster_subnets = prod.one("aws:eks/cluster:Cluster")["inputs"]["vpcConfig"]["subnetIds"]
    assert sorted(cluster_subnets) == sorted(prod.of_type("aws:eks/nodeGroup:NodeGroup")[0]["inputs"]["subnetIds"])


def test_private_subnets_route_out_through_nat(prod: Plan, dev: Plan) -> None:
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3, "one per zone in prod"
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1, "one shared NAT gateway elsewhere"
    private_tables = [r for r in prod.of_type("aws:ec2/routeTable:RouteTable") if "private" in r["name"]]
    assert len(private_tables) == 3
    assert all(t["inputs"]["routes"][0]["natGatewayId"].startswith("nat-") for t in private_tables)


def test_spot_pool_is_diversified(prod: Plan) -> None:
    worker = next(g for g in prod.of_type("aws:eks/nodeGroup:NodeGroup") if g["name"].endswith("-worker"))
    assert worker["inputs"]["capacityType"] == "SPOT"
    assert len(worker["inputs"]["instanceTypes"]) >= 3
    assert all(t.endswith(".2xlarge") for t in worker["inputs"]["instanceTypes"])


def test_node_groups_start_at_min_and_are_replaced_under_a_new_name(prod: Plan) -> None:
    for g in prod.of_type("aws:eks/nodeGroup:NodeGroup"):
        s = g["inputs"]["scalingConfig"]
        assert s["desiredSize"] == s["minSize"]
        assert "nodeGroupName" not in g["inputs"] and g["inputs"]["nodeGroupNamePrefix"].endswith("-")
        assert g["inputs"]["updateConfig"] == {"maxUnavailable": 1}
        assert g["inputs"]["nodeRepairConfig"] == {"enabled": True}


def test_control_plane_is_encrypted_audited_and_closed(prod: Plan, dev: Plan) -> None:
    eks = prod.one("aws:eks/cluster:Cluster")["inputs"]
    key = prod.one("aws:kms/key:Key")
    assert eks["encryptionConfig"]["resources"] == ["secrets"]
    assert eks["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:eu-west-1:")
    assert key["inputs"]["enableKeyRotation"] is True and key["options"]["protect"] is True
    assert {"audit", "api", "authenticator"} <= set(eks["enabledClusterLogTypes"])
    assert eks["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert eks["upgradePolicy"] == {"supportType": "STANDARD"}
    private = dev.one("aws:eks/cluster:Cluster")["inputs"]["vpcConfig"]
    assert private["endpointPublicAccess"] is False and private["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in private


def test_log_group_exists_before_the_cluster(prod: Plan) -> None:
    log_group = prod.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group["inputs"]["name"] == "/aws/eks/im-prod-aws/cluster"
    assert log_group["urn"] in prod.one("aws:eks/cluster:Cluster")["options"]["dependsOn"]


def test_workload_identity_and_network_policy(prod: Plan) -> None:
    oidc = prod.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")["inputs"]
    assert oidc["url"] == prod.outputs["oidcIssuer"] and oidc["clientIdLists"] == ["sts.amazonaws.com"]
    addons = {a["inputs"]["addonName"]: a for a in prod.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    assert '"enableNetworkPolicy": "true"' in addons["vpc-cni"]["inputs"]["configurationValues"]
    system_group = next(g for g in prod.of_type("aws:eks/nodeGroup:NodeGroup") if g["name"].endswith("-system"))
    assert system_group["urn"] in addons["coredns"]["options"]["dependsOn"]


def test_instance_type_lists_reach_the_engine(prod: Plan) -> None:
    # Optional list inputs go through the SDK's serializer as `pulumi up` sends them: an SDK
    # release that cannot serialise them fails here.
    eks = prod.one("aws:eks/cluster:Cluster")["inputs"]
    assert eks["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    for g in prod.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert isinstance(g["inputs"]["instanceTypes"], list) and g["inputs"]["instanceTypes"]


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.20.0.0/16", "192.168.16.0/20"])
def test_subnets_fit_the_network_without_overlap(cidr: str) -> None:
    private, public = subnet_cidrs(cidr)
    nets = [ipaddress.ip_network(n) for n in private + public]
    assert len(private) == len(public) == 3
    assert all(n.subnet_of(ipaddress.ip_network(cidr)) for n in nets)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_node_groups_wait_for_their_iam_policies_network_add_ons_and_nat(prod: Plan, dev: Plan) -> None:
    """A node that boots before its role's policies, the VPC CNI, the Pod Identity agent or a way
    out (NAT) never joins: the group fails after its 20-minute health check instead of waiting."""
    for plan in (prod, dev):
        node_role = next(r for r in plan.of_type("aws:iam/role:Role")
                         if "ec2.amazonaws.com" in r["inputs"]["assumeRolePolicy"])
        attachments = [r for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                       # the mock names the role `<logical name>-<hash>`, as Pulumi's autonaming does
                       if r["inputs"]["role"].startswith(node_role["name"] + "-")]
        policies = {r["inputs"]["policyArn"].rsplit("/", 1)[-1] for r in attachments}
        assert policies == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly",
                            "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore"}
        addons = {r["inputs"]["addonName"]: r["urn"] for r in plan.of_type("aws:eks/addon:Addon")}
        nats = {r["urn"] for r in plan.of_type("aws:ec2/natGateway:NatGateway")}
        assert nats
        required = {r["urn"] for r in attachments} | {addons["vpc-cni"], addons["eks-pod-identity-agent"]} | nats
        for group in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
            missing = required - set(group["options"]["dependsOn"])
            assert not missing, f"{group['name']} does not wait for {sorted(missing)}"
