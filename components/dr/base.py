"""What every cloud's object store component shares: type token, constructor, the `objectStore`
summary, the one helper that parents children (protected in prod where they hold data), and the
two grants the replication needs on it."""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi

from components import naming
from components.base import ClusterComponent
from components.dr.rclone import Access
from components.spec import ClusterSpec

# Old versions (overwritten or deleted objects) are kept this long, then expire: long enough to
# notice and undo a bad sync or a mistaken delete, short enough not to pay for history forever.
NONCURRENT_VERSION_DAYS = 30
# Multipart uploads a crashed copy left behind are billed until aborted.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7


class ObjectStore(pulumi.ComponentResource):
    """Base of S3Store, GcsStore and BlobStore: one private, versioned, KMS-encrypted, TLS-only
    store per pair stack, with a lifecycle on old versions.

    Subclasses set TYPE and implement `_build` (the store; returns the `objectStore` summary),
    `grant_writer` (this cluster's own workload identity, write on this store only),
    `read_access` (the identity a peer's job reads this store as, and how to reach it) and
    `trust_reader` (the federation that lets exactly one peer service account be that identity).

    `read_access` never depends on the peer, so the peer can plan its job from this stack's
    outputs even before this stack knows the peer's issuer; only `trust_reader` needs it.
    """

    TYPE: ClassVar[str]

    def __init__(self, name: str, cluster: ClusterComponent, spec: ClusterSpec,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.component_name = name
        self.cluster = cluster
        self.spec = spec
        self.tags = cluster.tags
        self.summary: dict[str, Any] = self._build(name, cluster, spec)
        self.register_outputs({"objectStore": self.summary})

    def _build(self, name: str, cluster: ClusterComponent, spec: ClusterSpec) -> dict[str, Any]:
        raise TypeError(f"{type(self).__name__} does not declare a store")

    def grant_writer(self, namespace: str, service_account: str) -> Access:
        """Declare this cluster's identity for the job's service account, with write on this store."""
        raise TypeError(f"{type(self).__name__} grants no writer")

    def read_access(self) -> dict[str, Any]:
        """Declare what a peer's job reads this store as (usable by no one until `trust_reader`);
        return what that job needs to reach the store with it (the `replicationSource` output)."""
        raise TypeError(f"{type(self).__name__} declares no reader")

    def trust_reader(self, issuer: str, subject: str) -> None:
        """Declare read-only access to this store for `subject` of the cluster whose tokens `issuer`
        signs, and for nothing else."""
        raise TypeError(f"{type(self).__name__} trusts no reader")

    def opts(self, *, protect_in_prod: bool = False, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child: always parented here; `protect_in_prod` guards what holds data."""
        if protect_in_prod and self.spec.is_prod:
            kwargs["protect"] = True
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def child(self, *parts: str) -> str:
        return naming.child_name(self.component_name, *parts)
