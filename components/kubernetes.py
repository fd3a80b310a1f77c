"""An existing Kubernetes cluster (`im-platform:cloud: kubernetes`): an on-premises cluster, one
another team runs, or a local one for development.

The program creates nothing of the cluster itself and imports no cloud SDK: this component only
stands where EksCluster, GkeCluster and AksCluster stand, with the same constructor, so that the
tiers and add-ons of `components.k8s` go onto the cluster the kubeconfig reaches
(`components.k8s.base.cluster_provider`). It declares no child of its own.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.base import ClusterComponent, ClusterOutputs
from components.spec import ClusterSpec


class ExistingCluster(ClusterComponent):
    """`im-platform:kubernetes:ExistingCluster`: the cluster a kubeconfig (and context) reaches."""

    TYPE = "im-platform:kubernetes:ExistingCluster"

    def _build(self, name: str, spec: ClusterSpec) -> ClusterOutputs:
        # Nothing of the cluster is the program's: its name, endpoint, credentials and issuer stay
        # in the kubeconfig, which the program never reads (the Kubernetes provider does), so none of
        # them is an output. The name is the component's, the context's where one is set.
        empty = pulumi.Output.from_input("")
        return ClusterOutputs(cluster_name=pulumi.Output.from_input(spec.kube_context or name), endpoint=empty,
                              kubeconfig=empty, oidc_issuer=empty, node_pool_resources=[])

    def public_outputs(self) -> dict[str, Any]:
        return {"clusterName": self.cluster_name, "nodePools": self.node_pools}
