"""A pair stack's DR data pieces planned under the recording monitor, with the peer stack's outputs
served by a StackReference mock: the cluster, its Kubernetes workloads and `components.dr.deploy`,
exactly as the program wires them, for one half of a pair built in code.

`plan_pair` plans both halves in the documented first-deployment order (standby, primary, standby),
each time handing one half the other's latest stack outputs, as a real deployment would.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockResourceArgs

from components.spec import ClusterSpec, DrSpec, ReplicationSpec
from infra.config.loader import load_spec
from infra.offline.mocks import PlanMocks
from infra.offline.plan import Plan, project_name, run_recorded
from tests.conftest import make_config

STACK_REFERENCE = "pulumi:pulumi:StackReference"


class PeerMocks(PlanMocks):
    """The plan's mocks, plus a StackReference that answers with the given peer outputs."""

    def __init__(self, peer_outputs: dict[str, Any]) -> None:
        self.peer_outputs = peer_outputs

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            name = str(args.inputs.get("name") or args.name)
            return name, {"name": name, "outputs": dict(self.peer_outputs), "secretOutputNames": []}
        return super().new_resource(args)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class DrPlan:
    plan: Plan
    warnings: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, Any]:
        return self.plan.revealed_outputs


def spec_for(cloud: str, stack: str, peer: str, peer_cloud: str, role: str, *, replication: int | None = None,
             environment: str = "prod") -> ClusterSpec:
    config = make_config(cloud, environment=environment)
    spec = load_spec(config, project="im-platform", stack=stack)
    dr = DrSpec(peer=peer, role=role, peer_cloud=peer_cloud,
                replication=ReplicationSpec(interval_minutes=replication) if replication else None)
    return replace(spec, dr=dr)


def _program(spec: ClusterSpec) -> None:
    from components import dr, k8s, naming, registry

    name = naming.cluster_name(spec.stack)
    cluster = registry.cluster_class(spec.cloud)(name, spec)
    workloads = k8s.deploy(name, cluster, spec)
    assert spec.dr is not None
    peer = pulumi.StackReference(f"organization/im-platform/{spec.dr.peer}")
    outputs = dr.deploy(name, cluster, spec, workloads, peer)
    pulumi.export("cloud", spec.cloud)
    pulumi.export("oidcIssuer", cluster.oidc_issuer)
    for key, value in outputs.items():
        pulumi.export(key, value)


_HALVES: dict[tuple[str, str], bytes] = {}


def plan_half(spec: ClusterSpec, peer_outputs: dict[str, Any]) -> DrPlan:
    """Plan one half with the peer's outputs; warnings the program logged come back too. Planned once
    per spec and peer outputs in a test session; each call returns a copy the caller owns."""
    key = (repr(spec), json.dumps(peer_outputs, sort_keys=True))
    if key not in _HALVES:
        _HALVES[key] = pickle.dumps(_plan_half(spec, peer_outputs), pickle.HIGHEST_PROTOCOL)
    half: DrPlan = pickle.loads(_HALVES[key])
    return half


def _plan_half(spec: ClusterSpec, peer_outputs: dict[str, Any]) -> DrPlan:
    collect = _Collect()
    logger = logging.getLogger("im-platform.test-dr")
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        plan = run_recorded(lambda: _program(spec), spec.stack, make_config(spec.cloud, environment=spec.environment),
                            mocks=PeerMocks(peer_outputs), project=project_name(), log=logger, organization=None)
    finally:
        logger.removeHandler(collect)
    warnings = [r.getMessage() for r in collect.records if r.levelno == logging.WARNING]
    return DrPlan(plan, warnings)


@dataclass
class Pair:
    primary: DrPlan
    standby: DrPlan
    standby_first: DrPlan  # the standby's first deployment, before the primary existed


def plan_pair(standby_cloud: str, primary_cloud: str, *, interval: int = 15, environment: str = "prod") -> Pair:
    """A pair deployed in the documented order: standby, primary, standby again."""
    primary_stack, standby_stack = f"{environment}-{primary_cloud}", f"{environment}-{standby_cloud}"
    standby_spec = spec_for(standby_cloud, standby_stack, primary_stack, primary_cloud, "standby",
                            replication=interval, environment=environment)
    primary_spec = spec_for(primary_cloud, primary_stack, standby_stack, standby_cloud, "primary",
                            environment=environment)
    first = plan_half(standby_spec, {})
    primary = plan_half(primary_spec, json.loads(json.dumps(first.outputs)))
    standby = plan_half(standby_spec, json.loads(json.dumps(primary.outputs)))
    return Pair(primary=primary, standby=standby, standby_first=first)
