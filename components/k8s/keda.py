"""KEDA: every tier with `scaling` scales on its own load, read from Prometheus (scaling.md).

All KEDA objects live here: the pinned Helm chart on the system pool with its own priority class,
disruption budgets and network policies (unless `im-platform:monitoring.keda` is `existing`), and
per scaled tier a `TriggerAuthentication` by the cloud's pod identity and a `ScaledObject` in place
of the tier's own HPA. The rules KEDA's users trip over, each handled where it is declared:

- an empty query result read as 0 scales a tier to its minimum at the peak (kedacore/keda#3065):
  `ignoreNullValues: "false"` makes it an error, and errors go to the fallback;
- the fallback never lowers the count (`currentReplicasIfHigher`, with the tier's minimum);
- the HPA KEDA makes keeps the tier's behaviour (the slow, draining scale-down of connection tiers);
- a cron window is a floor beside the load, never a cap (the HPA takes the highest recommendation);
- keyless auth: the operator's own cloud identity, never a Secret.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.base import (
    NAMESPACE_NAME_LABEL,
    PORT_NAME,
    K8sComponent,
    Namespace,
    labels,
    scaling_behavior,
    selector,
)
from components.metrics.base import KEDA_NAMESPACE, KEDA_OPERATOR_ACCOUNT, MetricsStore, ScrapeSource
from components.spec import KEDA_POLLING_SECONDS, ClusterSpec, ServiceSpec

if TYPE_CHECKING:
    from components.base import ClusterComponent

# The chart and the engine test's operator are one release (the CRDs the program's ScaledObjects are
# checked against in tests come from the Go module of the same version).
KEDA_CHART = "keda"
KEDA_CHART_VERSION = "2.21.0"  # app v2.21.0
KEDA_REPO = "https://kedacore.github.io/charts"
KEDA_PRIORITY_CLASS = "im-platform-keda"
# Above every tier (1000): a tier that cannot scale is worse than one pod fewer; below the
# system-* classes the cluster's own add-ons use.
KEDA_PRIORITY = 100000
SCALED_OBJECT_API = "keda.sh/v1alpha1"
# The app labels the chart's pods carry (its templates' selectors).
KEDA_PODS = {"operator": "keda-operator", "metrics-apiserver": "keda-operator-metrics-apiserver",
             "webhooks": "keda-admission-webhooks"}
METRICS_PORT_NAME = "metrics"
OPERATOR_GRPC_PORT = 9666  # the metrics API server asks the operator for metrics here
METRICS_API_PORT = 6443
WEBHOOK_PORT = 9443
# KEDA asks every trigger this often; the HPA asks KEDA every 15 s too.
POLLING_SECONDS = KEDA_POLLING_SECONDS  # the cost model prices the store's queries from it
# Failed reads in a row before the fallback holds the count (a minute at the polling interval).
FALLBACK_FAILURES = 4
HELM_TIMEOUT_SECONDS = 900
# Where the clouds hand pods their identity: the EKS Pod Identity agent, GKE's metadata server.
IDENTITY_ENDPOINTS = (("169.254.170.23/32", 80), ("169.254.169.254/32", 80), ("169.254.169.254/32", 988))


def number(value: Decimal | int) -> str:
    """A KEDA metadata number: a string, no exponent, no trailing zeros."""
    text = format(Decimal(value).normalize(), "f")
    return text


def triggers(service: ServiceSpec, store: MetricsStore, scrape_interval: int, auth_name: str | None) -> list[dict[str, Any]]:
    scaling = service.scaling
    assert scaling is not None
    load: dict[str, Any] = {
        "type": "prometheus",
        "name": "load",
        # The per-pod target: the HPA divides the tier's total by it (AverageValue).
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": store.server_address,
            "query": service.load_query(scrape_interval),
            "threshold": number(scaling.target_per_pod),
            # An empty result is an error (so the fallback holds), never 0 (kedacore/keda#3065).
            "ignoreNullValues": "false",
            **store.trigger_metadata,
        },
    }
    if auth_name is not None:
        load["authenticationRef"] = {"name": auth_name}
    out = [load]
    if scaling.cpu:
        out.append({"type": "cpu", "name": "cpu", "metricType": "Utilization",
                    "metadata": {"value": str(service.target_cpu_percent)}})
    for i, window in enumerate(scaling.schedule):
        out.append({"type": "cron", "name": f"schedule-{i}", "metadata": {
            "timezone": window.timezone, "start": window.start, "end": window.end,
            "desiredReplicas": str(window.replicas)}})
    return out


def scaled_object_spec(service: ServiceSpec, store: MetricsStore, scrape_interval: int,
                       auth_name: str | None) -> dict[str, Any]:
    """The ScaledObject's spec (keda.sh/v1alpha1), held to KEDA's CRD schema by the tests."""
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
        "pollingInterval": POLLING_SECONDS,
        # Never to zero: a tier holds connections or serves calls at every hour.
        "minReplicaCount": service.min_replicas,
        "maxReplicaCount": service.max_replicas,
        "fallback": {
            "failureThreshold": FALLBACK_FAILURES,
            # max(current, minimum): a metric outage holds the peak's count, never lowers it.
            "replicas": service.min_replicas,
            "behavior": "currentReplicasIfHigher",
        },
        "advanced": {
            # Deleting the ScaledObject leaves the count where it is (no drop to the Deployment's 1).
            "restoreToOriginalReplicaCount": False,
            "horizontalPodAutoscalerConfig": {
                # The tier's own HPA's name: KEDA takes it over (see the annotation) instead of its
                # webhook refusing a second autoscaler of the Deployment during the switch.
                "name": service.name,
                "behavior": scaling_behavior(service),
            },
        },
        "triggers": triggers(service, store, scrape_interval, auth_name),
    }


def metrics_port_name(service: ServiceSpec) -> str:
    """The container port the scrape names: the tier's own, or a `metrics` port beside it."""
    return PORT_NAME if service.metrics_port in (None, service.port) else METRICS_PORT_NAME


