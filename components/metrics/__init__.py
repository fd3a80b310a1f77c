"""The store the tiers' load is scraped into and KEDA reads, one module per cloud, side by side
(as components/dr/): AWS Managed Service for Prometheus with a managed scraper, GKE managed
collection, Azure Monitor managed Prometheus; or the Prometheus the user runs. Only the stack's
own cloud is imported."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.k8s.base import K8sComponent
    from components.metrics.base import MetricsStore
    from components.spec import ClusterSpec

_MODULES = {"aws": "components.metrics.aws", "gcp": "components.metrics.gcp", "azure": "components.metrics.azure"}


def deploy(owner: K8sComponent, cluster: ClusterComponent, spec: ClusterSpec) -> MetricsStore:
    """The stack's store: the URL the stack names, else its cloud's managed Prometheus."""
    from components.metrics.base import user_store

    if spec.monitoring.prometheus_url is not None:
        return user_store(spec.monitoring.prometheus_url)
    module = _MODULES.get(spec.cloud)
    if module is None:  # the configuration refuses it first (a kubernetes stack needs a url)
        raise ValueError(f"no managed Prometheus on {spec.cloud}: set im-platform:monitoring.prometheus.url")
    return importlib.import_module(module).deploy(owner, cluster, spec)  # type: ignore[no-any-return]
