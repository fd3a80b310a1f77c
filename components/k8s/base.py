"""What every Kubernetes component on the cluster shares: the provider built from the cluster's
kubeconfig, one parenting helper that also names that provider, labels, and the restricted pod
security settings."""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.base import ClusterComponent
from components.spec import KUBERNETES, SPOT_TAINT, NodePoolSpec, ServiceSpec, Taint

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
ZONE_KEY = "topology.kubernetes.io/zone"
HOSTNAME_KEY = "kubernetes.io/hostname"

# A UID and GID no account on the node has (checkov CKV_K8S_40 asks for >= 10000); images must not
# need root or a particular user.
RUN_AS = 10001

# Where a cloud marks spot nodes with a taint of its own besides the common one (AKS always adds it,
# see components/azure.py), a tier that allows spot must tolerate that one too.
CLOUD_SPOT_TAINTS: dict[str, tuple[Taint, ...]] = {
    "azure": (Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),),
}


def cluster_provider(name: str, cluster: ClusterComponent) -> k8s.Provider:
    """The only Kubernetes provider: every object goes to this cluster, never to whatever the
    ambient kubeconfig of the machine running `pulumi up` points at."""
    spec = cluster.spec
    if spec.cloud == KUBERNETES:
        return k8s.Provider(
            naming.child_name(name, "k8s"),
            # The kubeconfig file (the provider reads it and expands ~/) and context the stack file
            # names. Unset, "" and not None: the SDK would otherwise put $KUBECONFIG itself here, which
            # the provider reads as one path (a list of several breaks it); "" leaves the lookup
            # to client-go's own rules ($KUBECONFIG, then ~/.kube/config) and its current context.
            kubeconfig=spec.kubeconfig or "",
            context=spec.kube_context,
            # No cluster_identifier: the provider is replaced (and every object recreated) exactly
            # when the kubeconfig's active cluster changes, which is when the objects are elsewhere.
            enable_server_side_apply=True,
            opts=cluster.opts(),
        )
    return k8s.Provider(
        naming.child_name(name, "k8s"),
        # Exec authentication, built only from the endpoint, the CA and the plugin (pitfalls 7, 8).
        kubeconfig=cluster.kubeconfig,
        # The provider is replaced only when the cluster is: a kubeconfig edit (a plugin flag, a CA
        # rotation) updates it instead of replacing every Kubernetes object with it (pitfall 7).
        cluster_identifier=cluster.cluster_name,
        # Field ownership: the HPA keeps owning replicas, kubectl edits show up as conflicts.
        enable_server_side_apply=True,
        # Every object through this provider waits for the node pools (a Deployment or a Helm
        # release applied before any node exists only waits out its timeout) and for the
        # deployer's access to the API (AKS: its role assignment; without it, 403).
        opts=cluster.opts(depends_on=[*cluster.node_pool_resources, *cluster.api_access]),
    )


def labels(name: str, component: str) -> dict[str, str]:
    """The labels of every object: recommended app.kubernetes.io keys, one rule."""
    return {NAME_LABEL: name, COMPONENT_LABEL: component, PART_OF_LABEL: naming.PROJECT,
            MANAGED_BY_LABEL: naming.MANAGED_BY}


def selector(name: str) -> dict[str, str]:
    """The immutable part: a Deployment's selector can never change, so it holds only fixed keys."""
    return {NAME_LABEL: name, PART_OF_LABEL: naming.PROJECT}


def name_of(resource: k8s.core.v1.Namespace | k8s.core.v1.ServiceAccount | k8s.apps.v1.Deployment) -> pulumi.Output[str]:
    """metadata.name as the API server holds it: whoever uses it also depends on the object."""
    return resource.metadata.apply(lambda m: m.name or "")


class K8sComponent(pulumi.ComponentResource):
    """Base of the Kubernetes components: children are parented here and given the cluster's
    provider explicitly, through one helper, so neither can be forgotten."""

    TYPE: ClassVar[str]

    def __init__(self, name: str, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.component_name = name
        self.provider = provider

    def opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a Kubernetes child: parented here, on the cluster's provider."""
        return pulumi.ResourceOptions(parent=self, provider=self.provider, **kwargs)

    def cloud_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a cloud child (an IAM role of an add-on): parented here, default provider."""
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def child(self, *parts: str) -> str:
        return naming.child_name(self.component_name, *parts)


# -- autoscaling ----------------------------------------------------------------------------------

# The tier's container port name (Services, probes and scrapes name it).
PORT_NAME = "app"


def scaling_behavior(service: ServiceSpec) -> dict[str, Any]:
    """Scale up at once (a login burst), scale down slowly; a connection tier in small steps, since
    every pod removed sends its users reconnecting to the others at the same moment. The HPA's
    `behavior` in its own (camelCase) form: the tier's HPA and the one KEDA makes carry the same."""
    scale_up = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                             {"type": "Pods", "value": 4, "periodSeconds": 15}]}
    if service.holds_connections:
        # Load must stay low for 10 minutes, then one pod or 10 % (whichever is more) every 2 minutes.
        scale_down = {"stabilizationWindowSeconds": 600, "selectPolicy": "Max",
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120},
                                   {"type": "Percent", "value": 10, "periodSeconds": 120}]}
    else:
        scale_down = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                      "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
    return {"scaleUp": scale_up, "scaleDown": scale_down}



