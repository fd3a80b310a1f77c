"""One IM service tier on the cluster: Deployment, autoscaler, disruption budget, Service and the
network policy that lets exactly its callers in, the same on every cloud.

Connection gateways hold long-lived WebSockets, so everything that stops a pod (a rollout, a
scale-down, a node drain) goes slowly and lets it drain: a preStop wait of `drainSeconds` while the
pod is already out of the Service's endpoints, then SIGTERM with time left to close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.base import (  # noqa: F401 (scaling_behavior, PORT_NAME: re-exported)
    NAMESPACE_NAME_LABEL,
    PORT_NAME,
    K8sComponent,
    container_security_context,
    image_pull_policy,
    labels,
    name_of,
    pod_security_context,
    scaling_behavior,
    selector,
    tolerations,
    zone_spread,
)
from components.spec import KUBERNETES, TLS_MOUNT_PATH, ClusterSpec, ServiceSpec, TlsSpec

if TYPE_CHECKING:
    from components.k8s.keda import Keda

TMP_SIZE_LIMIT = "256Mi"

# The layer-4 load balancer of each cloud, kept open for long-lived WebSockets.
PUBLIC_SERVICE_ANNOTATIONS: dict[str, dict[str, str]] = {
    # A Network Load Balancer made by the AWS Load Balancer Controller (the loadBalancerClass below
    # keeps EKS's built-in controller, and its classic ELB, away). Per-tier settings in public_annotations.
    "aws": {
        # Straight to the pods' VPC addresses: no NodePort hop, no second node to drain.
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        "service.beta.kubernetes.io/aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=true",
        # The controller opens the nodes' security group to this NLB (traffic and health checks).
        "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules": "true",
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-success-codes": "200",
    },
    # Backend-service based passthrough Network LB: no proxy, so nothing closes an idle connection;
    # it also honours externalTrafficPolicy: Local per node.
    "gcp": {
        "cloud.google.com/l4-rbs": "enabled",
    },
    # Minutes (4-100); the Standard LB sends a TCP reset at the timeout, so clients reconnect at once.
    "azure": {
        "service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout": "60",
    },
}
# The load balancer implementation a public Service asks for, where the cloud's default is not it.
LOAD_BALANCER_CLASS = {"aws": "service.k8s.aws/nlb"}
# An NLB listener closes a TCP flow idle this long (AWS allows 60-6000 s; the default is 350 s, shorter
# than many WebSocket clients' ping interval behind mobile networks).
NLB_IDLE_TIMEOUT_SECONDS = 3600
AWS_LISTENER_ATTRIBUTES = "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-{port}"
AWS_TARGET_GROUP_ATTRIBUTES = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
AWS_HEALTHCHECK_PORT = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"
AWS_HEALTHCHECK_PATH = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path"


def tls_mode(service: ServiceSpec, tls: TlsSpec | None) -> str | None:
    """Where TLS ends for this tier: "proxy" (the sidecar), "self" (its own container) or None
    (a private tier, or no name is known for the stack: plain TCP, a policy violation)."""
    return service.tls if service.public and tls is not None else None


def public_annotations(cloud: str, service: ServiceSpec, tls: TlsSpec | None = None) -> dict[str, str]:
    # An existing cluster: whatever load balancer implementation it runs (MetalLB, kube-vip, a
    # cloud's own) takes a plain LoadBalancer Service.
    found = dict(PUBLIC_SERVICE_ANNOTATIONS.get(cloud, {}))
    if cloud == "aws":
        found[AWS_LISTENER_ATTRIBUTES.format(port=service.public_port)] = f"tcp.idle_timeout.seconds={NLB_IDLE_TIMEOUT_SECONDS}"
        found[AWS_TARGET_GROUP_ATTRIBUTES] = ",".join([
            # A deregistered pod keeps its connections as long as it drains (its preStop wait) ...
            f"deregistration_delay.timeout_seconds={service.drain_seconds}",
            # ... and the NLB does not cut them when the delay starts.
            "deregistration_delay.connection_termination.enabled=false",
            # The client's own address reaches the pod (off by default for IP targets); no proxy
            # protocol, so the gateway needs no header parsing.
            "preserve_client_ip.enabled=true",
        ])
        # The health checker asks the pod itself, on the path its readiness probe uses: the plain
        # port behind the TLS sidecar, or the tier's own TLS port when it ends TLS itself.
        if tls_mode(service, tls) == "self":
            found["service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol"] = "https"
        found[AWS_HEALTHCHECK_PORT] = str(service.port)
        found[AWS_HEALTHCHECK_PATH] = service.health_path
    return found


def hpa_behavior(service: ServiceSpec) -> k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs:
    """`scaling_behavior` as the typed arguments of the tier's own HPA."""
    def rules(r: dict[str, Any]) -> k8s.autoscaling.v2.HPAScalingRulesArgs:
        return k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=r["stabilizationWindowSeconds"], select_policy=r["selectPolicy"],
            policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(type=p["type"], value=p["value"], period_seconds=p["periodSeconds"])
                      for p in r["policies"]])
    behavior = scaling_behavior(service)
    return k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(scale_up=rules(behavior["scaleUp"]),
                                                                  scale_down=rules(behavior["scaleDown"]))


