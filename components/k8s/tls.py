"""TLS for the public tiers, the same on every cloud: cert-manager (a pinned Helm chart on the system
pool) with an ACME ClusterIssuer that solves DNS-01 challenges in Route 53, one Certificate per
namespace of public tiers, and the TLS proxy sidecar that ends TLS in front of a tier's plain port.

cert-manager reaches Route 53 without a stored key: on EKS through EKS Pod Identity (the cluster's
own workload identity); on GKE and AKS through web-identity federation, an AWS IAM role that trusts
this cluster's OIDC issuer for one service account only (cert-manager requests that account's
token itself: `auth.kubernetes.serviceAccountRef`). The role may write only the TXT records
`_acme-challenge.<host>` of this stack's hosts, in their zones.

Nothing here declares a private key: cert-manager generates the ACME account key and each
certificate's key inside the cluster; neither is in the program, its state or its outputs.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.base import ClusterComponent
from components.k8s.base import (
    K8sComponent,
    container_security_context,
    critical_pods_quota,
    image_pull_policy,
    labels,
    restricted_namespace_labels,
)
from components.spec import POOL_LABEL_KEY, SYSTEM_POOL, ClusterSpec, TlsSpec, tls_proxy_ports
from components.trust import web_identity_trust

if TYPE_CHECKING:
    import pulumi_aws as aws

CERT_MANAGER_CHART = "cert-manager"
CERT_MANAGER_CHART_VERSION = "v1.19.2"
CERT_MANAGER_REPO = "https://charts.jetstack.io"
CERT_MANAGER_NAMESPACE = "cert-manager"
CERT_MANAGER_ACCOUNT = "cert-manager"  # the controller's service account (the chart's default name)
DNS_ACCOUNT = "cert-manager-route53"  # GKE/AKS: the account whose token AWS trusts (nothing runs as it)
ISSUER_NAME = "im-platform-acme"
ACCOUNT_KEY_SECRET = "im-platform-acme-account"  # cert-manager creates it: the ACME account's key
CERTIFICATE_NAME = "im-platform-tls"
HELM_TIMEOUT_SECONDS = 900
# Every pod of the chart (controller, webhook, cainjector, startupapicheck) takes the chart's
# `global.priorityClassName` (templates/*-deployment.yaml, startupapicheck-job.yaml); cert-manager
# issues and renews what the public tiers serve, so it is not preempted for a tier's pod.
CERT_MANAGER_PRIORITY_CLASS = "system-cluster-critical"
# Route 53 is global; the region only tells the AWS SDK which partition and STS endpoint to use.
ROUTE53_REGION = "us-east-1"
# Pulumi does not wait for a custom resource to be ready: an ACME order that cannot complete (a
# zone not delegated yet, a rate limit) must not hang `pulumi up`; `kubectl describe certificate`
# shows why it is pending.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

# Let's Encrypt certificates live 90 days; renewed 30 days before they end (cert-manager's default
# two thirds, stated), so a failing renewal has a month of warnings before clients see anything.
CERTIFICATE_DURATION = "2160h"
CERTIFICATE_RENEW_BEFORE = "720h"

# -- the TLS proxy sidecar --------------------------------------------------------------------------

# Envoy: TLS from a file-based SDS source that it re-reads when the Secret volume changes (kubelet
# swaps the volume's `..data` link on a renewal), so a renewed certificate is served without a
# restart and without cutting an open connection. Pinned release tag.
PROXY_IMAGE = "docker.io/envoyproxy/envoy:v1.35.3"
PROXY_NAME = "tls-proxy"
PROXY_PORT_NAME = "tls"
PROXY_HEALTH_PORT_NAME = "tls-health"
PROXY_LIVENESS_PATH = "/live"
PROXY_CONFIG_DIR = "/etc/envoy"
PROXY_CERT_DIR = "/etc/tls"
PROXY_CPU = "250m"
PROXY_CPU_LIMIT = "1"
PROXY_MEMORY = "256Mi"
# Above the longest idle timeout of any cloud's layer-4 load balancer in front of it (AWS NLB 3600 s,
# Azure 60 minutes; GCP's passthrough LB has none): the load balancer, not the proxy, decides when an
# idle WebSocket goes.
PROXY_IDLE_TIMEOUT_SECONDS = 3900
# TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate"); TLS 1.3 suites are all modern.
CIPHER_SUITES = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
]


def challenge_records(hosts: tuple[str, ...]) -> list[str]:
    """The DNS-01 records of `hosts` as Route 53 normalizes record names (lowercase, no final dot)."""
    return [f"_acme-challenge.{h.lower().rstrip('.')}" for h in hosts]


def route53_challenge_policy(zones: list[tuple[str, tuple[str, ...]]]) -> str:
    """cert-manager's documented Route 53 permissions, narrowed: per (zone ARN, hosts), change only
    TXT records named `_acme-challenge.<host>` in that zone; list that zone's records; read the
    status of its own changes. No hosted zone lookup (the issuer names each zone's id)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadChangeStatus", "Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
    ]
    for i, (zone_arn, hosts) in enumerate(zones):
        statements.append({"Sid": f"ListZone{i}", "Effect": "Allow", "Action": "route53:ListResourceRecordSets",
                           "Resource": zone_arn})
        statements.append({
            "Sid": f"WriteChallenges{i}", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
            "Resource": zone_arn,
            "Condition": {"ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": challenge_records(hosts),
                "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
            }},
        })
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(role_arn: str) -> str:
    """EKS with a zone in another account: assume that account's role, and nothing else."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AssumeTheZoneAccountsRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]})


def pod_identity_trust(cluster_name: str, account: str) -> str:
    """EKS Pod Identity may hand the role only to cert-manager's account in its namespace of this cluster."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:SourceAccount": account,
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": CERT_MANAGER_NAMESPACE,
            "aws:RequestTag/kubernetes-service-account": CERT_MANAGER_ACCOUNT,
        }},
    }]})


