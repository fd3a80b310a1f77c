"""GCP: GKE managed collection (Google Cloud Managed Service for Prometheus) scrapes each scaled
tier through a `PodMonitoring`; KEDA's operator reads it through Workload Identity as a Google
service account holding `roles/monitoring.viewer` (TriggerAuthentication provider `gcp`).

The binding that names `<project>.svc.id.goog` waits for the cluster that creates that pool
("Identity Pool does not exist" otherwise), and every IAM object for the IAM API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi_gcp as gcp

from components import naming
from components.metrics.base import KEDA_NAMESPACE, KEDA_OPERATOR_ACCOUNT, MetricsStore, ScrapeSource
from components.spec import ClusterSpec

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.k8s.base import K8sComponent

# Managed collection's collectors: a DaemonSet in gmp-system.
COLLECTOR = ScrapeSource(namespace="gmp-system", pod_labels=(("app.kubernetes.io/name", "collector"),))
QUERY_ROLE = "roles/monitoring.viewer"


def server_address(project: str) -> str:
    """The Prometheus HTTP API of Managed Service for Prometheus for the project."""
    return f"https://monitoring.googleapis.com/v1/projects/{project}/location/global/prometheus"


def deploy(owner: K8sComponent, cluster: ClusterComponent, spec: ClusterSpec) -> MetricsStore:
    from components.gcp import GkeCluster

    if not isinstance(cluster, GkeCluster):
        raise TypeError(f"managed collection needs a GkeCluster, not {type(cluster).__name__}")
    project = spec.gcp_project
    assert project is not None
    iam_api = [api for name, api in cluster.services.items() if name.startswith("iam.")]
    account = gcp.serviceaccount.Account(
        owner.child("keda"),
        project=project,
        account_id=naming.physical_name(naming.cluster_name(spec.stack), "keda", max_len=30),
        display_name=f"KEDA of {spec.stack}: reads Managed Service for Prometheus",
        opts=owner.cloud_opts(depends_on=iam_api),
    )
    viewer = gcp.projects.IAMMember(
        owner.child("keda-monitoring-viewer"),
        project=project,
        role=QUERY_ROLE,
        member=account.email.apply(lambda e: f"serviceAccount:{e}"),
        opts=owner.cloud_opts(),
    )
    workload = gcp.serviceaccount.IAMMember(
        owner.child("keda-workload-identity"),
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=f"serviceAccount:{project}.svc.id.goog[{KEDA_NAMESPACE}/{KEDA_OPERATOR_ACCOUNT}]",
        # The pool exists once the cluster with Workload Identity does.
        opts=owner.cloud_opts(depends_on=[cluster.gke]),
    )
    return MetricsStore(
        server_address=server_address(project),
        scrape_source=COLLECTOR,
        auth_provider="gcp",
        chart_values={"podIdentity": {"gcp": {"enabled": True, "gcpIAMServiceAccount": account.email}}},
        identity=[account, viewer, workload],
        resources=[account],
        pod_monitor=("monitoring.googleapis.com/v1", "PodMonitoring"),
    )
