"""AWS: an Amazon Managed Service for Prometheus workspace, the managed scraper that fills it from the
EKS cluster (agentless: AWS runs it in the cluster's subnets), and KEDA's role through EKS Pod
Identity, allowed `aps:QueryMetrics` on that workspace only. KEDA signs its queries with SigV4
(TriggerAuthentication provider `aws`, `awsRegion` in the trigger).

The scraper reads the cluster as the Kubernetes user `aps-collector-user` (its access entry and the
read-only ClusterRole its documentation lists: Amazon Managed Service for Prometheus User Guide,
"Configuring your Amazon EKS cluster" for managed collectors)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components import naming
from components.k8s.base import labels
from components.metrics.base import KEDA_NAMESPACE, KEDA_OPERATOR_ACCOUNT, MetricsStore, ScrapeSource
from components.spec import ClusterSpec, ServiceSpec

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.k8s.base import K8sComponent

SCRAPER_USER = "aps-collector-user"
QUERY_ACTIONS = ["aps:QueryMetrics"]


def scrape_configuration(spec: ClusterSpec) -> str:
    """One job per scaled tier: its pods, on its metrics port and path, labelled namespace and pod
    (what the default query selects on)."""
    def job(service: ServiceSpec) -> dict[str, object]:
        assert service.scaling is not None
        return {
            "job_name": f"{service.namespace}/{service.name}",
            "metrics_path": service.scaling.metrics_path,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [service.namespace]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": service.name,
                 "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_container_port_number"],
                 "regex": str(service.scaling.metrics_port), "action": "keep"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        }
    interval = f"{spec.monitoring.scrape_interval_seconds}s"
    return yaml.safe_dump({"global": {"scrape_interval": interval},
                           "scrape_configs": [job(s) for s in spec.scaled_services]}, sort_keys=False)


def query_policy(workspace_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "QueryThisWorkspace", "Effect": "Allow", "Action": QUERY_ACTIONS, "Resource": workspace_arn}]})


def keda_trust_policy(cluster_name: str, account: str) -> str:
    """EKS Pod Identity hands the role to KEDA's operator in this cluster only."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:SourceAccount": account,
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": KEDA_NAMESPACE,
            "aws:RequestTag/kubernetes-service-account": KEDA_OPERATOR_ACCOUNT,
        }},
    }]})


def deploy(owner: K8sComponent, cluster: ClusterComponent, spec: ClusterSpec) -> MetricsStore:
    from components.aws import EksCluster

    if not isinstance(cluster, EksCluster):
        raise TypeError(f"the managed Prometheus scraper needs an EksCluster, not {type(cluster).__name__}")
    stack_name = naming.cluster_name(spec.stack)
    workspace = aws.amp.Workspace(
        owner.child("prometheus"),
        alias=stack_name,
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    # The scraper reads pods and endpoints as aps-collector-user: read-only, and nothing else.
    role = k8s.rbac.v1.ClusterRole(
        owner.child("scraper-reader"),
        metadata=k8s.meta.v1.ObjectMetaArgs(name="aps-collector-role", labels=labels("aps-collector-role", "metrics")),
        rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["nodes", "nodes/proxy", "nodes/metrics", "services",
                                                                     "endpoints", "pods", "ingresses", "configmaps"],
                                          verbs=["get", "list", "watch"]),
               k8s.rbac.v1.PolicyRuleArgs(api_groups=["extensions", "networking.k8s.io"],
                                          resources=["ingresses/status", "ingresses"], verbs=["get", "list", "watch"]),
               k8s.rbac.v1.PolicyRuleArgs(api_groups=["discovery.k8s.io"], resources=["endpointslices"],
                                          verbs=["get", "list", "watch"]),
               k8s.rbac.v1.PolicyRuleArgs(non_resource_urls=["/metrics"], verbs=["get"])],
        opts=owner.opts(),
    )
    binding = k8s.rbac.v1.ClusterRoleBinding(
        owner.child("scraper-reader"),
        metadata=k8s.meta.v1.ObjectMetaArgs(name="aps-collector-user-role-binding",
                                            labels=labels("aps-collector-user-role-binding", "metrics")),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="aps-collector-role"),
        subjects=[k8s.rbac.v1.SubjectArgs(kind="User", name=SCRAPER_USER, api_group="rbac.authorization.k8s.io")],
        opts=owner.opts(depends_on=[role]),
    )
    # The workspace before the scraper that writes into it (the input says so too).
    scraper = aws.amp.Scraper(
        owner.child("scraper"),
        alias=stack_name,
        source=aws.amp.ScraperSourceArgs(eks=aws.amp.ScraperSourceEksArgs(
            cluster_arn=cluster.cluster_arn, subnet_ids=cluster.private_subnet_ids)),
        destination=aws.amp.ScraperDestinationArgs(amp=aws.amp.ScraperDestinationAmpArgs(workspace_arn=workspace.arn)),
        scrape_configuration=scrape_configuration(spec),
        tags=cluster.tags,
        opts=owner.cloud_opts(depends_on=[workspace, binding]),
    )
    access = aws.eks.AccessEntry(
        owner.child("scraper"),
        cluster_name=cluster.cluster_name,
        principal_arn=scraper.role_arn,
        user_name=SCRAPER_USER,
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    account = aws.get_caller_identity_output().account_id
    keda_role = aws.iam.Role(
        owner.child("keda"),
        name=naming.physical_name(stack_name, "keda", max_len=64),
        description=f"KEDA of {spec.stack}: queries this stack's Prometheus workspace only",
        assume_role_policy=pulumi.Output.all(cluster.cluster_name, account).apply(lambda a: keda_trust_policy(a[0], a[1])),
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    policy = aws.iam.RolePolicy(
        owner.child("keda"),
        role=keda_role.name,
        policy=workspace.arn.apply(query_policy),
        opts=owner.cloud_opts(),
    )
    association = aws.eks.PodIdentityAssociation(
        owner.child("keda"),
        cluster_name=cluster.cluster_name,
        namespace=KEDA_NAMESPACE,
        service_account=KEDA_OPERATOR_ACCOUNT,
        role_arn=keda_role.arn,
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    return MetricsStore(
        server_address=workspace.prometheus_endpoint.apply(lambda e: e.rstrip("/")),
        # The scraper's network interfaces sit in the cluster's private subnets.
        scrape_source=ScrapeSource(cidr=spec.network_cidr),
        auth_provider="aws",
        trigger_metadata={"awsRegion": spec.region},
        identity=[keda_role, policy, association],
        resources=[workspace, scraper, access],
    )