def proxy_config(upstream_port: int) -> dict[str, Any]:
    """Envoy's bootstrap: one HTTP/1.1 listener on the sidecar's TLS port (`tls_proxy_ports`, never
    the tier's) that ends TLS (1.2 minimum) and passes every request, WebSocket upgrades included,
    to the tier on 127.0.0.1:`upstream_port`; no admin port."""
    ports = tls_proxy_ports(upstream_port)
    tls_context = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "cipher_suites": CIPHER_SUITES},
            # WebSocket (RFC 6455) upgrades an HTTP/1.1 request; no HTTP/2 towards the gateway.
            "alpn_protocols": ["http/1.1"],
            "tls_certificate_sds_secret_configs": [{
                "name": "certificate",
                "sds_config": {"resource_api_version": "V3", "path_config_source": {
                    "path": f"{PROXY_CONFIG_DIR}/sds.yaml",
                    "watched_directory": {"path": PROXY_CONFIG_DIR},
                }},
            }],
        },
    }
    idle = f"{PROXY_IDLE_TIMEOUT_SECONDS}s"
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "HTTP1",
        # The client's address (the load balancers preserve it) reaches the tier as X-Forwarded-For.
        "use_remote_address": True,
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "common_http_protocol_options": {"idle_timeout": idle},
        "stream_idle_timeout": idle,
        "route_config": {"virtual_hosts": [{"name": "tier", "domains": ["*"], "routes": [{
            "match": {"prefix": "/"},
            # No overall timeout: an upgraded WebSocket lives as long as both ends keep it.
            "route": {"cluster": "tier", "timeout": "0s", "idle_timeout": idle},
        }]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    # The sidecar's own liveness endpoint: plain HTTP on its health port, answered by envoy itself
    # (a direct response), so it says only that envoy's process and workers run, whatever the tier
    # or the certificate do. Kubelet probes are not subject to network policies; nothing else is
    # let in on this port.
    health = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "health",
        "codec_type": "HTTP1",
        "route_config": {"virtual_hosts": [{"name": "health", "domains": ["*"], "routes": [{
            "match": {"path": PROXY_LIVENESS_PATH},
            "direct_response": {"status": 200},
        }]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "static_resources": {
            "listeners": [{
                "name": "tls",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": ports.tls}},
                "filter_chains": [{
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls_context},
                    "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}],
                }],
            }, {
                "name": "health",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": ports.health}},
                "filter_chains": [{"filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": health}]}],
            }],
            "clusters": [{
                "name": "tier",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "tier", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
            }],
        },
    }


def sds_config() -> dict[str, Any]:
    """The certificate as an SDS resource read from the mounted Secret, re-read when it changes."""
    return {"resources": [{
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": "certificate",
        "tls_certificate": {
            "certificate_chain": {"filename": f"{PROXY_CERT_DIR}/tls.crt"},
            "private_key": {"filename": f"{PROXY_CERT_DIR}/tls.key"},
            "watched_directory": {"path": PROXY_CERT_DIR},
        },
    }]}


def proxy_files(upstream_port: int) -> dict[str, str]:
    """The ConfigMap's files (JSON is YAML, and sorted keys keep the bytes stable)."""
    return {"envoy.yaml": json.dumps(proxy_config(upstream_port), sort_keys=True, indent=1),
            "sds.yaml": json.dumps(sds_config(), sort_keys=True, indent=1)}


def files_digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def proxy_container(upstream_port: int) -> k8s.core.v1.ContainerArgs:
    """A native sidecar (an init container that keeps running): started and ready before the tier,
    stopped only after the tier has exited, so the tier's preStop drain (drainSeconds) runs with
    TLS still served; restricted like the tier."""
    ports = tls_proxy_ports(upstream_port)
    return k8s.core.v1.ContainerArgs(
        name=PROXY_NAME,
        image=PROXY_IMAGE,
        image_pull_policy=image_pull_policy(PROXY_IMAGE),
        restart_policy="Always",
        command=["envoy"],
        args=["--config-path", f"{PROXY_CONFIG_DIR}/envoy.yaml", "--disable-hot-restart", "--log-level", "warn"],
        ports=[k8s.core.v1.ContainerPortArgs(name=PROXY_PORT_NAME, container_port=ports.tls, protocol="TCP"),
               k8s.core.v1.ContainerPortArgs(name=PROXY_HEALTH_PORT_NAME, container_port=ports.health, protocol="TCP")],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": PROXY_CPU, "memory": PROXY_MEMORY},
            limits={"cpu": PROXY_CPU_LIMIT, "memory": PROXY_MEMORY},
        ),
        # Probes of its own, apart from the tier's: alive while envoy answers its health listener;
        # ready while its TLS listener accepts. Envoy starts only once the certificate is mounted
        # (certificate_volume) and binds a listener whose SDS secret it is still loading only once
        # it is loaded (https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret).
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=PROXY_LIVENESS_PATH, port=PROXY_HEALTH_PORT_NAME),
            period_seconds=10, timeout_seconds=2, failure_threshold=3),
        readiness_probe=k8s.core.v1.ProbeArgs(
            tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=PROXY_PORT_NAME),
            period_seconds=5, timeout_seconds=2, failure_threshold=2),
        security_context=container_security_context(),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="tls-proxy-config", mount_path=PROXY_CONFIG_DIR, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tls-certificate", mount_path=PROXY_CERT_DIR, read_only=True),
        ],
    )


