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
from components.spec import ClusterSpec

if TYPE_CHECKING:
    import pulumi_kubernetes as k8s

    from components.base import ClusterComponent
    from components.k8s.addons import ClusterAddons
    from components.k8s.services import ServiceTier

# What a cloud does not run by itself and needs on every cluster, services or not. GKE and AKS
# have the cluster autoscaler and metrics-server built in.
CLOUD_ADDON_MODULES = {"aws": "components.k8s.addons_aws"}


@dataclass
class Workloads:
    provider: k8s.Provider
    addons: ClusterAddons
    tiers: list[ServiceTier]

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
    namespaces = {
        ns: Namespace(naming.child_name(name, "ns", ns), ns, spec.kubernetes_version, provider, opts=cluster.opts())
        for ns in dict.fromkeys(s.namespace for s in spec.services)
    }
    tiers = []
    for service in spec.services:
        namespace = namespaces[service.namespace]
        ready: list[pulumi.Resource] = [*namespace.ready, *([addons.tier_priority] if addons.tier_priority else [])]
        tiers.append(ServiceTier(naming.child_name(name, "svc", service.name), service, spec, provider,
                                 namespace.name, TIER_PRIORITY_CLASS, ready, opts=cluster.opts()))
    return Workloads(provider, addons, tiers)