def max_unavailable(service: ServiceSpec) -> int | str:
    """What a node drain may take at once: never zero, or no node could ever be drained. One pod at
    a time for a connection tier; a quarter (rounded up, so at least one) for the others."""
    return 1 if service.holds_connections else "25%"


def max_surge(service: ServiceSpec) -> str:
    """Rollouts add pods before removing any (maxUnavailable 0); a connection tier replaces a
    tenth at a time so only a tenth of its users reconnect at once."""
    return "10%" if service.holds_connections else "25%"


class ServiceTier(K8sComponent):
    """`im-platform:k8s:ServiceTier`: one service of `im-platform:services` on the cluster."""

    TYPE = "im-platform:k8s:ServiceTier"

    def __init__(self, name: str, service: ServiceSpec, spec: ClusterSpec, provider: k8s.Provider,
                 namespace: pulumi.Input[str], priority_class: str, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None,
                 load_balancer_controller: pulumi.Resource | None = None,
                 tls: TlsSpec | None = None, keda: Keda | None = None) -> None:
        super().__init__(name, provider, opts)
        # A tier with `scaling` scales on its load through KEDA, in place of its own CPU HPA.
        self.keda = keda if service.scaling is not None else None
        self.service = service
        self.tls = tls
        self.tls_mode = tls_mode(service, tls)
        self.namespace = pulumi.Output.from_input(namespace)
        tier_labels = labels(service.name, "tier")
        meta = k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=self.namespace, labels=tier_labels)

        account = k8s.core.v1.ServiceAccount(
            self.child("account"),
            metadata=meta,
            # The tier does not call the Kubernetes API: no token in its pods.
            automount_service_account_token=False,
            opts=self.opts(),
        )
        deployment = self._deployment(service, spec, meta, tier_labels, account, priority_class, depends_on)
        if self.keda is not None:
            self.keda.scale_tier(self, service, self.namespace, deployment)
        else:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                self.child("autoscaler"),
                metadata=meta,
                spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                    scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                        api_version="apps/v1", kind="Deployment", name=name_of(deployment)),
                    min_replicas=service.min_replicas,
                    max_replicas=service.max_replicas,
                    metrics=[k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization",
                                                                       average_utilization=service.target_cpu_percent),
                        ),
                    )],
                    behavior=hpa_behavior(service),
                ),
                opts=self.opts(),
            )
        k8s.policy.v1.PodDisruptionBudget(
            self.child("disruption-budget"),
            metadata=meta,
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=max_unavailable(service),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(service.name)),
                # A crash-looping pod must not block a node drain (it serves nobody anyway).
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=self.opts(),
        )
        svc = self._service(service, spec, tier_labels, load_balancer_controller)
        self._network_policy(service, spec, tier_labels)

        service_port = service.public_port if service.public else service.port
        self.address = pulumi.Output.concat(service.name, ".", self.namespace, ".svc.cluster.local:", str(service_port))
        self.public_address: pulumi.Output[str] | None = None
        # The load balancer's hostname (AWS) or IP (GCP, Azure) alone: what DNS records point at.
        self.public_host: pulumi.Output[str] | None = None
        if service.public:
            self.public_address = svc.status.apply(lambda s: _lb_address(s, service.public_port))  # type: ignore[arg-type]
            self.public_host = svc.status.apply(_lb_host)  # type: ignore[arg-type]
        self.register_outputs({"address": self.address, "publicAddress": self.public_address})

    # -----------------------------------------------------------------------------------------

    def _deployment(self, service: ServiceSpec, spec: ClusterSpec, meta: k8s.meta.v1.ObjectMetaArgs,
                    tier_labels: dict[str, str], account: k8s.core.v1.ServiceAccount,
                    priority_class: str, depends_on: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        pool = spec.pool(service.pool) if service.pool else None
        # Readiness asks whether the tier can serve (healthPath: it may check the tier's dependencies);
        # liveness and startup ask only whether the process is alive (livenessPath, or a TCP check on
        # its port), so a stalled message store or network takes pods out of the endpoints without
        # restarting every one of them at once and setting off a reconnect storm (kube-score's
        # pod-probes-identical, https://github.com/zegl/kube-score/blob/master/README_PROBES.md).
        # A tier that ends TLS itself answers over HTTPS (the kubelet does not verify).
        scheme = "HTTPS" if self.tls_mode == "self" else None
        ready_action = k8s.core.v1.HTTPGetActionArgs(path=service.health_path, port=PORT_NAME, scheme=scheme)
        alive: dict[str, Any] = (
            {"http_get": k8s.core.v1.HTTPGetActionArgs(path=service.liveness_path, port=PORT_NAME, scheme=scheme)}
            if service.liveness_path else {"tcp_socket": k8s.core.v1.TCPSocketActionArgs(port=PORT_NAME)})
        mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
        volumes = [k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=TMP_SIZE_LIMIT))]
        init_containers = None
        template_annotations = None
        if self.tls is not None and self.tls_mode is not None:
            from components.k8s import tls as tls_parts

            volumes.append(tls_parts.certificate_volume(self.tls.secret_name))
            if self.tls_mode == "self":
                mounts.append(k8s.core.v1.VolumeMountArgs(name="tls-certificate", mount_path=TLS_MOUNT_PATH, read_only=True))
            else:
                files = tls_parts.proxy_files(service.port)
                config = k8s.core.v1.ConfigMap(
                    self.child("tls-proxy"),
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{service.name}-{tls_parts.PROXY_NAME}", namespace=self.namespace,
                                                        labels=tier_labels),
                    data=files,
                    opts=self.opts(),
                )
                volumes.append(k8s.core.v1.VolumeArgs(
                    name="tls-proxy-config",
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.apply(lambda m: m.name or ""))))
                init_containers = [tls_parts.proxy_container(service.port)]
                # A changed proxy configuration rolls the pods (envoy reads its bootstrap once).
                template_annotations = {"im-platform/tls-proxy-config": tls_parts.files_digest(files)}
        container = k8s.core.v1.ContainerArgs(
            name=service.name,
            image=service.image,
            image_pull_policy=image_pull_policy(service.image),
            ports=self._ports(service),
            env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in service.env] or None,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": service.cpu, "memory": service.memory},
                # Memory limit = request: a pod never uses memory the scheduler did not reserve for it.
                # CPU may burst to the limit (reconnect storms), and the autoscaler acts on the request.
                limits={"cpu": service.cpu_limit, "memory": service.memory},
            ),
            # Up to two minutes to start before liveness may restart it.
            startup_probe=k8s.core.v1.ProbeArgs(**alive, period_seconds=2, timeout_seconds=2, failure_threshold=60),
            readiness_probe=k8s.core.v1.ProbeArgs(http_get=ready_action, period_seconds=5, timeout_seconds=2,
                                                  failure_threshold=2),
            liveness_probe=k8s.core.v1.ProbeArgs(**alive, period_seconds=10, timeout_seconds=2, failure_threshold=3),
            # The sleep action needs no shell in the image (Kubernetes >= 1.30). The pod is out of the
            # Service's endpoints while it sleeps: open connections go on, new ones go elsewhere.
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=service.drain_seconds)),
            ) if service.drain_seconds > 0 else None,
            security_context=container_security_context(),
            # The only writable place: the root filesystem is read-only.
            volume_mounts=mounts,
        )
        pod = k8s.core.v1.PodSpecArgs(
            # The TLS proxy, a native sidecar: up before the tier, down after it has drained.
            init_containers=init_containers,
            containers=[container],
            service_account_name=name_of(account),
            automount_service_account_token=False,
            # Every Service of a shared namespace as environment variables is noise and slows starts.
            enable_service_links=False,
            priority_class_name=priority_class,
            # Above drainSeconds: the preStop wait, then time to close after SIGTERM.
            termination_grace_period_seconds=service.termination_grace_seconds,
            node_selector=pool.node_selector if pool else None,
            tolerations=tolerations(spec.cloud, pool, service.allow_spot) or None,
            topology_spread_constraints=zone_spread(service.name),
            security_context=pod_security_context(),
            volumes=volumes,
        )
        return k8s.apps.v1.Deployment(
            self.child("deployment"),
            metadata=meta,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # No `replicas`: the HPA owns the count, and a `pulumi up` must not reset it (as
                # pitfall 1 for nodes). A new Deployment starts at one pod; the HPA lifts it to min.
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(service.name)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=max_surge(service)),
                ),
                # A new pod must stay ready this long before the rollout moves on.
                min_ready_seconds=10,
                revision_history_limit=5,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=tier_labels,
                        annotations={**(template_annotations or {}), **self._scrape_annotations(service)} or None),
                    spec=pod,
                ),
            ),
            opts=self.opts(
                # Pods start once their namespace denies traffic by default and their priority exists.
                depends_on=depends_on,
                # The first rollout may wait for node pools that are still being created, and a
                # connection tier's rollout goes a tenth at a time.
                custom_timeouts=pulumi.CustomTimeouts(create="30m", update="30m"),
            ),
        )

    def _service(self, service: ServiceSpec, spec: ClusterSpec, tier_labels: dict[str, str],
                 load_balancer_controller: pulumi.Resource | None) -> k8s.core.v1.Service:
        # A public tier answers on the load balancer's port inside the cluster too: one port, one address.
        # Behind the TLS sidecar, the load balancer's port reaches the sidecar, never the plain port.
        port = k8s.core.v1.ServicePortArgs(name=PORT_NAME, protocol="TCP", port=service.public_port if service.public else service.port,
                                           target_port=self._proxy_port_name() if self.tls_mode == "proxy" else PORT_NAME)
        opts = self.opts()
        if service.public:
            lb_class = LOAD_BALANCER_CLASS.get(spec.cloud)
            svc_spec = k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                load_balancer_class=lb_class,
                # Only nodes running a pod receive traffic: no second hop that would cut connections
                # when an unrelated node drains, and the client's address reaches the gateway.
                external_traffic_policy="Local",
                selector=selector(service.name),
                ports=[port],
            )
            annotations = public_annotations(spec.cloud, service, self.tls) or None
            if lb_class:
                opts = self.opts(
                    # The controller's webhook must be up when the Service is created.
                    depends_on=[load_balancer_controller] if load_balancer_controller else [],
                    # The class cannot change on a live Service: a change replaces it (and its load balancer).
                    replace_on_changes=["spec.loadBalancerClass"],
                )
        else:
            svc_spec = k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=selector(service.name), ports=[port])
            annotations = None
        return k8s.core.v1.Service(
            self.child("service"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=self.namespace, labels=tier_labels,
                                                annotations=annotations),
            spec=svc_spec,
            opts=opts,
        )

    def _ports(self, service: ServiceSpec) -> list[k8s.core.v1.ContainerPortArgs]:
        ports = [k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=service.port, protocol="TCP")]
        if self.keda is not None and service.metrics_port not in (None, service.port):
            from components.k8s.keda import METRICS_PORT_NAME

            ports.append(k8s.core.v1.ContainerPortArgs(name=METRICS_PORT_NAME, container_port=service.metrics_port, protocol="TCP"))
        return ports

    def _scrape_annotations(self, service: ServiceSpec) -> dict[str, str]:
        """A Prometheus the user runs finds the pods by the prometheus.io annotations (the convention
        of the Prometheus community chart's kubernetes-pods job); the managed stores by their own objects."""
        if self.keda is None or not self.keda.store.pod_annotations or service.scaling is None:
            return {}
        return {"prometheus.io/scrape": "true", "prometheus.io/port": str(service.scaling.metrics_port),
                "prometheus.io/path": service.scaling.metrics_path}

    @staticmethod
    def _proxy_port_name() -> str:
        from components.k8s.tls import PROXY_PORT_NAME

        return PROXY_PORT_NAME

    def _network_policy(self, service: ServiceSpec, spec: ClusterSpec, tier_labels: dict[str, str]) -> None:
        """The allows on top of the namespace's default deny: callers in, callees and listed
        destinations out. (Kubelet probes come from the node and are not subject to it.)"""
        by_name = {s.name: s for s in spec.services}
        port = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=service.port)]
        if service.public and self.tls_mode == "proxy":
            # From anywhere (the load balancer keeps client addresses) to the TLS sidecar only; the
            # plain port only from the node network (the AWS NLB's health checks; kubelet probes
            # are not subject to policies). An existing cluster's node network is not the program's
            # to know, and no cloud load balancer checks the plain port there: the sidecar only.
            ingress = [
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=service.proxy_ports.tls)]),
            ]
            if spec.cloud != KUBERNETES:
                ingress.append(k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=spec.network_cidr))],
                    ports=port))
        elif service.public:
            # From anywhere (the load balancer keeps client addresses), only to the tier's port.
            ingress = [k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=port)]
        elif service.allow_from:
            ingress = [k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[_peer(by_name[caller]) for caller in service.allow_from], ports=port)]
        else:
            ingress = []
        if self.keda is not None and service.scaling is not None:
            from components.k8s.keda import peer

            # The store's scraper, on the metrics port only.
            ingress.append(k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[peer(self.keda.store.scrape_source)],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=service.scaling.metrics_port)]))
        egress = [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_peer(callee)],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=callee.port)],
            )
            for callee in spec.services if service.name in callee.allow_from
        ] + [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=rule.cidr))],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=rule.port)],
            )
            for rule in service.egress
        ]
        k8s.networking.v1.NetworkPolicy(
            self.child("network-policy"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=self.namespace, labels=tier_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(service.name)),
                policy_types=["Ingress", "Egress"],
                ingress=ingress or None,
                egress=egress or None,
            ),
            opts=self.opts(),
        )


def _peer(service: ServiceSpec) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: service.namespace}),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(service.name)),
    )


def _lb_host(status: object) -> str:
    ingress = getattr(getattr(status, "load_balancer", None), "ingress", None) or []
    if not ingress:
        return ""
    first = ingress[0]
    return getattr(first, "hostname", None) or getattr(first, "ip", None) or ""


def _lb_address(status: object, port: int) -> str:
    host = _lb_host(status)
    return f"{host}:{port}" if host else ""
