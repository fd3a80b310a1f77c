"""Which clouds need add-ons of their own on every cluster, services or not, and where they live.

GKE and AKS have the cluster autoscaler and metrics-server built in; EKS does not. A module of its
own (no Pulumi import) so that both the package (to decide whether a stack needs workloads at all)
and the add-ons component read it without importing each other.
"""

CLOUD_ADDON_MODULES = {"aws": "components.k8s.addons_aws"}
