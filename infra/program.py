"""The Pulumi program: read config, build the spec, pick the cloud, export outputs."""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components import k8s, naming, registry
from components.spec import KUBERNETES, ClusterSpec, ServiceSpec
from infra.config.errors import ConfigError
from infra.config.loader import load_spec


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


def public_tier(spec: ClusterSpec) -> ServiceSpec | None:
    """The tier clients reach from outside: the public tier named `gateway`, else the first public
    tier in the stack file; None without a public tier (then there is no `gateway` output)."""
    public = [s for s in spec.services if s.public]
    return next((s for s in public if s.name == "gateway"), public[0] if public else None)


def peer_reference(spec: ClusterSpec) -> pulumi.StackReference | None:
    """The DR peer's outputs: `<org>/<project>/<peer>`, the org being the one this stack runs in."""
    if spec.dr is None:
        return None
    org = pulumi.get_organization()
    return pulumi.StackReference(f"{org}/{spec.project}/{spec.dr.peer}")


def deploy_dr(name: str, cluster: Any, spec: ClusterSpec, workloads: Any,
              peer: pulumi.StackReference) -> dict[str, Any]:
    """The pair's object store, replication and trust (`components.dr`): the outputs to export."""
    from components import dr

    return dr.deploy(name, cluster, spec, workloads, peer)


def gateway_endpoint(stack: str, reference: pulumi.StackReference) -> Any:
    """A pair stack's `gateway` output as an endpoint; a stack not yet deployed (no output) fails
    the deployment with the order to follow, rather than pointing DNS at nothing."""
    from components.dns import Endpoint

    def need(gateway: Any) -> dict[str, Any]:
        if not isinstance(gateway, dict) or not gateway.get("address"):
            raise pulumi.RunError(f"stack {stack} has no gateway address yet: deploy it before the traffic stack "
                                  "(docs/dr.md, First deployment)")
        return gateway

    gateway = reference.get_output("gateway").apply(need)
    return Endpoint(stack=stack, address=gateway.apply(lambda g: str(g["address"])),
                    port=gateway.apply(lambda g: int(g["port"])), health_path=gateway.apply(lambda g: str(g["healthPath"])))


def traffic_main(config: dict[str, Any]) -> None:
    """A traffic stack: no cluster; the pair's gateways behind one name that fails over on health."""
    from components.dns import switch_class
    from infra.traffic.config import load_traffic

    try:
        spec = load_traffic(config, project=pulumi.get_project(), stack=pulumi.get_stack())
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from exc
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    org = pulumi.get_organization()
    endpoints = [gateway_endpoint(stack, pulumi.StackReference(f"{org}/{spec.project}/{stack}")) for stack in spec.stacks]
    switch = switch_class(spec.provider)(naming.dns_label(f"im-{spec.stack}", 40), spec, endpoints)
    pulumi.export("traffic", {"name": spec.name, "active": spec.active, "stacks": list(spec.stacks),
                              "provider": spec.provider, "zone": spec.zone, "ttl": spec.ttl,
                              "switchSeconds": spec.switch_seconds})
    for key, value in switch.outputs.items():
        pulumi.export(key, value)


def main() -> None:
    config = raw_config()
    from infra.traffic.config import is_traffic

    if is_traffic(config):
        traffic_main(config)
        return
    spec = spec_from_runtime()
    from infra.dr.pair import pair_warnings

    for warning in pair_warnings(spec):
        pulumi.log.warn(warning)
    cluster_cls = registry.cluster_class(spec.cloud)
    name = naming.cluster_name(spec.stack)
    cluster = cluster_cls(name, spec)
    # One reference to the DR peer, read by the DR pieces and cert-manager's trust (components.trust).
    peer = peer_reference(spec)
    cluster.peer = peer
    # After the cluster: its provider, add-ons and service tiers (nothing on GKE/AKS without services).
    workloads = k8s.deploy(name, cluster, spec)
    pulumi.export("cloud", spec.cloud)
    pulumi.export("environment", spec.environment)
    if spec.cloud == KUBERNETES:
        # An existing cluster: its region, endpoint, credentials and issuer are not the program's;
        # what it was told to reach is.
        if spec.kubeconfig:
            pulumi.export("kubeconfigPath", spec.kubeconfig)
        if spec.kube_context:
            pulumi.export("context", spec.kube_context)
    else:
        pulumi.export("region", spec.region)
        pulumi.export("clusterName", cluster.cluster_name)
        pulumi.export("endpoint", cluster.endpoint)
        pulumi.export("kubeconfig", cluster.kubeconfig)
        pulumi.export("oidcIssuer", cluster.oidc_issuer)
    pulumi.export("nodePools", cluster.node_pools)
    if workloads and workloads.tiers:
        pulumi.export("services", workloads.endpoints())
    gateway = public_tier(spec)
    if gateway is not None and workloads is not None:
        tier = next(t for t in workloads.tiers if t.service.name == gateway.name)
        # Read by the traffic stack (DNS records, health checks) and the failover command.
        pulumi.export("gateway", {"service": gateway.name, "address": tier.public_host,
                                  "port": gateway.public_port, "healthPath": gateway.health_path})
    if spec.dr is not None:
        pulumi.export("dr", {"role": spec.dr.role, "peer": spec.dr.peer})
        assert peer is not None
        for key, value in deploy_dr(name, cluster, spec, workloads, peer).items():
            pulumi.export(key, value)
    if cluster.aws_oidc_providers:
        from components.trust import PROVIDERS_OUTPUT

        # Which issuers this stack's account trusts through providers it owns: its peer references them.
        pulumi.export(PROVIDERS_OUTPUT, cluster.aws_oidc_providers)