def certificate_volume(secret_name: str) -> k8s.core.v1.VolumeArgs:
    """The certificate Secret, required: the kubelet starts none of the pod's containers until the
    Secret exists ("Secret volume sources are validated to ensure that the specified object
    reference actually points to an object of type Secret ... the kubelet ... will retry",
    https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod), so
    envoy starts with the certificate in place. Envoy does not recover from a file-based SDS secret
    whose files are missing when it starts: it never watches them, and serves nothing until it is
    restarted (envoyproxy/envoy#26312 "If secret files are not available when Envoy is started,
    they are not watched"; the analysis in #21239: loadFiles() throws before the watch callback is
    set; fixed only in #42652, after the pinned release). Once started with the files, it re-reads
    them on every renewal (the watched directory). Owner and group read only (the pod's fsGroup):
    the key is for the pod's own user."""
    return k8s.core.v1.VolumeArgs(name="tls-certificate", secret=k8s.core.v1.SecretVolumeSourceArgs(
        secret_name=secret_name, default_mode=0o440, optional=False))


# -- cert-manager ---------------------------------------------------------------------------------


class CertManager(K8sComponent):
    """`im-platform:k8s:CertManager`: cert-manager, its Route 53 access, the ACME ClusterIssuer and
    one Certificate (Secret `spec.tls.secret_name`) per namespace of public tiers."""

    TYPE = "im-platform:k8s:CertManager"

    def __init__(self, name: str, cluster: ClusterComponent, spec: ClusterSpec, tls: TlsSpec, provider: k8s.Provider,
                 namespaces: dict[str, tuple[pulumi.Input[str], list[pulumi.Resource]]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # Route 53 and IAM through pulumi_aws, imported here: the TLS sidecar's parts above serve
        # stacks that declare no cert-manager (an existing cluster imports no cloud SDK at all).
        import pulumi_aws as aws

        from components.trust.aws import issuer_provider

        super().__init__(name, provider, opts)
        namespace = k8s.core.v1.Namespace(
            self.child("namespace"),
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CERT_MANAGER_NAMESPACE,
                labels={**labels(CERT_MANAGER_NAMESPACE, "namespace"), **restricted_namespace_labels(spec.kubernetes_version)}),
            opts=self.opts(),
        )
        self.aws_provider: aws.Provider | None = None
        role_name = naming.physical_name(naming.cluster_name(spec.stack), "cert-manager-dns", max_len=64)
        description = f"cert-manager of {spec.stack}: writes the ACME challenge records of its public names only"
        access: list[pulumi.Resource] = []
        solver_auth: dict[str, Any] = {}
        role: aws.iam.Role | None = None
        zone_ids: list[pulumi.Input[str]]
        if tls.zone_role is not None:
            # The zone lives in another AWS account: cert-manager assumes the role its owner gave
            # (the solver's `role`), in the zone named by id (`hostedZoneID`); nothing here is in
            # that account. EKS: this cluster's identity may assume that one role, nothing else.
            # GKE and AKS: cert-manager trades the DNS account's token for it directly
            # (AssumeRoleWithWebIdentity), so the zone's account trusts this cluster's issuer.
            zone_ids = [tls.hosted_zone_id or ""]
            solver_auth = {"role": tls.zone_role}
            if spec.cloud == "aws":
                role, access = self._pod_identity_role(aws, cluster, spec, role_name, description,
                                                       assume_role_policy(tls.zone_role))
            else:
                access = self._dns_account(namespace)
                solver_auth["auth"] = {"kubernetes": {"serviceAccountRef": {"name": DNS_ACCOUNT}}}
        else:
            if spec.cloud != "aws":
                # Route 53 lives in AWS whatever the cluster's cloud: IAM and Route 53 through the
                # deployer's AWS credentials (environment or CI's OIDC), never a key in the stack.
                self.aws_provider = aws.Provider(self.child("aws"), region=ROUTE53_REGION,
                                                 opts=pulumi.ResourceOptions(parent=self))
            invoke = pulumi.InvokeOutputOptions(parent=self, provider=self.aws_provider)
            found = [(z, aws.route53.get_zone_output(name=z.zone, private_zone=False, opts=invoke)) for z in tls.zones]
            zone_ids = [zone.zone_id for _, zone in found]
            zone_arns = pulumi.Output.all(*[zone.arn for _, zone in found])
            policy_doc = zone_arns.apply(lambda arns: route53_challenge_policy(
                [(arn, z.hosts) for arn, (z, _) in zip(arns, found, strict=True)]))
            if spec.cloud == "aws":
                role, access = self._pod_identity_role(aws, cluster, spec, role_name, description, policy_doc)
            else:
                aws_opts = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)
                # This cluster's issuer has one IAM provider in the account: the DR peer's when it
                # declared one for it, else this one (components.trust).
                oidc = issuer_provider(self.child("oidc"), cluster.oidc_issuer, spec.stack, cluster.peer,
                                       tags=cluster.tags, opts=aws_opts,
                                       invoke=pulumi.InvokeOptions(parent=self, provider=self.aws_provider))
                if oidc.declared is not None:
                    cluster.aws_oidc_providers.append(oidc.declared)
                subject = f"system:serviceaccount:{CERT_MANAGER_NAMESPACE}:{DNS_ACCOUNT}"
                role = aws.iam.Role(
                    self.child("dns"), name=role_name, description=description,
                    # Condition keys from the provider's own URL: the issuer as IAM holds it.
                    assume_role_policy=pulumi.Output.all(oidc.arn, oidc.url).apply(
                        lambda a: web_identity_trust(a[0], a[1], subject)),
                    max_session_duration=3600, tags=cluster.tags, opts=aws_opts)
                policy = aws.iam.RolePolicy(self.child("dns"), role=role.name, policy=policy_doc, opts=aws_opts)
                access = [role, policy, *self._dns_account(namespace)]
                solver_auth = {"role": role.arn, "auth": {"kubernetes": {"serviceAccountRef": {"name": DNS_ACCOUNT}}}}
        self.role = role
        quota: list[pulumi.Resource] = []
        if spec.cloud == "gcp":
            # GKE refuses the chart's pods at a critical class without it (critical_pods_quota).
            quota = [critical_pods_quota(self, CERT_MANAGER_NAMESPACE, (CERT_MANAGER_PRIORITY_CLASS,), [namespace])]
        system = {"nodeSelector": {POOL_LABEL_KEY: SYSTEM_POOL}}
        replicas = 2 if spec.is_prod else 1
        release = k8s.helm.v3.Release(
            self.child("release"),
            name=CERT_MANAGER_CHART,
            namespace=CERT_MANAGER_NAMESPACE,
            chart=CERT_MANAGER_CHART,
            version=CERT_MANAGER_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER_REPO),
            values={
                # The CRDs come with the chart, and stay when the release goes (deleting them would
                # delete every Certificate and its Secret).
                "crds": {"enabled": True, "keep": True},
                "global": {"priorityClassName": CERT_MANAGER_PRIORITY_CLASS},
                "serviceAccount": {"create": True, "name": CERT_MANAGER_ACCOUNT},
                "replicaCount": replicas,
                "podDisruptionBudget": {"enabled": spec.is_prod, "maxUnavailable": 1},
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                **system,
                "webhook": {"replicaCount": replicas, **system,
                            "podDisruptionBudget": {"enabled": spec.is_prod, "maxUnavailable": 1}},
                "cainjector": {"replicaCount": 1, **system},
                "startupapicheck": system,
                # The chart's pods already run restricted (non-root, read-only root, no capabilities,
                # RuntimeDefault seccomp); the namespace enforces it.
            },
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            timeout=HELM_TIMEOUT_SECONDS,
            # Started with its Route 53 access in place, or the first challenges fail until it retries.
            opts=self.opts(depends_on=[namespace, *quota, *access]),
        )
        solvers = [
            {"selector": {"dnsZones": [z.zone]},
             "dns01": {"route53": {"region": ROUTE53_REGION, "hostedZoneID": zone_id, **solver_auth}}}
            for z, zone_id in zip(tls.zones, zone_ids, strict=True)
        ]
        acme: dict[str, Any] = {"server": tls.acme_server, "privateKeySecretRef": {"name": ACCOUNT_KEY_SECRET},
                                "solvers": solvers}
        if tls.email:
            acme["email"] = tls.email
        issuer = k8s.apiextensions.CustomResource(
            self.child("issuer"),
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ISSUER_NAME, labels=labels(ISSUER_NAME, "tls"), annotations=SKIP_AWAIT),
            spec={"acme": acme},
            opts=self.opts(depends_on=[release]),
        )
        self.certificates: dict[str, k8s.apiextensions.CustomResource] = {}
        for ns, (ns_name, ready) in namespaces.items():
            self.certificates[ns] = k8s.apiextensions.CustomResource(
                self.child("certificate", ns),
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CERTIFICATE_NAME, namespace=ns_name,
                                                    labels=labels(CERTIFICATE_NAME, "tls"), annotations=SKIP_AWAIT),
                spec={
                    "secretName": tls.secret_name,
                    "dnsNames": list(tls.hosts),
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": ISSUER_NAME},
                    "duration": CERTIFICATE_DURATION,
                    "renewBefore": CERTIFICATE_RENEW_BEFORE,
                    # A new key at every renewal: a leaked key is good for one certificate's life at most.
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "secretTemplate": {"labels": labels(tls.secret_name, "tls")},
                },
                opts=self.opts(depends_on=[issuer, *ready]),
            )
        self.issuer = issuer
        self.release = release
        self.register_outputs({"issuer": ISSUER_NAME, "hosts": list(tls.hosts)})

    def _pod_identity_role(self, aws: Any, cluster: ClusterComponent, spec: ClusterSpec, role_name: str,
                           description: str, policy_doc: pulumi.Input[str]) -> tuple[Any, list[pulumi.Resource]]:
        """EKS: a role EKS Pod Identity hands to cert-manager's account only, with `policy_doc`."""
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(
            self.child("dns"), name=role_name, description=description,
            assume_role_policy=pulumi.Output.all(cluster.cluster_name, account).apply(lambda a: pod_identity_trust(a[0], a[1])),
            tags=cluster.tags, opts=self.cloud_opts())
        policy = aws.iam.RolePolicy(self.child("dns"), role=role.name, policy=policy_doc, opts=self.cloud_opts())
        association = aws.eks.PodIdentityAssociation(
            self.child("dns"), cluster_name=cluster.cluster_name, namespace=CERT_MANAGER_NAMESPACE,
            service_account=CERT_MANAGER_ACCOUNT, role_arn=role.arn, tags=cluster.tags, opts=self.cloud_opts())
        return role, [role, policy, association]

    def _dns_account(self, namespace: pulumi.Resource) -> list[pulumi.Resource]:
        """GKE/AKS: the service account whose token AWS trusts, which cert-manager may request and
        nothing else may."""
        account_meta = k8s.meta.v1.ObjectMetaArgs(name=DNS_ACCOUNT, namespace=CERT_MANAGER_NAMESPACE,
                                                  labels=labels(DNS_ACCOUNT, "tls"))
        dns_account = k8s.core.v1.ServiceAccount(
            self.child("dns-account"), metadata=account_meta, automount_service_account_token=False,
            opts=self.opts(depends_on=[namespace]))
        token_role = k8s.rbac.v1.Role(
            self.child("dns-token"), metadata=account_meta,
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["serviceaccounts/token"],
                                              resource_names=[DNS_ACCOUNT], verbs=["create"])],
            opts=self.opts(depends_on=[namespace]))
        binding = k8s.rbac.v1.RoleBinding(
            self.child("dns-token"), metadata=account_meta,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=DNS_ACCOUNT),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CERT_MANAGER_ACCOUNT,
                                              namespace=CERT_MANAGER_NAMESPACE)],
            opts=self.opts(depends_on=[token_role]))
        return [dns_account, token_role, binding]
