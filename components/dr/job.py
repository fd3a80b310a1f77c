"""The replication job on the standby cluster: a CronJob that copies the primary's object store into
this stack's own with rclone, in its own restricted namespace, with no stored key.

It writes through this cluster's workload identity (the store's `grant_writer`) and reads through
the federation the primary declared (the primary's `replicationSource` output). Each cloud gets the
projected service-account token with the audience it expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.dr import rclone
from components.k8s.base import (
    K8sComponent,
    Namespace,
    cluster_provider,
    container_security_context,
    image_pull_policy,
    labels,
    pod_security_context,
    selector,
    tolerations,
)
from components.spec import POOL_LABEL_KEY, ClusterSpec

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.dr.base import ObjectStore
    from components.k8s import Workloads

NAME = "replication"
TOKENS_VOLUME = "cloud-tokens"
CREDENTIALS_VOLUME = "gcp-credentials"
# A first copy of a large store can take hours; a run that hits this stops, and the next one goes
# on from what is already copied (sync skips objects that match).
ACTIVE_DEADLINE_SECONDS = 6 * 3600
BACKOFF_LIMIT = 2
# GKE's metadata server, where Workload Identity hands out the pod's Google credentials (Dataplane
# V2 enforces NetworkPolicy on it too). 988 serves clusters that still use the older agent.
GKE_METADATA = (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))


def starting_deadline_seconds(every_minutes: int) -> int:
    """A run that could not start within half an interval (or 5 minutes) is skipped: the next one
    copies the same changes, and missed runs never pile up after an outage."""
    return min(300, every_minutes * 30)


class ReplicationJob(K8sComponent):
    """`im-platform:k8s:Replication`: namespace, service account, egress policy, and the CronJob
    while the stack is the standby (never on the primary: it would copy the stale standby's store
    over the live one)."""

    TYPE = "im-platform:k8s:Replication"

    def __init__(self, name: str, cluster: ClusterComponent, spec: ClusterSpec, store: ObjectStore,
                 workloads: Workloads | None, source: Any, cron: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`source` is the peer's `replicationSource` output as read (None if it has none)."""
        # The tiers' provider when there is one; otherwise this cluster's own (the same settings).
        provider = workloads.provider if workloads is not None else cluster_provider(name, cluster)
        super().__init__(name, provider, opts)
        assert spec.dr is not None and spec.dr.replication is not None
        self.spec = spec
        self.cron = cron
        self.every = rclone.schedule(spec.dr.replication.interval_minutes)[1]
        self.peer_name = spec.dr.peer
        self.peer_cloud = spec.dr.peer_cloud
        self.standby = spec.dr.is_standby
        self.writer = store.grant_writer(rclone.NAMESPACE, rclone.SERVICE_ACCOUNT)

        namespace = Namespace(self.child("ns"), rclone.NAMESPACE, spec.kubernetes_version, provider,
                              opts=pulumi.ResourceOptions(parent=self))
        self.namespace = namespace.name
        self.labels = labels(NAME, "replication")
        account = k8s.core.v1.ServiceAccount(
            self.child("account"),
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=rclone.SERVICE_ACCOUNT, namespace=self.namespace, labels=self.labels,
                annotations=dict(self.writer.service_account_annotations) or None),
            # The job never calls the Kubernetes API; its tokens are projected for the clouds only.
            automount_service_account_token=False,
            opts=self.opts(depends_on=namespace.ready),
        )
        policy = self._egress_policy(spec)
        self.ready: list[pulumi.Resource] = [*namespace.ready, account, policy]

        job = self._schedule(source)
        if job:
            # Only a warning waits for this cluster's issuer (unknown before the cluster exists).
            cluster.oidc_issuer.apply(lambda issuer: self._check_trusted(source, issuer))
        self.register_outputs({"schedule": cron, "scheduled": job})

    # -----------------------------------------------------------------------------------------

    def _egress_policy(self, spec: ClusterSpec) -> k8s.networking.v1.NetworkPolicy:
        """HTTPS to the clouds' APIs (DNS is allowed namespace-wide), nothing inside the cluster."""
        internal = [spec.network_cidr, spec.pod_cidr, spec.service_cidr]
        rules = [k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[k8s.networking.v1.NetworkPolicyPeerArgs(
                ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0", except_=internal))],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=443)],
        )]
        if spec.cloud == "gcp":
            rules += [k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)],
            ) for cidr, port in GKE_METADATA]
        return k8s.networking.v1.NetworkPolicy(
            self.child("egress"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-egress", namespace=self.namespace,
                                                labels=labels(f"{NAME}-egress", "network-policy")),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(NAME)),
                policy_types=["Egress"],
                egress=rules,
            ),
            opts=self.opts(),
        )

    def _warn(self, message: str) -> None:
        # While this stack is the primary the job does not run: nothing to warn about.
        (pulumi.log.warn if self.standby else pulumi.log.info)(message, resource=self)

    def _schedule(self, source: Any) -> bool:
        """The CronJob (on the standby), once the primary has declared what it reads the store as."""
        if source is None:
            self._warn(f"peer {self.peer_name} exports no replicationSource yet (it is not deployed): the "
                       f"replication job is skipped; deploy {self.peer_name}, then this stack again")
            return False
        try:
            reader = rclone.reader_access(source)
        except rclone.PeerOutputError as exc:
            self._warn(f"peer {self.peer_name}: {exc}; the replication job is skipped")
            return False
        if reader.cloud != self.peer_cloud:
            self._warn(f"peer {self.peer_name} is on {self.peer_cloud} but its replicationSource names "
                       f"{reader.cloud}; the replication job is skipped")
            return False
        # The federation's credential file goes with the reader, whatever the role: a failover only
        # adds or removes the CronJob.
        config_map = self._credentials(reader, self.writer)
        if not self.standby:
            pulumi.log.info(f"this stack is the primary: no replication job (it copies from {self.peer_name} "
                            "only while this stack is the standby)", resource=self)
            return False
        self._cron_job(reader, self.writer, config_map)
        return True

    def _check_trusted(self, source: Any, issuer: str) -> None:
        if not rclone.trusted_by_source(source, issuer, rclone.subject()):
            # Declared anyway: the job is right, only the primary's trust lags (a first deployment
            # in the other order, or a recreated cluster). Its runs fail to read until then.
            pulumi.log.warn(f"peer {self.peer_name} trusts {source.get('subject')!r} of {source.get('issuer')!r}, not "
                            f"this cluster's {rclone.subject()!r} of {issuer!r}: the replication job cannot read "
                            f"until {self.peer_name} is deployed again", resource=self)

    def _credentials(self, reader: rclone.Access, writer: rclone.Access) -> k8s.core.v1.ConfigMap | None:
        files = [*reader.files, *writer.files]
        if not files:
            return None
        return k8s.core.v1.ConfigMap(
            self.child("gcp-credentials"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CREDENTIALS_VOLUME, namespace=self.namespace,
                                                labels=labels(CREDENTIALS_VOLUME, "replication")),
            # Where to trade which token for Google credentials: no secret in it.
            data=dict(files),
            opts=self.opts(depends_on=self.ready),
        )

    def _cron_job(self, reader: rclone.Access, writer: rclone.Access,
                  config_map: k8s.core.v1.ConfigMap | None) -> k8s.batch.v1.CronJob:
        spec = self.spec
        ready = list(self.ready)
        volumes = [k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi"))]
        mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
        tokens = [k8s.core.v1.VolumeProjectionArgs(service_account_token=k8s.core.v1.ServiceAccountTokenProjectionArgs(
                      audience=access.token_audience, expiration_seconds=rclone.TOKEN_SECONDS,
                      path=f"{access.cloud}/token"))
                  for access in (reader, writer) if access.token_audience]
        if tokens:
            volumes.append(k8s.core.v1.VolumeArgs(
                name=TOKENS_VOLUME, projected=k8s.core.v1.ProjectedVolumeSourceArgs(sources=tokens, default_mode=0o440)))
            mounts.append(k8s.core.v1.VolumeMountArgs(name=TOKENS_VOLUME, mount_path=rclone.TOKEN_DIR, read_only=True))
        if config_map is not None:
            ready.append(config_map)
            volumes.append(k8s.core.v1.VolumeArgs(
                name=CREDENTIALS_VOLUME,
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map.metadata.apply(lambda m: m.name or ""),
                                                                 default_mode=0o440)))
            mounts.append(k8s.core.v1.VolumeMountArgs(name=CREDENTIALS_VOLUME, mount_path=rclone.CREDENTIALS_DIR,
                                                      read_only=True))

        env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in rclone.job_env(reader, writer)]
        args: list[Any] = ["sync", f"{rclone.SOURCE_REMOTE}:{reader.path}",
                           pulumi.Output.concat(rclone.DEST_REMOTE, ":", writer.path), *rclone.SYNC_FLAGS]
        container = k8s.core.v1.ContainerArgs(
            name="rclone",
            image=rclone.IMAGE,
            image_pull_policy=image_pull_policy(rclone.IMAGE),
            command=["rclone"],
            args=args,
            env=env,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "250m", "memory": "1Gi"},
                # 8 transfers x multipart chunks plus a large prefix's listing; memory limit = request.
                limits={"cpu": "1", "memory": "1Gi"},
            ),
            security_context=container_security_context(),
            volume_mounts=mounts,
        )
        system = spec.system_pool
        pod = k8s.core.v1.PodSpecArgs(
            containers=[container],
            restart_policy="Never",
            service_account_name=rclone.SERVICE_ACCOUNT,
            automount_service_account_token=False,
            enable_service_links=False,
            # The system pool is the one pool a standby never scales to zero.
            node_selector={POOL_LABEL_KEY: system.name},
            tolerations=tolerations(spec.cloud, system, allow_spot=False) or None,
            security_context=pod_security_context(),
            volumes=volumes,
        )
        return k8s.batch.v1.CronJob(
            self.child("cronjob"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=self.namespace, labels=self.labels),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=self.cron,
                time_zone="Etc/UTC",
                # Never two copies at once: a slow run delays the next instead of racing it.
                concurrency_policy="Forbid",
                starting_deadline_seconds=starting_deadline_seconds(self.every),
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=self.labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=BACKOFF_LIMIT,
                        active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=self.labels), spec=pod),
                    ),
                ),
            ),
            opts=self.opts(depends_on=ready),
        )
