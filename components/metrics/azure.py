"""Azure: an Azure Monitor workspace (managed Prometheus) with its data collection endpoint, rule and
the rule's association with the AKS cluster (whose azureMonitorProfile metrics are on); the
ama-metrics collectors scrape each scaled tier through a `PodMonitor`. KEDA's operator reads the
workspace as a user-assigned identity federated to its service account (Workload Identity), with
Monitoring Data Reader on that workspace only (TriggerAuthentication provider `azure-workload`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import authorization, managedidentity, monitor

from components import naming
from components.metrics.base import KEDA_NAMESPACE, KEDA_OPERATOR_ACCOUNT, MetricsStore, ScrapeSource
from components.spec import ClusterSpec

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.k8s.base import K8sComponent

# Built-in role "Monitoring Data Reader": read data in an Azure Monitor workspace.
MONITORING_DATA_READER = "b0d8363b-8ddd-447d-831f-62ca05bff136"
# The ama-metrics replica set scrapes PodMonitors (custom jobs) in kube-system.
COLLECTOR = ScrapeSource(namespace="kube-system", pod_labels=(("rsName", "ama-metrics"),))


def deploy(owner: K8sComponent, cluster: ClusterComponent, spec: ClusterSpec) -> MetricsStore:
    from components.azure import AksCluster, role_assignment_name

    if not isinstance(cluster, AksCluster):
        raise TypeError(f"managed Prometheus needs an AksCluster, not {type(cluster).__name__}")
    rg = cluster.resource_group_name
    base = naming.cluster_name(spec.stack)
    workspace = monitor.AzureMonitorWorkspace(
        owner.child("prometheus"),
        resource_group_name=rg,
        azure_monitor_workspace_name=naming.physical_name(base, "prometheus", max_len=44),
        location=spec.region,
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    endpoint = monitor.DataCollectionEndpoint(
        owner.child("prometheus"),
        resource_group_name=rg,
        data_collection_endpoint_name=naming.physical_name(base, "prometheus", max_len=44),
        location=spec.region,
        kind="Linux",
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    rule = monitor.DataCollectionRule(
        owner.child("prometheus"),
        resource_group_name=rg,
        data_collection_rule_name=naming.physical_name(base, "prometheus", max_len=64),
        location=spec.region,
        kind="Linux",
        data_collection_endpoint_id=endpoint.id,
        data_sources=monitor.DataCollectionRuleDataSourcesArgs(prometheus_forwarder=[
            monitor.PrometheusForwarderDataSourceArgs(name="PrometheusDataSource", streams=["Microsoft-PrometheusMetrics"])]),
        destinations=monitor.DataCollectionRuleDestinationsArgs(monitoring_accounts=[
            monitor.MonitoringAccountDestinationArgs(name="MonitoringAccount", account_resource_id=workspace.id)]),
        data_flows=[monitor.DataFlowArgs(streams=["Microsoft-PrometheusMetrics"], destinations=["MonitoringAccount"])],
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    association = monitor.DataCollectionRuleAssociation(
        owner.child("prometheus"),
        resource_uri=cluster.aks.id,
        association_name=naming.physical_name(base, "prometheus", max_len=64),
        data_collection_rule_id=rule.id,
        opts=owner.cloud_opts(),
    )
    identity = managedidentity.UserAssignedIdentity(
        owner.child("keda"),
        resource_group_name=rg,
        resource_name_=naming.physical_name(base, "keda", max_len=128),
        location=spec.region,
        tags=cluster.tags,
        opts=owner.cloud_opts(),
    )
    federation = managedidentity.FederatedIdentityCredential(
        owner.child("keda"),
        resource_group_name=rg,
        resource_name_=identity.name,
        federated_identity_credential_resource_name="keda-operator",
        issuer=cluster.oidc_issuer,
        subject=f"system:serviceaccount:{KEDA_NAMESPACE}:{KEDA_OPERATOR_ACCOUNT}",
        audiences=["api://AzureADTokenExchange"],
        opts=owner.cloud_opts(),
    )
    subscription = authorization.get_client_config_output().subscription_id
    role_id = subscription.apply(
        lambda s: f"/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{MONITORING_DATA_READER}")
    reader = authorization.RoleAssignment(
        owner.child("keda-monitoring-data-reader"),
        scope=workspace.id,
        principal_id=identity.principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_id,
        role_assignment_name=pulumi.Output.all(workspace.id, identity.principal_id).apply(
            lambda a: role_assignment_name(a[0], a[1], MONITORING_DATA_READER)),
        opts=owner.cloud_opts(),
    )
    tenant = authorization.get_client_config_output().tenant_id
    return MetricsStore(
        server_address=workspace.metrics.apply(lambda m: m.prometheus_query_endpoint if m else ""),
        scrape_source=COLLECTOR,
        auth_provider="azure-workload",
        chart_values={"podIdentity": {"azureWorkload": {"enabled": True, "clientId": identity.client_id, "tenantId": tenant}}},
        identity=[identity, federation, reader],
        resources=[workspace, endpoint, rule, association],
        pod_monitor=("azmonitoring.coreos.com/v1", "PodMonitor"),
    )
