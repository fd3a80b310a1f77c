"""Kubernetes on the cluster, the same on every cloud: one provider built from the cluster's
kubeconfig, the cluster add-ons, and one `ServiceTier` per entry of `im-platform:services`.

Everything here is a child of the cluster component. `pulumi_kubernetes` is imported only when a
stack has something to put on its cluster (its import costs about a second of every plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

from components import naming
from components.k8s.cloud_addons import CLOUD_ADDON_MODULES
from components.spec import ClusterSpec

if TYPE_CHECKING:
    import pulumi_kubernetes as k8s

    from components.base import ClusterComponent
    from components.k8s.addons import ClusterAddons
    from components.k8s.services import ServiceTier
    from components.k8s.tls import CertManager

# The namespace label that has the AWS Load Balancer Controller inject its pod readiness gate.
READINESS_GATE_LABELS = {"aws": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}


@dataclass
class Workloads:
    provider: k8s.Provider
    addons: ClusterAddons
    tiers: list[ServiceTier]
    cert_manager: CertManager | None = None

    def endpoints(self) -> dict[str, dict[str, pulumi.Output[str] | str]]:
        """Per service: namespace, in-cluster address and, for public tiers, the load balancer's."""
        out: dict[str, dict[str, pulumi.Output[str] | str]] = {}
        for tier in self.tiers:
            entry: dict[str, pulumi.Output[str] | str] = {"namespace": tier.service.namespace, "address": tier.address}
            if tier.public_address is not None:
                entry["publicAddress"] = tier.public_address
            out[tier.service.name] = entry
        return out


def needed(spec: ClusterSpec) -> bool:
    return bool(spec.services or spec.capacity_buffers or spec.cloud in CLOUD_ADDON_MODULES)


def deploy(name: str, cluster: ClusterComponent, spec: ClusterSpec) -> Workloads | None:
    """Provider, add-ons and tiers for the cluster component `name`; None when there is nothing."""
    if not needed(spec):
        return None
    from components.k8s.addons import TIER_PRIORITY_CLASS, ClusterAddons
    from components.k8s.base import Namespace, cluster_provider
    from components.k8s.services import ServiceTier

    provider = cluster_provider(name, cluster)
    addons = ClusterAddons(naming.child_name(name, "addons"), cluster, spec, provider, opts=cluster.opts())
    lb_controller = addons.load_balancer_controller
    # Where a controller registers pods as load balancer targets, a rollout waits until the new pods
    # pass the load balancer's health check, not only their own readiness probe (pod readiness gates).
    behind_lb = {s.namespace for s in spec.services if s.public} if lb_controller else set()
    namespaces = {
        ns: Namespace(naming.child_name(name, "ns", ns), ns, spec.kubernetes_version, provider, opts=cluster.opts(),
                      extra_labels=READINESS_GATE_LABELS.get(spec.cloud) if ns in behind_lb else None)
        for ns in dict.fromkeys(s.namespace for s in spec.services)
    }
    public_namespaces = dict.fromkeys(s.namespace for s in spec.services if s.public)
    cert_manager = None
    if spec.tls is not None and spec.tls.acme and public_namespaces:
        from components.k8s.tls import CertManager

        # Certificates first: their Secrets are what the public tiers' TLS serves.
        cert_manager = CertManager(naming.child_name(name, "tls"), cluster, spec, spec.tls, provider,
                                   {ns: (namespaces[ns].name, namespaces[ns].ready) for ns in public_namespaces},
                                   opts=cluster.opts())
    keda = None
    if spec.scaled_services:
        from components.k8s.keda import Keda

        keda = Keda(naming.child_name(name, "keda"), cluster, spec, provider, opts=cluster.opts())
    tiers = []
    for service in spec.services:
        namespace = namespaces[service.namespace]
        ready: list[pulumi.Resource] = [*namespace.ready, *([addons.tier_priority] if addons.tier_priority else [])]
        if service.public and lb_controller:
            # Its webhook gives the pods their readiness gate at creation, so it must be up first.
            ready.append(lb_controller)
        tiers.append(ServiceTier(naming.child_name(name, "svc", service.name), service, spec, provider,
                                 namespace.name, TIER_PRIORITY_CLASS, ready, opts=cluster.opts(),
                                 load_balancer_controller=addons.load_balancer_controller, tls=spec.tls,
                                 keda=keda))
    return Workloads(provider, addons, tiers, cert_manager)
