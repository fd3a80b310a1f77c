"""Disaster recovery data of a pair stack: its object store, the federation that lets the peer's
replication job read it, and (while this stack is the standby) the job that copies the primary's
store into this one.

Who declares what (each stack reads the other only through the `peer` StackReference):

- every pair stack declares its own store (`objectStore` output);
- a stack with `replication` in its own file exports `replication` (the job's namespace and
  service account) and declares the job's write identity, namespace and account whatever its
  role, and the CronJob only while it is the standby (it writes its own store through its own
  cloud's workload identity);
- every pair stack declares the identity a peer's job would read its store as, and exports how to
  reach the store with it as `replicationSource` (independent of the peer);
- a stack lets its peer's job use that identity (the peer's `oidcIssuer`, that one service
  account, read-only, this one store) whenever the peer exports `replication`, whatever this
  stack's role, and says whom it trusts in `replicationSource` (`issuer`, `subject`). The trust
  therefore already exists on both sides before a failover, and failing back needs no new grant:
  changing `role` only starts the job on one side and stops it on the other.

A peer output that is missing (the peer is not deployed yet, or deployed before this stack was)
skips the piece that needs it, or declares it with a warning naming what to deploy next; nothing
fails. A first deployment converges in three `up`s: the standby (store, issuer, `replication`),
the primary (store, trust), the standby again (the job). The other way round works too: the
primary, the standby (the job, warned that the primary does not trust it yet), the primary again.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pulumi

from components import naming
from components.dr import rclone
from components.trust.reference import read_output

if TYPE_CHECKING:
    from components.base import ClusterComponent
    from components.dr.base import ObjectStore
    from components.k8s import Workloads
    from components.spec import ClusterSpec

# One module per cloud, the same shape; only the stack's own cloud is imported.
_MODULES = {"aws": ("components.dr.aws", "S3Store"),
            "gcp": ("components.dr.gcp", "GcsStore"),
            "azure": ("components.dr.azure", "BlobStore")}


def store_class(cloud: str) -> type[ObjectStore]:
    try:
        module_name, class_name = _MODULES[cloud]
    except KeyError:
        raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(_MODULES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def deploy(name: str, cluster: ClusterComponent, spec: ClusterSpec, workloads: Workloads | None,
           peer: pulumi.StackReference) -> dict[str, Any]:
    """Declare this pair stack's object store and the replication pieces; return the stack
    outputs to export: `objectStore`, `replicationSource` (what the peer's job needs to read this
    store, and whom this stack trusts to) and, with `replication` configured, `replication`."""
    dr = spec.dr
    if dr is None:
        return {}
    store = store_class(spec.cloud)(naming.child_name(name, "store"), cluster, spec, opts=cluster.opts())
    outputs: dict[str, Any] = {"objectStore": store.summary}

    # What the peer's job reads this store as: declared first, without the peer, for trust to bind to.
    access = pulumi.Output.from_input(store.read_access())
    # Decided here, from the peer's outputs as the reference reads them, never inside an apply:
    # whatever the trust declares is in every preview and in front of the policy pack.
    trusted = _trust_peer(store, dr.peer, peer_output(peer, "replication"), peer_output(peer, "oidcIssuer"))
    outputs["replicationSource"] = access.apply(lambda values: {**values, **trusted})

    if dr.replication is not None:
        cron, every = rclone.schedule(dr.replication.interval_minutes)
        outputs["replication"] = {
            "namespace": rclone.NAMESPACE,
            "serviceAccount": rclone.SERVICE_ACCOUNT,
            "intervalMinutes": every,
            "schedule": cron,
            # The job copies only while this stack is the standby.
            "active": dr.is_standby,
        }
        from components.dr.job import ReplicationJob

        # Its identity, namespace and account stay while this stack is the primary; only the
        # CronJob comes and goes with the role, so a failover changes nothing else here.
        ReplicationJob(naming.child_name(name, "replication"), cluster, spec, store, workloads,
                       peer_output(peer, "replicationSource"), cron, opts=cluster.opts())
    return outputs


NOT_TRUSTED: dict[str, Any] = {"issuer": None, "subject": None}


def peer_output(peer: pulumi.StackReference, name: str) -> Any:
    """The value of the peer's output `name` (None when it has none): components.trust.reference."""
    return read_output(peer, name)


def _trust_peer(store: ObjectStore, peer_name: str, replication: Any, issuer: Any) -> dict[str, Any]:
    """Read-only federation for the peer's job, when the peer has replication configured; whom it
    trusts (`issuer`, `subject`), or nobody."""
    if replication is None:
        # The peer copies nothing (no replication in its file), or is not deployed yet.
        pulumi.log.info(f"peer {peer_name} exports no replication output: no federated reader on this store",
                        resource=store)
        return NOT_TRUSTED
    if issuer is None:
        pulumi.log.warn(f"peer {peer_name} has replication but no oidcIssuer output yet: trust for its job is "
                        f"skipped; deploy {peer_name}, then this stack again", resource=store)
        return NOT_TRUSTED
    try:
        subject = rclone.peer_subject(replication)
        issuer_url = rclone.peer_issuer(issuer)
    except rclone.PeerOutputError as exc:
        pulumi.log.warn(f"peer {peer_name}: {exc}; trust for its job is skipped", resource=store)
        return NOT_TRUSTED
    store.trust_reader(issuer_url, subject)
    return {"issuer": issuer_url, "subject": subject}