# -- pod security ---------------------------------------------------------------------------------


# The priority classes Kubernetes creates in every cluster for what the cluster cannot run without.
CRITICAL_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")


def critical_pods_quota(component: K8sComponent, namespace: pulumi.Input[str], classes: tuple[str, ...],
                        depends_on: list[pulumi.Resource], pods: int = 50) -> k8s.core.v1.ResourceQuota:
    """GKE admits a pod at a critical priority class outside kube-system only in a namespace with a
    ResourceQuota whose scope selects that class: GKE runs the ResourceQuota admission plugin with
    `limitedResources` matching PriorityClass In (system-node-critical, system-cluster-critical)
    (Kubernetes: https://kubernetes.io/docs/concepts/policy/resource-quotas/#limit-priority-class-consumption-by-default,
    the kube-up addon admission-resource-quota-critical-pods; without it a pod is refused with
    "insufficient quota to match these scopes", as fluxcd/flux2#3879 reports on GKE). The quota only
    allows such pods, up to `pods` of them (a ceiling far above an add-on's replicas and surges)."""
    return k8s.core.v1.ResourceQuota(
        component.child("critical-pods"),
        metadata=k8s.meta.v1.ObjectMetaArgs(name="critical-pods", namespace=namespace,
                                            labels=labels("critical-pods", "quota")),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(
            hard={"pods": str(pods)},
            scope_selector=k8s.core.v1.ScopeSelectorArgs(match_expressions=[
                k8s.core.v1.ScopedResourceSelectorRequirementArgs(scope_name="PriorityClass", operator="In",
                                                                  values=list(classes))]),
        ),
        opts=component.opts(depends_on=depends_on),
    )


def restricted_namespace_labels(kubernetes_version: str) -> dict[str, str]:
    """Pod Security admission at `restricted`, judged by the rules of the cluster's own minor."""
    labels_: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels_[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels_[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return labels_


def pod_security_context(uid: int = RUN_AS) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context(uid: int = RUN_AS) -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        privileged=False,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def image_pull_policy(image: str) -> str:
    """A digest never changes, so a node's copy is the image; a tag can be re-pushed, so it is
    checked against the registry on every start (and the pull secret with it)."""
    return "IfNotPresent" if "@sha256:" in image else "Always"


# -- scheduling -----------------------------------------------------------------------------------


def tolerations(cloud: str, pool: NodePoolSpec | None, allow_spot: bool) -> list[k8s.core.v1.TolerationArgs]:
    """Exactly the taints of the pool the pods run on; the spot taints only where spot is allowed."""
    taints: list[Taint] = [t for t in (pool.node_taints if pool else ()) if t != SPOT_TAINT]
    if allow_spot:
        taints += [SPOT_TAINT, *CLOUD_SPOT_TAINTS.get(cloud, ())]
    return [k8s.core.v1.TolerationArgs(key=t.key, operator="Equal", value=t.value, effect=t.effect) for t in taints]


def zone_spread(name: str) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread over zones, then nodes. ScheduleAnyway: a node group spanning three zones cannot be
    told which zone to grow in, so a hard rule could leave pods pending while the autoscaler adds
    nodes elsewhere; the scheduler still prefers the emptiest zone. Each rollout revision is
    spread on its own (pod-template-hash), so a rollout does not pile new pods into one zone."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(name)),
            match_label_keys=["pod-template-hash"],
        )
        for key in (ZONE_KEY, HOSTNAME_KEY)
    ]


# -- namespaces -----------------------------------------------------------------------------------


class Namespace(K8sComponent):
    """A namespace at Pod Security `restricted` whose pods talk to nothing until a policy allows it
    (default deny, both directions), except cluster DNS."""

    TYPE = "im-platform:k8s:Namespace"

    def __init__(self, name: str, namespace: str, kubernetes_version: str, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None, extra_labels: dict[str, str] | None = None) -> None:
        super().__init__(name, provider, opts)
        ns = k8s.core.v1.Namespace(
            self.child("namespace"),
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace,
                labels={**(extra_labels or {}), **labels(namespace, "namespace"),
                        **restricted_namespace_labels(kubernetes_version)},
            ),
            opts=self.opts(),
        )
        self.name = name_of(ns)
        default_deny = k8s.networking.v1.NetworkPolicy(
            self.child("default-deny"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=self.name,
                                                labels=labels("default-deny", "network-policy")),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=self.opts(),
        )
        dns = k8s.networking.v1.NetworkPolicy(
            self.child("allow-dns"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-dns", namespace=self.name,
                                                labels=labels("allow-dns", "network-policy")),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Egress"],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: "kube-system"}),
                        # CoreDNS / kube-dns carry this label on EKS, GKE and AKS alike.
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                    )],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")],
                )],
            ),
            opts=self.opts(),
        )
        # Pods start only once their namespace denies by default: never a window of open traffic.
        self.ready: list[pulumi.Resource] = [ns, default_deny, dns]
        self.register_outputs({"name": self.name})
