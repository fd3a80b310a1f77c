"""EKS add-ons the cluster does not run by itself: the cluster autoscaler (with its own IAM role
through EKS Pod Identity, allowed to resize only this cluster's node groups) and metrics-server
(the CPU metrics the tiers' HorizontalPodAutoscalers act on). Both are pinned Helm charts."""

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


def autoscaler_trust_policy(cluster_name: str, account: str) -> str:
    """EKS Pod Identity may hand the role only to the autoscaler's service account of this cluster
    in this account (Pod Identity tags every session with them)."""
    doc = json.loads(assume_role_policy("pods.eks.amazonaws.com"))
    doc["Statement"][0]["Condition"] = {"StringEquals": {
        "aws:SourceAccount": account,
        "aws:RequestTag/eks-cluster-name": cluster_name,
        "aws:RequestTag/kubernetes-namespace": NAMESPACE,
        "aws:RequestTag/kubernetes-service-account": AUTOSCALER_ACCOUNT,
    }}
    return json.dumps(doc)


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
    return [role, policy, association, autoscaler, metrics_server]


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
