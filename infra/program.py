"""The Pulumi program: read config, build the spec, pick the cloud, export outputs."""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components import k8s, naming, registry
from components.spec import ClusterSpec
from infra.config import load_spec
from infra.errors import ConfigError


def raw_config() -> dict[str, Any]:
    """Every configuration value the engine handed this program, by full key."""
    merged = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def spec_from_runtime() -> ClusterSpec:
    try:
        return load_spec(raw_config(), project=pulumi.get_project(), stack=pulumi.get_stack(), env=os.environ)
    except ConfigError as exc:
        # RunError ends the program with this one message and no stack trace.
        raise pulumi.RunError(str(exc)) from exc


def main() -> None:
    spec = spec_from_runtime()
    cluster_cls = registry.cluster_class(spec.cloud)
    name = naming.cluster_name(spec.stack)
    cluster = cluster_cls(name, spec)
    # After the cluster: its provider, add-ons and service tiers (nothing on GKE/AKS without services).
    workloads = k8s.deploy(name, cluster, spec)
    pulumi.export("cloud", spec.cloud)
    pulumi.export("environment", spec.environment)
    pulumi.export("region", spec.region)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("endpoint", cluster.endpoint)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("oidcIssuer", cluster.oidc_issuer)
    pulumi.export("nodePools", cluster.node_pools)
    if workloads and workloads.tiers:
        pulumi.export("services", workloads.endpoints())
