"""Read `im-platform:dr` into a `DrSpec`, check it against the peer's own file, lower a standby.

Every rule raises one `ConfigError` naming the key, the value and what is expected. The peer's
file is read with the same validated reader (`load_peer`, handed in by `infra.config.loader`), which never
checks the peer's own peer: validation stops at one hop.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from components.spec import (
    DEFAULT_REPLICATION_INTERVAL_MINUTES,
    DEFAULT_STANDBY_REPLICAS_MIN,
    DR_ROLES,
    KUBERNETES,
    ClusterSpec,
    DrSpec,
    ReplicationSpec,
)
from infra.config.errors import ConfigError
from infra.config.readers import NS, _did_you_mean, as_int, as_mapping, as_str, check_keys, optional, required

DR_KEY = f"{NS}dr"
DR_KEYS = ("peer", "role", "standby", "replication")
STANDBY_KEYS = ("minNodes", "replicasMin")
REPLICATION_KEYS = ("intervalMinutes",)
INTERVAL_RANGE = (5, 1440)  # five minutes to a day
STACK_NAME_WHAT = "a stack name such as prod-azure (letters, digits, '-', '_' or '.')"
_NETWORK_KEYS = (("cidr", "network_cidr"), ("podCidr", "pod_cidr"), ("serviceCidr", "service_cidr"))

# The peer's validated spec (its own dr block read, not checked against its peer), or None when
# no stack file of that name exists.
PeerLoader = Callable[[str], "ClusterSpec | None"]


def _read_min_nodes(path: str, value: Any, spec: ClusterSpec) -> tuple[tuple[str, int], ...]:
    pools = {p.name: p for p in spec.node_pools}
    out = []
    for name, raw in as_mapping(path, value).items():
        item = f"{path}.{name}"
        if name not in pools:
            raise ConfigError(item, raw, f"unknown pool (expected one of: {', '.join(pools)}){_did_you_mean(str(name), list(pools))}")
        pool = pools[name]
        count = as_int(item, raw, 1 if pool.is_system else 0)
        if count > pool.max_nodes:
            raise ConfigError(item, count, f"but pool {name} has maxNodes {pool.max_nodes}: expected <= {pool.max_nodes}")
        out.append((str(name), count))
    return tuple(sorted(out))


def read_dr(value: Any, spec: ClusterSpec, load_peer: PeerLoader | None) -> DrSpec:
    """This stack's half of the pair. `load_peer` None: read only this block (the peer's own read)."""
    dr = as_mapping(DR_KEY, value)
    check_keys(DR_KEY, dr, DR_KEYS)
    peer = required(DR_KEY, dr, "peer", lambda p, v: as_str(p, v, what=STACK_NAME_WHAT))
    if peer == spec.stack:
        raise ConfigError(f"{DR_KEY}.peer", peer, "expected the other stack of the pair, not this stack itself")
    role = required(DR_KEY, dr, "role", lambda p, v: v)
    if role not in DR_ROLES:
        raise ConfigError(f"{DR_KEY}.role", role, f"expected one of {', '.join(DR_ROLES)}")

    standby_path = f"{DR_KEY}.standby"
    standby: Mapping[str, Any] = optional(DR_KEY, dr, "standby", as_mapping, {})
    check_keys(standby_path, standby, STANDBY_KEYS)
    no_pools: tuple[tuple[str, int], ...] = ()
    min_nodes = optional(standby_path, standby, "minNodes", lambda p, v: _read_min_nodes(p, v, spec), no_pools)
    replicas_min = optional(standby_path, standby, "replicasMin", lambda p, v: as_int(p, v, 1), DEFAULT_STANDBY_REPLICAS_MIN)
    for service in spec.services:
        if replicas_min > service.max_replicas:
            raise ConfigError(f"{standby_path}.replicasMin", replicas_min,
                              f"but tier {service.name} has replicas.max {service.max_replicas}: expected <= {service.max_replicas}")

    replication = None
    if dr.get("replication") is not None:
        rep_path = f"{DR_KEY}.replication"
        rep = as_mapping(rep_path, dr["replication"])
        check_keys(rep_path, rep, REPLICATION_KEYS)
        low, high = INTERVAL_RANGE
        interval = optional(rep_path, rep, "intervalMinutes", as_int, DEFAULT_REPLICATION_INTERVAL_MINUTES)
        if not low <= interval <= high:
            raise ConfigError(f"{rep_path}.intervalMinutes", interval, f"expected a whole number of minutes from {low} to {high}")
        replication = ReplicationSpec(interval_minutes=interval)

    peer_cloud = peer_role = ""
    if load_peer is not None:
        peer_spec = load_peer(peer)
        if peer_spec is None:
            raise ConfigError(f"{DR_KEY}.peer", peer, f"no stack file Pulumi.{peer}.yaml: expected an existing cluster stack")
        check_peer(spec, role, peer_spec)
        peer_cloud = peer_spec.cloud
        peer_role = peer_spec.dr.role if peer_spec.dr is not None else ""
    return DrSpec(peer=peer, role=role, peer_cloud=peer_cloud, standby_min_nodes=min_nodes,
                  standby_replicas_min=replicas_min, replication=replication, peer_role=peer_role)


def two_primaries_warning(first: str, second: str) -> str:
    """The one warning for a pair whose two stacks are both primary (named in a fixed order, so the
    pair stacks and the traffic stack say the same)."""
    a, b = sorted((first, second))
    return (f"{DR_KEY}.role is primary on both {a} and {b}: a failover between its promote and its "
            f"demote, or a demotion left pending; both run at full size until one is demoted "
            f"(rerun the failover with its journal, or set the other stack's role to standby)")


def pair_warnings(spec: ClusterSpec) -> list[str]:
    """What a valid but transitional pair state says on every plan, check and `pulumi up`."""
    dr = spec.dr
    if dr is not None and dr.is_primary and dr.peer_role == "primary":
        return [two_primaries_warning(spec.stack, dr.peer)]
    return []


def check_peer(spec: ClusterSpec, role: str, peer: ClusterSpec) -> None:
    """The rules that need both files: another cloud, same environment, named back, not both
    standby, no overlapping ranges."""
    name = peer.stack
    if peer.cloud == KUBERNETES:
        raise ConfigError(f"{DR_KEY}.peer", name, f"but {name} is a {KUBERNETES} stack (an existing cluster, no cloud "
                                                  "resources): expected a stack on another cloud")
    if peer.cloud == spec.cloud:
        raise ConfigError(f"{DR_KEY}.peer", name, f"but {name} is on {peer.cloud} too: expected a stack on another cloud")
    if peer.environment != spec.environment:
        raise ConfigError(f"{DR_KEY}.peer", name,
                          f"but {name} is environment {peer.environment}, this stack {spec.environment}: expected the same environment")
    if peer.dr is None or peer.dr.peer != spec.stack:
        named = "no im-platform:dr" if peer.dr is None else f"im-platform:dr.peer {peer.dr.peer}"
        raise ConfigError(f"{DR_KEY}.peer", name, f"but {name} has {named}: expected it to name {spec.stack} back as its peer")
    if peer.dr.role == role == "standby":
        # Two primaries is a valid transitional state (`pair_warnings`); two standbys leaves nobody
        # at full size.
        raise ConfigError(f"{DR_KEY}.role", role, f"but {name} is {role} too: expected one primary and one standby "
                                                  "(with two standbys nobody runs at full size)")
    for key, attr in _NETWORK_KEYS:
        mine = ipaddress.ip_network(getattr(spec, attr))
        for peer_key, peer_attr in _NETWORK_KEYS:
            theirs = ipaddress.ip_network(getattr(peer, peer_attr))
            if mine.overlaps(theirs):
                raise ConfigError(f"{NS}cluster.network.{key}", str(mine),
                                  f"but {name}'s network.{peer_key} is {theirs}: the ranges of the pair "
                                  f"{spec.stack} and {name} must not overlap (so the two networks can be connected)")


def apply_role(spec: ClusterSpec, dr: DrSpec) -> ClusterSpec:
    """A standby is warm: only pool `min_nodes`, tier `min_replicas` and the tiers' schedule windows
    are lowered.

    Listed pools idle at their value, other user pools at 0, system at its own minimum; every tier's
    minimum becomes `replicasMin` (even in prod: a standby serves no traffic, and its disruption
    budgets allow one eviction at a time whatever the count). A schedule window is a floor for the
    traffic the primary serves: on the standby it would raise the tier every evening with no load,
    so the standby has none (promote brings them back with the minimums). A primary is unchanged.
    """
    spec = dataclasses.replace(spec, dr=dr)
    if not dr.is_standby:
        return spec
    listed = dict(dr.standby_min_nodes)
    pools = tuple(
        dataclasses.replace(p, min_nodes=listed.get(p.name, p.min_nodes if p.is_system else 0)) for p in spec.node_pools
    )
    services = tuple(dataclasses.replace(
        s, min_replicas=dr.standby_replicas_min,
        scaling=dataclasses.replace(s.scaling, schedule=()) if s.scaling is not None else None) for s in spec.services)
    return dataclasses.replace(spec, node_pools=pools, services=services)