def scaled_object_annotations() -> dict[str, str]:
    # The tier's CPU HPA becomes KEDA's (same name) when a stack turns scaling on.
    return {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}


def peer(source: ScrapeSource) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    if source.cidr is not None:
        return k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=source.cidr))
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={NAMESPACE_NAME_LABEL: source.namespace} if source.namespace else None),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(source.pod_labels)) if source.pod_labels else None,
    )


class Keda(K8sComponent):
    """`im-platform:k8s:Keda`: the metric store, KEDA itself, and what each scaled tier gets."""

    TYPE = "im-platform:k8s:Keda"

    def __init__(self, name: str, cluster: ClusterComponent, spec: ClusterSpec, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, provider, opts)
        from components import metrics

        self.spec = spec
        self.store = metrics.deploy(self, cluster, spec)
        # What a ScaledObject waits for: the CRDs and the operator (nothing when KEDA already runs).
        self.ready: list[pulumi.Resource] = []
        if spec.monitoring.install_keda:
            self.ready = [self._install(spec)]
        self.register_outputs({})

    # -- KEDA itself ---------------------------------------------------------------------------

    def _install(self, spec: ClusterSpec) -> pulumi.Resource:
        namespace = Namespace(self.child("ns"), KEDA_NAMESPACE, spec.kubernetes_version, self.provider,
                              opts=pulumi.ResourceOptions(parent=self))
        priority = k8s.scheduling.v1.PriorityClass(
            self.child("priority"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=KEDA_PRIORITY_CLASS, labels=labels(KEDA_PRIORITY_CLASS, "priority")),
            value=KEDA_PRIORITY,
            global_default=False,
            description="KEDA: the tiers' autoscaling on load keeps working when a pool is full.",
            opts=self.opts(),
        )
        self._policies(spec, namespace)
        replicas = 2 if spec.is_prod else 1
        pod_security = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"}}
        scheduling: dict[str, Any] = {}
        system = next((p for p in spec.node_pools if p.is_system), None)
        if system is not None:
            scheduling = {"nodeSelector": system.node_selector}
        values: dict[str, Any] = {
            "crds": {"install": True},
            "priorityClassName": KEDA_PRIORITY_CLASS,
            "operator": {"replicaCount": replicas},
            "metricsServer": {"replicaCount": replicas},
            "webhooks": {"replicaCount": replicas},
            "serviceAccount": {"operator": {"create": True, "name": KEDA_OPERATOR_ACCOUNT}},
            "podSecurityContext": {k: pod_security for k in ("operator", "metricServer", "webhooks")},
            "resources": {
                "operator": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "metricServer": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "webhooks": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            },
            **scheduling,
        }
        for key, extra in self.store.chart_values.items():
            values[key] = {**values.get(key, {}), **extra} if isinstance(extra, dict) else extra
        release = k8s.helm.v3.Release(
            self.child("chart"),
            name="keda",
            namespace=namespace.name,
            chart=KEDA_CHART,
            version=KEDA_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KEDA_REPO),
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            timeout=HELM_TIMEOUT_SECONDS,
            # Its identity and grants first: the operator's first queries would otherwise fail.
            opts=self.opts(depends_on=[*namespace.ready, priority, *self.store.identity]),
        )
        for part, app in KEDA_PODS.items():
            k8s.policy.v1.PodDisruptionBudget(
                self.child("disruption-budget", part),
                metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=namespace.name, labels=labels(app, "keda")),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": app}),
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=self.opts(depends_on=namespace.ready),
            )
        return release

    def _policies(self, spec: ClusterSpec, namespace: Namespace) -> None:
        """On top of the namespace's default deny: the API server reaches the metrics API and the
        webhooks; the operator reaches the API server, the store and its identity endpoint."""
        anywhere_tls = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (443, 6443)]
        store_ports = [*anywhere_tls]
        url = spec.monitoring.prometheus_url
        if url is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            store_ports.append(k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port))
        identity = [k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)]) for cidr, port in IDENTITY_ENDPOINTS]
        operator_peer = k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": KEDA_PODS["operator"]}))
        metrics_peer = k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": KEDA_PODS["metrics-apiserver"]}))
        rules: dict[str, tuple[list[Any], list[Any]]] = {
            "operator": (
                [k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[metrics_peer], ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=OPERATOR_GRPC_PORT)])],
                [k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=store_ports), *identity]),
            # The API server is not a pod: it reaches the aggregated metrics API and the webhooks
            # from the control plane's addresses, which no selector names.
            "metrics-apiserver": (
                [k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=METRICS_API_PORT)])],
                [k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=anywhere_tls),
                 k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                     to=[operator_peer], ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=OPERATOR_GRPC_PORT)])]),
            "webhooks": (
                [k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=WEBHOOK_PORT)])],
                [k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=anywhere_tls)]),
        }
        for part, (ingress, egress) in rules.items():
            app = KEDA_PODS[part]
            k8s.networking.v1.NetworkPolicy(
                self.child("network-policy", part),
                metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=namespace.name, labels=labels(app, "network-policy")),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": app}),
                    policy_types=["Ingress", "Egress"], ingress=ingress, egress=egress),
                opts=self.opts(depends_on=namespace.ready),
            )

    # -- per scaled tier -----------------------------------------------------------------------

    def scale_tier(self, tier: K8sComponent, service: ServiceSpec, namespace: pulumi.Input[str],
                   deployment: pulumi.Resource) -> pulumi.Resource:
        """The tier's TriggerAuthentication (where the store needs an identity), its scrape object
        (where the store has one) and its ScaledObject, as children of the tier."""
        meta_labels = labels(service.name, "tier")
        auth_name = None
        depends: list[pulumi.Resource] = [*self.ready, deployment]
        if self.store.auth_provider is not None:
            auth_name = f"{service.name}-prometheus"
            auth = k8s.apiextensions.CustomResource(
                tier.child("trigger-auth"),
                api_version=SCALED_OBJECT_API,
                kind="TriggerAuthentication",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=auth_name, namespace=namespace, labels=meta_labels),
                # The operator's own cloud identity: no Secret, nothing to rotate.
                spec={"podIdentity": {"provider": self.store.auth_provider}},
                opts=tier.opts(depends_on=list(self.ready)),
            )
            depends.append(auth)
        if self.store.pod_monitor is not None:
            api_version, kind = self.store.pod_monitor
            scaling = service.scaling
            assert scaling is not None
            k8s.apiextensions.CustomResource(
                tier.child("pod-monitor"),
                api_version=api_version,
                kind=kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=namespace, labels=meta_labels),
                spec={
                    "selector": {"matchLabels": selector(service.name)},
                    "podMetricsEndpoints" if kind == "PodMonitor" else "endpoints": [{
                        "port": metrics_port_name(service),
                        "path": scaling.metrics_path,
                        "interval": f"{self.spec.monitoring.scrape_interval_seconds}s",
                    }],
                },
                opts=tier.opts(),
            )
        return k8s.apiextensions.CustomResource(
            tier.child("scaled-object"),
            api_version=SCALED_OBJECT_API,
            kind="ScaledObject",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=namespace, labels=meta_labels,
                                                annotations=scaled_object_annotations()),
            spec=scaled_object_spec(service, self.store, self.spec.monitoring.scrape_interval_seconds, auth_name),
            opts=tier.opts(depends_on=depends),
        )
