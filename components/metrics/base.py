"""What every metric store hands KEDA and the tiers, whatever the cloud (no Pulumi resource here).

The store is where the tiers' load lands and where KEDA reads it: the cloud's managed Prometheus
(AWS, GCP, Azure) or one the user runs (`im-platform:monitoring.prometheus.url`). Each cloud's
module (`components/metrics/<cloud>.py`) declares its store and returns a `MetricsStore`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pulumi

# KEDA's own namespace and the service account of its operator (the pod that queries Prometheus):
# the keyless identity of every cloud is bound to exactly this account.
KEDA_NAMESPACE = "keda"
KEDA_OPERATOR_ACCOUNT = "keda-operator"


@dataclass(frozen=True)
class ScrapeSource:
    """Who scrapes the tiers' pods: the tier's network policy admits exactly this on the metrics port.
    A namespace (and pod labels in it), or an address range (a scraper outside the pod network)."""

    namespace: str | None = None  # None with no labels and no cidr: any pod in the cluster
    pod_labels: tuple[tuple[str, str], ...] = ()
    cidr: str | None = None


@dataclass
class MetricsStore:
    """How KEDA reaches the store and who scrapes the pods."""

    server_address: pulumi.Input[str]
    scrape_source: ScrapeSource
    # KEDA's TriggerAuthentication pod identity provider ("aws", "gcp", "azure-workload"); None: the
    # store needs no identity (a Prometheus the user runs, reached inside the network).
    auth_provider: str | None = None
    # Extra prometheus trigger metadata (AWS: awsRegion, which SigV4 signs for).
    trigger_metadata: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # Helm values that bind KEDA's operator to its cloud identity (podIdentity.*).
    chart_values: dict[str, Any] = field(default_factory=dict)
    # What must exist before KEDA starts: its identity and grants (or its first queries fail).
    identity: list[pulumi.Resource] = field(default_factory=list)
    # The store's own resources (workspace, scraper, rules), for the plan and the tests.
    resources: list[pulumi.Resource] = field(default_factory=list)
    # Pod annotations the scrape relies on (a Prometheus the user runs reads prometheus.io/*).
    pod_annotations: bool = False
    # A scrape object per tier (GCP PodMonitoring, Azure PodMonitor): (apiVersion, kind) or None.
    pod_monitor: tuple[str, str] | None = None


def in_cluster_namespace(url: str) -> str | None:
    """The namespace of a Prometheus reached by its Service's cluster name
    (`name.namespace`, `name.namespace.svc`, `name.namespace.svc.cluster.local`), else None."""
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1]
    return None


def user_store(url: str) -> MetricsStore:
    """A Prometheus the user runs: it scrapes pods by the prometheus.io annotations (the convention of
    the Prometheus community chart's kubernetes-pods job); KEDA queries it without a credential."""
    namespace = in_cluster_namespace(url)
    return MetricsStore(server_address=url, scrape_source=ScrapeSource(namespace=namespace), pod_annotations=True)
