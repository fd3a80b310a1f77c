"""What every cloud's cluster component shares: type token, constructor, public outputs, and the
one helper that parents children to the component."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi

from components import naming
from components.spec import ClusterSpec, NodePoolSpec


@dataclass(frozen=True)
class StackKey:
    """The stack's customer-managed key, for other stateful pieces of the stack (the DR object
    store) to encrypt with: one key per stack, rotated and protected like the cluster's."""

    # AWS: the KMS key ARN; GCP: the Cloud KMS CryptoKey id; Azure: the Key Vault key's ARM id.
    id: pulumi.Output[str]
    # Azure only: a storage account names its key by vault URI and key name, and its identity
    # needs a role on the vault (the scope).
    vault_uri: pulumi.Output[str] | None = None
    name: pulumi.Output[str] | None = None
    vault_id: pulumi.Output[str] | None = None


@dataclass
class ClusterOutputs:
    """The typed public outputs every cluster component registers, whatever the cloud."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]  # always secret
    oidc_issuer: pulumi.Output[str]
    # The resources that bring up nodes (node groups / pools; AKS's inline system pool is the
    # cluster itself): Kubernetes objects wait for them instead of for a timeout.
    node_pool_resources: list[pulumi.Resource]
    # What must exist before the deployer may call the Kubernetes API (AKS: the deployer's role
    # assignment); EKS and GKE grant the creator access with the cluster itself.
    api_access: list[pulumi.Resource] = field(default_factory=list)
    key: StackKey | None = None


class ClusterComponent(pulumi.ComponentResource):
    """Base of EksCluster, GkeCluster and AksCluster: same constructor, same public outputs.

    Subclasses set TYPE and implement `_build`, which declares every child through `self.opts`.
    """

    TYPE: ClassVar[str]

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_pools: pulumi.Output[list[dict[str, Any]]]
    node_pool_resources: list[pulumi.Resource]
    api_access: list[pulumi.Resource]
    # The stack's KMS key (None only for a component that declares none).
    key: StackKey | None

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.spec = spec
        self.tags = naming.tags(spec.environment, spec.stack)
        # The DR peer's outputs (set by the program for a pair stack) and the IAM OIDC providers
        # this stack declares for cross-cloud trust (its `awsOidcProviders` output): components.trust.
        self.peer: pulumi.StackReference | None = None
        self.aws_oidc_providers: list[dict[str, Any]] = []
        out = self._build(name, spec)
        self.cluster_name = out.cluster_name
        self.endpoint = out.endpoint
        self.kubeconfig = pulumi.Output.secret(out.kubeconfig)
        self.oidc_issuer = out.oidc_issuer
        self.node_pool_resources = out.node_pool_resources
        self.api_access = out.api_access
        self.key = out.key
        self.node_pools = pulumi.Output.from_input(node_pool_summary(spec))
        self.register_outputs(self.public_outputs())

    def public_outputs(self) -> dict[str, Any]:
        """What the component registers: exactly its public fields."""
        return {
            "clusterName": self.cluster_name,
            "endpoint": self.endpoint,
            "kubeconfig": self.kubeconfig,
            "oidcIssuer": self.oidc_issuer,
            "nodePools": self.node_pools,
        }

    def _build(self, name: str, spec: ClusterSpec) -> ClusterOutputs:
        """Declare the cloud's resources; each cloud module overrides this."""
        raise TypeError(f"{type(self).__name__} does not declare a cluster")

    def opts(self, *, protect_in_prod: bool = False, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child: always parented here; `protect_in_prod` guards stateful pieces."""
        if protect_in_prod and self.spec.is_prod:
            kwargs["protect"] = True
        return pulumi.ResourceOptions(parent=self, **kwargs)


def node_pool_summary(spec: ClusterSpec) -> list[dict[str, Any]]:
    return [pool_summary(p) for p in spec.node_pools]


def pool_summary(pool: NodePoolSpec) -> dict[str, Any]:
    if not pool.managed:
        # A node group of an existing cluster: what selects it, and its shape where the stack file gives it.
        shape = {"vcpu": pool.vcpu, "memoryGiB": pool.memory_gib} if pool.vcpu else {}
        return {"name": pool.name, "nodeSelector": pool.node_selector, **shape,
                "taints": [t.render() for t in pool.node_taints]}
    return {
        "name": pool.name,
        "machineTypes": list(pool.machine_types),
        "minNodes": pool.min_nodes,
        "maxNodes": pool.max_nodes,
        "spot": pool.spot,
    }


def exec_kubeconfig(name: str, endpoint: str, ca_data: str | None, command: str, args: list[str],
                    env: dict[str, str] | None = None, install_hint: str = "") -> str:
    """A kubeconfig that authenticates through an exec plugin (no static token to expire).

    Built only from stable values (endpoint, CA, plugin arguments) so the Kubernetes provider that
    reads it is not replaced on unrelated changes.
    """
    user: dict[str, Any] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            "args": args,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": False,
        }
    }
    if env:
        user["exec"]["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    if install_hint:
        user["exec"]["installHint"] = install_hint
    cluster: dict[str, str] = {"server": endpoint}
    if ca_data is not None:  # None: the server's certificate is publicly trusted (system roots)
        cluster["certificate-authority-data"] = ca_data
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": user}],
    }
    return json.dumps(config, indent=2)
