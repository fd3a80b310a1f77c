"""EKS add-ons the cluster does not run by itself: the cluster autoscaler (with its own IAM role
through EKS Pod Identity, allowed to resize only this cluster's node groups), metrics-server (the
CPU metrics the tiers' HorizontalPodAutoscalers act on) and the AWS Load Balancer Controller (the
Network Load Balancers of the public tiers, with its own role, allowed to change only the load
balancers, target groups and security groups tagged as this cluster's, and security-group rules
only in this cluster's VPC; listeners and rules, which carry no cluster tag, stay this account's
in this region). All are pinned Helm charts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.aws import assume_role_policy
from components.base import ClusterComponent
from components.spec import POOL_LABEL_KEY, SYSTEM_POOL, ClusterSpec

if TYPE_CHECKING:
    from components.k8s.addons import ClusterAddons

AUTOSCALER_CHART = "cluster-autoscaler"
AUTOSCALER_CHART_VERSION = "9.59.0"
AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
# The autoscaler's minor must match the cluster's: the chart's default image follows the chart.
AUTOSCALER_IMAGE_TAGS = {"1.30": "v1.30.7", "1.31": "v1.31.5", "1.32": "v1.32.7", "1.33": "v1.33.6",
                         "1.34": "v1.34.5", "1.35": "v1.35.2"}
AUTOSCALER_ACCOUNT = "cluster-autoscaler"
METRICS_SERVER_CHART = "metrics-server"
METRICS_SERVER_CHART_VERSION = "3.13.0"
METRICS_SERVER_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
LB_CONTROLLER_CHART = "aws-load-balancer-controller"
LB_CONTROLLER_CHART_VERSION = "3.5.0"  # controller v3.5.0
LB_CONTROLLER_REPO = "https://aws.github.io/eks-charts"
LB_CONTROLLER_ACCOUNT = "aws-load-balancer-controller"
# The tag the controller puts on every load balancer, target group and security group it creates,
# with the cluster's name as value: the policy below lets it change only those.
LB_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
NAMESPACE = "kube-system"
# The autoscaler's own default; never shorter, so pods that drain quickly are not waited on longer.
DEFAULT_GRACEFUL_TERMINATION_SECONDS = 600
# Helm waits for the add-on to be ready: on a new cluster, until the system node group has joined.
HELM_TIMEOUT_SECONDS = 900

# Read-only calls the autoscaler makes to discover node groups and instance shapes.
DISCOVERY_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
]
SCALING_ACTIONS = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]


def pod_identity_trust_policy(cluster_name: str, account: str, service_account: str) -> str:
    """EKS Pod Identity may hand the role only to this service account in kube-system of this
    cluster in this account (Pod Identity tags every session with them)."""
    doc = json.loads(assume_role_policy("pods.eks.amazonaws.com"))
    doc["Statement"][0]["Condition"] = {"StringEquals": {
        "aws:SourceAccount": account,
        "aws:RequestTag/eks-cluster-name": cluster_name,
        "aws:RequestTag/kubernetes-namespace": NAMESPACE,
        "aws:RequestTag/kubernetes-service-account": service_account,
    }}
    return json.dumps(doc)


def autoscaler_trust_policy(cluster_name: str, account: str) -> str:
    return pod_identity_trust_policy(cluster_name, account, AUTOSCALER_ACCOUNT)


def autoscaler_policy(cluster_name: str, partition: str, region: str, account: str) -> str:
    """Resize and shrink only the groups EKS tagged as this cluster's; describe anything."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ResizeThisClustersNodeGroups",
                "Effect": "Allow",
                "Action": SCALING_ACTIONS,
                "Resource": "*",
                # EKS managed node groups tag their Auto Scaling groups with this key.
                "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
            },
            {
                "Sid": "ReadThisClustersNodeGroups",
                "Effect": "Allow",
                # Labels and taints of a group scaled to zero, to know what a new node would carry.
                "Action": ["eks:DescribeNodegroup"],
                "Resource": f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster_name}/*",
            },
            {"Sid": "Discover", "Effect": "Allow", "Action": DISCOVERY_ACTIONS, "Resource": "*"},
        ],
    })


def load_balancer_controller_policy(cluster_name: str, partition: str, region: str, account: str, vpc_id: str) -> str:
    """The controller's documented IAM policy (kubernetes-sigs/aws-load-balancer-controller v3.5.0,
    docs/install/iam_policy.json), narrowed wherever IAM has a condition for it:

    - where upstream asks only that the cluster tag exist on a resource or a request, this policy
      asks that the tag name this cluster (`aws:ResourceTag` / `aws:RequestTag` on
      `elbv2.k8s.aws/cluster`), so one cluster's controller cannot change another's load
      balancers, target groups or security groups; targets register only in this cluster's
      target groups, listeners are created only on this cluster's load balancers;
    - where upstream allows security-group ingress changes and security-group creation on `*`
      with no condition (the rules that let an NLB reach the nodes go on the nodes' security
      group, which the controller did not create and did not tag), this policy allows them only
      in this cluster's VPC (`ec2:Vpc`), and a new security group only with this cluster's tag;
    - every ARN is in this partition, region and account.

    What stays account-wide (in this region), and why: describing anything (the Describe and
    Get calls have no resource-level permissions); deleting and changing listeners and rules,
    rule priorities and listener certificates (upstream conditions none of them on the cluster
    tag: listeners and rules are not reliably tagged with it, and IAM has no condition that ties
    a listener or rule to its load balancer's tags); and the ALB Ingress integrations
    (certificates, WAF, Shield, Cognito), kept as documented for an Ingress added later.
    """
    ours = {f"aws:ResourceTag/{LB_CLUSTER_TAG}": cluster_name}
    creating_ours = {f"aws:RequestTag/{LB_CLUSTER_TAG}": cluster_name}
    # A tag change on an existing resource that leaves the cluster tag alone.
    keeps_tag = {"Null": {f"aws:RequestTag/{LB_CLUSTER_TAG}": "true"}, "StringEquals": ours}
    arn = f"arn:{partition}:elasticloadbalancing:{region}:{account}"
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    security_groups = f"{ec2}:security-group/*"
    in_this_vpc = {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}}
    load_balancers = [f"{arn}:loadbalancer/net/*/*", f"{arn}:loadbalancer/app/*/*"]
    balancers = [f"{arn}:targetgroup/*/*", *load_balancers]
    listeners = [f"{arn}:listener/net/*/*/*", f"{arn}:listener/app/*/*/*",
                 f"{arn}:listener-rule/net/*/*/*", f"{arn}:listener-rule/app/*/*/*"]

    def allow(actions: list[str], resource: str | list[str] = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
        statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
        if condition:
            statement["Condition"] = condition
        return statement

    return json.dumps({"Version": "2012-10-17", "Statement": [
        allow(["iam:CreateServiceLinkedRole"],
              condition={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}),
        allow(LB_CONTROLLER_DESCRIBE),
        allow(LB_CONTROLLER_INTEGRATIONS),
        # The node security group (not the controller's) gets the rules that let the NLB reach
        # pods: it carries no cluster tag the controller set, so the VPC is the bound.
        allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"], security_groups, in_this_vpc),
        # CreateSecurityGroup is authorized on the new group (tagged as this cluster's as it is
        # created) and on the VPC it goes into (this cluster's only).
        allow(["ec2:CreateSecurityGroup"], security_groups, {"StringEquals": creating_ours}),
        allow(["ec2:CreateSecurityGroup"], f"{ec2}:vpc/{vpc_id}"),
        allow(["ec2:CreateTags"], security_groups,
              {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **creating_ours}}),
        allow(["ec2:CreateTags", "ec2:DeleteTags"], security_groups, keeps_tag),
        allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
              security_groups, {"StringEquals": ours}),
        allow(["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
              condition={"StringEquals": creating_ours}),
        # CreateListener is authorized on the load balancer, which carries the cluster tag.
        allow(["elasticloadbalancing:CreateListener"], load_balancers, {"StringEquals": ours}),
        # Listeners and rules are not reliably tagged with the cluster: this account's, in this region.
        allow(["elasticloadbalancing:DeleteListener", "elasticloadbalancing:CreateRule",
               "elasticloadbalancing:DeleteRule"], listeners),
        allow(["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], balancers, keeps_tag),
        allow(["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], listeners),
        allow(LB_CONTROLLER_MODIFY, [*balancers, *listeners], {"StringEquals": ours}),
        allow(["elasticloadbalancing:AddTags"], balancers,
              {"StringEquals": {"elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                                **creating_ours}}),
        allow(["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
              f"{arn}:targetgroup/*/*", {"StringEquals": ours}),
        # A web ACL is set on an (application) load balancer, which carries the cluster tag.
        allow(["elasticloadbalancing:SetWebAcl"], load_balancers, {"StringEquals": ours}),
        allow(["elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
               "elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule",
               "elasticloadbalancing:SetRulePriorities"], listeners),
    ]})


LB_CONTROLLER_DESCRIBE = [
    "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags",
    "ec2:GetCoipPoolUsage", "ec2:DescribeCoipPools", "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools",
    "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
]
# Certificates, WAF, Shield and Cognito: what an ALB Ingress may name. Kept, as documented, so an
# Ingress added later works; the NLBs of the tiers use none of them.
LB_CONTROLLER_INTEGRATIONS = [
    "cognito-idp:DescribeUserPoolClient", "acm:ListCertificates", "acm:DescribeCertificate",
    "iam:ListServerCertificates", "iam:GetServerCertificate",
    "waf-regional:GetWebACL", "waf-regional:GetWebACLForResource", "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL", "wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL", "shield:GetSubscriptionState", "shield:DescribeProtection",
    "shield:CreateProtection", "shield:DeleteProtection",
]
LB_CONTROLLER_MODIFY = [
    "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
]


def _system_pool_scheduling() -> dict[str, Any]:
    return {"nodeSelector": {POOL_LABEL_KEY: SYSTEM_POOL}}


def _restricted(uid: int) -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                     "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    }


def install(addons: ClusterAddons, cluster: ClusterComponent, spec: ClusterSpec) -> list[pulumi.Resource]:
    from components.k8s.addons import EXPENDABLE_PRIORITY_CUTOFF

    tags = cluster.tags
    partition = aws.get_partition_output().partition
    account = aws.get_caller_identity_output().account_id
    role = aws.iam.Role(
        addons.child("cluster-autoscaler"),
        # A name that fits IAM's 64 characters for any stack (an autoname adds 8 to the logical one).
        name=naming.physical_name(naming.cluster_name(spec.stack), "cluster-autoscaler", max_len=64),
        description=f"The cluster autoscaler of {spec.stack}: resizes this cluster's node groups only",
        assume_role_policy=pulumi.Output.all(cluster.cluster_name, account).apply(
            lambda a: autoscaler_trust_policy(a[0], a[1])),
        tags=tags,
        opts=addons.cloud_opts(),
    )
    policy = aws.iam.RolePolicy(
        addons.child("cluster-autoscaler"),
        role=role.name,
        policy=pulumi.Output.all(cluster.cluster_name, partition, account).apply(
            lambda a: autoscaler_policy(a[0], a[1], spec.region, a[2])),
        opts=addons.cloud_opts(),
    )
    association = aws.eks.PodIdentityAssociation(
        addons.child("cluster-autoscaler"),
        cluster_name=cluster.cluster_name,
        namespace=NAMESPACE,
        service_account=AUTOSCALER_ACCOUNT,
        role_arn=role.arn,
        tags=tags,
        opts=addons.cloud_opts(),
    )
    autoscaler = _release(
        addons, "cluster-autoscaler", AUTOSCALER_CHART, AUTOSCALER_CHART_VERSION, AUTOSCALER_REPO,
        values={
            "cloudProvider": "aws",
            "awsRegion": spec.region,
            "autoDiscovery": {"clusterName": cluster.cluster_name},
            "image": {"tag": AUTOSCALER_IMAGE_TAGS[spec.kubernetes_version]},
            "rbac": {"serviceAccount": {"create": True, "name": AUTOSCALER_ACCOUNT}},
            "extraArgs": {
                # Spreads a tier over the three zones' worth of similar groups instead of filling one.
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                # The tiers' /tmp is an emptyDir: it must not pin a node that is otherwise empty.
                "skip-nodes-with-local-storage": False,
                # A scale-down waits as long as the slowest tier drains (drainSeconds + shutdown).
                "max-graceful-termination-sec": max(DEFAULT_GRACEFUL_TERMINATION_SECONDS,
                                                    spec.max_termination_grace_seconds),
                # Stated, not defaulted: the capacity buffer's priority must stay above it.
                "expendable-pods-priority-cutoff": EXPENDABLE_PRIORITY_CUTOFF,
            },
            "priorityClassName": "system-cluster-critical",
            "resources": {"requests": {"cpu": "100m", "memory": "600Mi"}, "limits": {"memory": "600Mi"}},
            **_system_pool_scheduling(),
            **_restricted(65534),
        },
        # Started with its credentials in place, or its first calls fail until the pod restarts.
        depends_on=[policy, association],
    )
    metrics_server = _release(
        addons, "metrics-server", METRICS_SERVER_CHART, METRICS_SERVER_CHART_VERSION, METRICS_SERVER_REPO,
        values={
            # Two replicas in prod: without metrics every HPA stops scaling.
            "replicas": 2 if spec.is_prod else 1,
            "podDisruptionBudget": {"enabled": spec.is_prod, "maxUnavailable": 1},
            "podSecurityContext": _restricted(1000)["securityContext"],
            **_system_pool_scheduling(),
        },
    )
    lb_resources = _load_balancer_controller(addons, cluster, spec, partition, account)
    return [role, policy, association, autoscaler, metrics_server, *lb_resources]


def _load_balancer_controller(addons: ClusterAddons, cluster: ClusterComponent, spec: ClusterSpec,
                              partition: pulumi.Output[str], account: pulumi.Output[str]) -> list[pulumi.Resource]:
    """The controller that turns the public tiers' Services into NLBs; `addons.load_balancer_controller`
    is its release, which those Services wait for (its webhook mutates them on creation)."""
    from components.aws import EksCluster

    if not isinstance(cluster, EksCluster):
        raise TypeError(f"the AWS Load Balancer Controller needs an EksCluster, not {type(cluster).__name__}")
    role = aws.iam.Role(
        addons.child("lb-controller"),
        name=naming.physical_name(naming.cluster_name(spec.stack), "lb-controller", max_len=64),
        description=f"The AWS Load Balancer Controller of {spec.stack}: this cluster's load balancers only",
        assume_role_policy=pulumi.Output.all(cluster.cluster_name, account).apply(
            lambda a: pod_identity_trust_policy(a[0], a[1], LB_CONTROLLER_ACCOUNT)),
        tags=cluster.tags,
        opts=addons.cloud_opts(),
    )
    policy = aws.iam.RolePolicy(
        addons.child("lb-controller"),
        role=role.name,
        policy=pulumi.Output.all(cluster.cluster_name, partition, account, cluster.vpc_id).apply(
            lambda a: load_balancer_controller_policy(a[0], a[1], spec.region, a[2], a[3])),
        opts=addons.cloud_opts(),
    )
    association = aws.eks.PodIdentityAssociation(
        addons.child("lb-controller"),
        cluster_name=cluster.cluster_name,
        namespace=NAMESPACE,
        service_account=LB_CONTROLLER_ACCOUNT,
        role_arn=role.arn,
        tags=cluster.tags,
        opts=addons.cloud_opts(),
    )
    restricted = _restricted(65534)
    release = _release(
        addons, "aws-load-balancer-controller", LB_CONTROLLER_CHART, LB_CONTROLLER_CHART_VERSION, LB_CONTROLLER_REPO,
        values={
            # Told, not discovered: with IMDSv2 at hop limit 1 the pod cannot read the node's metadata.
            "clusterName": cluster.cluster_name,
            "region": spec.region,
            "vpcId": cluster.vpc_id,
            "serviceAccount": {"create": True, "name": LB_CONTROLLER_ACCOUNT},
            # Two replicas and a budget: its webhook must answer before any LoadBalancer Service is created.
            "replicaCount": 2,
            "podDisruptionBudget": {"maxUnavailable": 1},
            # The controller adds the rules that let its NLBs (traffic and health checks) reach the
            # pods to the nodes' security group, and removes them with the NLB.
            "enableBackendSecurityGroup": True,
            "enableManageBackendSecurityGroupRules": True,
            # Every load balancer, target group and security group it creates carries the stack's tags.
            "defaultTags": dict(cluster.tags),
            "priorityClassName": "system-cluster-critical",
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}},
            "podSecurityContext": restricted["securityContext"],
            "securityContext": {**restricted["containerSecurityContext"], "seccompProfile": {"type": "RuntimeDefault"}},
            **_system_pool_scheduling(),
        },
        # Started with its credentials in place, or its first reconciles fail until the pod restarts.
        depends_on=[policy, association],
    )
    addons.load_balancer_controller = release
    return [role, policy, association, release]


def _release(addons: ClusterAddons, name: str, chart: str, version: str, repo: str, values: dict[str, Any],
             depends_on: list[pulumi.Resource] | None = None) -> k8s.helm.v3.Release:
    """A pinned chart in kube-system, installed all or nothing: a failed install or upgrade rolls back."""
    return k8s.helm.v3.Release(
        addons.child(name),
        name=name,
        namespace=NAMESPACE,
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        timeout=HELM_TIMEOUT_SECONDS,
        opts=addons.opts(depends_on=depends_on or []),
    )
