"""Cluster-wide pieces the tiers rely on: scheduling priorities, the capacity buffer, and what a
cloud does not run for us (on EKS the cluster autoscaler and metrics-server; GKE and AKS have both
built in, tuned through the cluster's autoscaler profile)."""

from __future__ import annotations

import importlib

import pulumi
import pulumi_kubernetes as k8s

from components.base import ClusterComponent
from components.k8s.base import (
    K8sComponent,
    Namespace,
    container_security_context,
    labels,
    pod_security_context,
    selector,
    tolerations,
    zone_spread,
)
from components.k8s.cloud_addons import CLOUD_ADDON_MODULES
from components.spec import CapacityBufferSpec, ClusterSpec

TIER_PRIORITY_CLASS = "im-platform-tier"
TIER_PRIORITY = 1000
BUFFER_PRIORITY_CLASS = "im-platform-capacity-buffer"
# Below every tier (and below the default 0), so any real pod preempts a placeholder; but above the
# cluster autoscaler's expendable cutoff, or the autoscaler would not add nodes for placeholders.
BUFFER_PRIORITY = -1
EXPENDABLE_PRIORITY_CUTOFF = -10
BUFFER_NAMESPACE = "im-capacity-buffer"
BUFFER_ACCOUNT = "capacity-buffer"
# The placeholder: does nothing, needs no shell, runs as 65535. Pinned by digest.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a"
PAUSE_UID = 65535


class ClusterAddons(K8sComponent):
    """`im-platform:k8s:ClusterAddons`: one per cluster."""

    TYPE = "im-platform:k8s:ClusterAddons"

    def __init__(self, name: str, cluster: ClusterComponent, spec: ClusterSpec, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, provider, opts)
        self.tier_priority: k8s.scheduling.v1.PriorityClass | None = None
        if spec.services:
            self.tier_priority = k8s.scheduling.v1.PriorityClass(
                self.child("tier-priority"),
                metadata=k8s.meta.v1.ObjectMetaArgs(name=TIER_PRIORITY_CLASS, labels=labels(TIER_PRIORITY_CLASS, "priority")),
                value=TIER_PRIORITY,
                global_default=False,
                preemption_policy="PreemptLowerPriority",
                description="IM service tiers: preempt capacity-buffer placeholders to start at once.",
                opts=self.opts(),
            )
        if spec.capacity_buffers:
            namespace, ready = self._buffer_base(spec)
            for buffer in spec.capacity_buffers:
                self._buffer(spec, buffer, namespace, ready)

        self.cloud_resources: list[pulumi.Resource] = []
        # Set by a cloud whose public Services need a controller installed first (EKS: the AWS Load
        # Balancer Controller); public Services wait for it.
        self.load_balancer_controller: pulumi.Resource | None = None
        module = CLOUD_ADDON_MODULES.get(spec.cloud)
        if module:
            self.cloud_resources = importlib.import_module(module).install(self, cluster, spec)
        self.register_outputs({})

    # -- the capacity buffer ----------------------------------------------------------------------

    def _buffer_base(self, spec: ClusterSpec) -> tuple[Namespace, list[pulumi.Resource]]:
        """The namespace, priority and account all placeholders share."""
        namespace = Namespace(self.child("buffer"), BUFFER_NAMESPACE, spec.kubernetes_version, self.provider,
                              opts=pulumi.ResourceOptions(parent=self))
        priority = k8s.scheduling.v1.PriorityClass(
            self.child("buffer-priority"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=BUFFER_PRIORITY_CLASS, labels=labels(BUFFER_PRIORITY_CLASS, "priority")),
            value=BUFFER_PRIORITY,
            global_default=False,
            # A placeholder never pushes anything out; it only holds room until a real pod needs it.
            preemption_policy="Never",
            description="Capacity-buffer placeholders: the first pods to go when a real one needs the room.",
            opts=self.opts(),
        )
        account = k8s.core.v1.ServiceAccount(
            self.child("buffer-account"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=BUFFER_ACCOUNT, namespace=namespace.name,
                                                labels=labels(BUFFER_ACCOUNT, "capacity-buffer")),
            automount_service_account_token=False,
            opts=self.opts(),
        )
        return namespace, [*namespace.ready, priority, account]

    def _buffer(self, spec: ClusterSpec, buffer: CapacityBufferSpec, namespace: Namespace,
                ready: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        pool = spec.pool(buffer.pool)
        name = f"buffer-{pool.name}"
        # The placeholder "probe" only shows the container can run a process: it serves nothing.
        alive = k8s.core.v1.ProbeArgs(exec_=k8s.core.v1.ExecActionArgs(command=["/pause", "-v"]), period_seconds=60)
        return k8s.apps.v1.Deployment(
            self.child("buffer", pool.name),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace.name, labels=labels(name, "capacity-buffer")),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # Fixed: the buffer is the headroom itself, not a load that scales.
                replicas=buffer.pods,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(name)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(name, "capacity-buffer")),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[k8s.core.v1.ContainerArgs(
                            name="placeholder",
                            image=PAUSE_IMAGE,
                            image_pull_policy="IfNotPresent",
                            # Requests = limits: exactly the room it holds for a tier's pods.
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": buffer.cpu, "memory": buffer.memory},
                                limits={"cpu": buffer.cpu, "memory": buffer.memory},
                            ),
                            liveness_probe=alive,
                            readiness_probe=alive,
                            security_context=container_security_context(PAUSE_UID),
                        )],
                        priority_class_name=BUFFER_PRIORITY_CLASS,
                        # Nothing to drain: a preempted placeholder frees its node's room at once.
                        termination_grace_period_seconds=0,
                        service_account_name=BUFFER_ACCOUNT,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        node_selector=pool.node_selector,
                        # Everything the pool's nodes carry, spot included: warm room on that very pool.
                        tolerations=tolerations(spec.cloud, pool, allow_spot=pool.spot) or None,
                        topology_spread_constraints=zone_spread(name),
                        security_context=pod_security_context(PAUSE_UID),
                    ),
                ),
            ),
            opts=self.opts(depends_on=ready),
        )
