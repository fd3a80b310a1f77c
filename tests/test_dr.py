"""DR pairs (im-platform:dr): validation against the peer's file, the warm standby, the pair's
outputs and the offline StackReference to the peer."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import stackfiles
from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from infra.offline.plan import UNKNOWN, Plan, plan_stack, read_stack_config
from tests.plans import sharing_plans

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = {
    "aws": {"aws:region": "eu-west-1"},
    "gcp": {"gcp:project": "im-platform-test", "gcp:region": "europe-west1"},
    "azure": {"azure-native:location": "westeurope"},
}
# Apart on every range, so the pair's networks can be connected.
NETWORKS = [
    {"cidr": "10.20.0.0/16", "podCidr": "100.64.0.0/14", "serviceCidr": "172.20.0.0/20"},
    {"cidr": "10.50.0.0/16", "podCidr": "100.72.0.0/14", "serviceCidr": "172.24.0.0/20"},
]
SERVICES = {
    "gateway": {"image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "pool": "gateway", "cpu": "1",
                "memory": "2Gi", "replicas": {"min": 3, "max": 60}, "public": True},
    "logic": {"image": "ghcr.io/acme/im-logic:2.4.1", "port": 9090, "pool": "logic", "cpu": "1",
              "memory": "2Gi", "replicas": {"min": 2, "max": 20}, "allowFrom": ["gateway"]},
}


def stack_doc(cloud: str, network: dict[str, str], dr: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "pulumi:disable-default-providers": ["kubernetes"],
        **PROVIDER[cloud],
        "im-platform:cloud": cloud,
        "im-platform:environment": "prod",
        "im-platform:cluster": {
            "kubernetesVersion": "1.33",
            "network": dict(network),
            "apiAllowedCidrs": ["203.0.113.0/24"],
            "nodePools": {
                "system": {"vcpu": 4, "memoryGiB": 16, "minNodes": 2, "maxNodes": 4},
                "gateway": {"vcpu": 8, "memoryGiB": 16, "minNodes": 3, "maxNodes": 40},
                "logic": {"vcpu": 8, "memoryGiB": 32, "minNodes": 2, "maxNodes": 30},
            },
        },
        "im-platform:services": copy.deepcopy(SERVICES),
    }
    if dr is not None:
        config["im-platform:dr"] = dr
    return {"config": config}


def write(folder: Path, stack: str, doc: dict[str, Any]) -> Path:
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def write_pair(folder: Path, a: str, b: str, clouds: tuple[str, str], *, roles: tuple[str, str] = ("primary", "standby"),
               standby: dict[str, Any] | None = None) -> tuple[Path, Path]:
    extra = {"standby": standby} if standby else {}
    pa = write(folder, a, stack_doc(clouds[0], NETWORKS[0], {"peer": b, "role": roles[0], **extra}))
    pb = write(folder, b, stack_doc(clouds[1], NETWORKS[1], {"peer": a, "role": roles[1], **extra,
                                                               "replication": {"intervalMinutes": 15}}))
    return pa, pb


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder of stack files searched before stacks/, as `plan --config-file` searches."""
    stackfiles.EXTRA_DIRS[:] = [tmp_path]
    yield tmp_path
    stackfiles.EXTRA_DIRS.clear()


def load(path: Path) -> Any:
    values, _ = read_stack_config(path, "im-platform")
    return load_spec(values, project="im-platform", stack=path.name.split(".")[1])


def edit(path: Path, change: Any) -> Path:
    doc = yaml.safe_load(path.read_text())
    change(doc["config"])
    path.write_text(yaml.safe_dump(doc))
    return path


# ---------------------------------------------------------------------------------------------
# Validation: one error naming the key, the value and what is expected.


def test_a_valid_pair_reads_the_peer_cloud_and_lowers_the_standby(folder: Path) -> None:
    pa, pb = write_pair(folder, "p-aws", "p-gcp", ("aws", "gcp"), standby={"minNodes": {"gateway": 1}})
    primary, standby = load(pa), load(pb)
    assert primary.dr.peer == "p-gcp" and primary.dr.peer_cloud == "gcp" and primary.dr.is_primary
    assert standby.dr.peer_cloud == "aws" and standby.dr.replication.interval_minutes == 15
    assert {p.name: p.min_nodes for p in primary.node_pools} == {"system": 2, "gateway": 3, "logic": 2}
    # Listed pools at their value, unlisted user pools at 0, system keeps its own; maxNodes unchanged.
    assert {p.name: p.min_nodes for p in standby.node_pools} == {"system": 2, "gateway": 1, "logic": 0}
    assert [p.max_nodes for p in standby.node_pools] == [p.max_nodes for p in primary.node_pools]
    assert {s.name: s.min_replicas for s in standby.services} == {"gateway": 1, "logic": 1}
    assert {s.name: s.max_replicas for s in standby.services} == {"gateway": 60, "logic": 20}


BAD = [
    ("missing peer", lambda c: c["im-platform:dr"].update(peer="p-nowhere"),
     'im-platform:dr.peer is "p-nowhere": no stack file Pulumi.p-nowhere.yaml: expected an existing cluster stack'),
    ("same cloud", lambda c: (c.update({"im-platform:cloud": "gcp", "gcp:project": "im-platform-test",
                                        "gcp:region": "europe-west1"}), c.pop("aws:region")),
     'im-platform:dr.peer is "p-gcp", but p-gcp is on gcp too: expected a stack on another cloud'),
    ("both standby", lambda c: c["im-platform:dr"].update(role="standby"),
     'im-platform:dr.role is "standby", but p-gcp is standby too: expected one primary and one standby '
     "(with two standbys nobody runs at full size)"),
    ("bad role", lambda c: c["im-platform:dr"].update(role="leader"),
     'im-platform:dr.role is "leader": expected one of primary, standby'),
    ("overlap", lambda c: c["im-platform:cluster"]["network"].update(podCidr="100.72.0.0/14"),
     'im-platform:cluster.network.podCidr is "100.72.0.0/14", but p-gcp\'s network.podCidr is 100.72.0.0/14: '
     "the ranges of the pair p-aws and p-gcp must not overlap (so the two networks can be connected)"),
    ("unknown pool", lambda c: c["im-platform:dr"].update(standby={"minNodes": {"gatewy": 1}}),
     "im-platform:dr.standby.minNodes.gatewy is 1: unknown pool (expected one of: gateway, logic, system); did you mean 'gateway'?"),
    ("above maxNodes", lambda c: c["im-platform:dr"].update(standby={"minNodes": {"gateway": 41}}),
     "im-platform:dr.standby.minNodes.gateway is 41, but pool gateway has maxNodes 40: expected <= 40"),
    ("replicasMin above a max", lambda c: c["im-platform:dr"].update(standby={"replicasMin": 21}),
     "im-platform:dr.standby.replicasMin is 21, but tier logic has replicas.max 20: expected <= 20"),
    ("replicasMin zero", lambda c: c["im-platform:dr"].update(standby={"replicasMin": 0}),
     "im-platform:dr.standby.replicasMin is 0: expected a whole number >= 1"),
    ("interval", lambda c: c["im-platform:dr"].update(replication={"intervalMinutes": 2}),
     "im-platform:dr.replication.intervalMinutes is 2: expected a whole number of minutes from 5 to 1440"),
    ("unknown key", lambda c: c["im-platform:dr"].update(peers="x"),
     'im-platform:dr.peers is an unknown key (expected one of: peer, role, standby, replication); did you mean im-platform:dr.peer?'),
    ("itself", lambda c: c["im-platform:dr"].update(peer="p-aws"),
     'im-platform:dr.peer is "p-aws": expected the other stack of the pair, not this stack itself'),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_pair_configuration_is_one_error(folder: Path, case: str, change: Any, message: str) -> None:
    pa, _ = write_pair(folder, "p-aws", "p-gcp", ("aws", "gcp"))
    with pytest.raises(ConfigError) as err:
        load(edit(pa, change))
    assert str(err.value) == f"config error: {message}"


def test_a_peer_that_does_not_name_this_stack_back(folder: Path) -> None:
    pa, pb = write_pair(folder, "p-aws", "p-gcp", ("aws", "gcp"))
    edit(pb, lambda c: c["im-platform:dr"].update(peer="p-other"))
    with pytest.raises(ConfigError, match="but p-gcp has im-platform:dr.peer p-other: expected it to name p-aws back"):
        load(pa)
    edit(pb, lambda c: c.pop("im-platform:dr"))
    with pytest.raises(ConfigError, match="but p-gcp has no im-platform:dr: expected it to name p-aws back"):
        load(pa)


def test_other_environment_and_invalid_peer_file(folder: Path) -> None:
    pa, pb = write_pair(folder, "p-aws", "p-gcp", ("aws", "gcp"))
    edit(pb, lambda c: c.update({"im-platform:environment": "staging"}))
    with pytest.raises(ConfigError, match="but p-gcp is environment staging, this stack prod: expected the same"):
        load(pa)
    edit(pb, lambda c: c["im-platform:dr"].update(role="boss"))
    with pytest.raises(ConfigError, match=r"p-gcp.*is invalid: im-platform:dr.role is \"boss\""):
        load(pa)


def test_cli_exits_2_with_one_line_for_a_missing_peer(tmp_path: Path) -> None:
    pa, _ = write_pair(tmp_path, "p-aws", "p-azure", ("aws", "azure"))
    edit(pa, lambda c: c["im-platform:dr"].update(peer="p-gone"))
    result = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--config-file", str(pa)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("Planning ")]
    assert lines == ['config error: im-platform:dr.peer is "p-gone": no stack file Pulumi.p-gone.yaml: '
                     "expected an existing cluster stack"], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# ---------------------------------------------------------------------------------------------
# Plans of pairs on every cloud combination, both roles.

_PLANS: dict[tuple[str, ...], Plan] = {}


def pair_plans(tmp_path_factory: pytest.TempPathFactory, clouds: tuple[str, str],
               roles: tuple[str, str] = ("primary", "standby")) -> tuple[Plan, Plan]:
    key = (*clouds, *roles)
    if key not in _PLANS:
        folder = tmp_path_factory.mktemp("-".join(key))
        a, b = (f"pair-{c}" for c in clouds)
        pa, pb = write_pair(folder, a, b, clouds, roles=roles)
        with sharing_plans():
            _PLANS[key] = plan_stack(config_file=pa)
            _PLANS[(*key, "b")] = plan_stack(config_file=pb)
    return _PLANS[key], _PLANS[(*key, "b")]


def unknowns(value: Any) -> bool:
    return UNKNOWN in json.dumps(value)


@pytest.mark.parametrize("clouds", [("aws", "gcp"), ("gcp", "azure"), ("aws", "azure")], ids="+".join)
def test_pairs_plan_in_both_roles_with_dr_gateway_and_peer_reference(
        tmp_path_factory: pytest.TempPathFactory, clouds: tuple[str, str]) -> None:
    for plan, role, peer in zip(pair_plans(tmp_path_factory, clouds), ("primary", "standby"),
                                [f"pair-{c}" for c in reversed(clouds)], strict=True):
        assert plan.outputs["dr"] == {"role": role, "peer": peer}
        gateway = plan.outputs["gateway"]
        assert gateway["service"] == "gateway" and gateway["port"] == 443 and gateway["healthPath"] == "/healthz"
        assert gateway["address"] and not unknowns(gateway), gateway
        ref = plan.one("pulumi:pulumi:StackReference")
        assert ref["inputs"]["name"] == f"organization/im-platform/{peer}"
        assert not unknowns(plan.outputs)


def test_the_peer_reference_reads_the_peer_planned_outputs(tmp_path_factory: pytest.TempPathFactory) -> None:
    from infra.offline.plan import reference_outputs

    primary, standby = pair_plans(tmp_path_factory, ("aws", "azure"))
    stackfiles.EXTRA_DIRS[:] = [tmp_path_factory.getbasetemp() / next(
        p.name for p in tmp_path_factory.getbasetemp().iterdir() if p.name.startswith("aws-azure-primary-standby"))]
    try:
        outputs, secret_names = reference_outputs("pair-azure", ("pair-aws",), "im-platform")
        # The peer's reference back to the referrer reads a shallow plan of it, so no recursion.
        assert outputs["dr"] == {"role": "standby", "peer": "pair-aws"}
        assert outputs["gateway"] == standby.outputs["gateway"]
        assert "kubeconfig" in secret_names
        # A stack already up the chain is planned once more, shallow: its own outputs, its own
        # references answering "not deployed yet" (so the cycle ends there).
        shallow, _ = reference_outputs("pair-aws", ("pair-aws", "pair-azure"), "im-platform")
        assert shallow["dr"] == {"role": "primary", "peer": "pair-azure"}
        assert not unknowns(shallow)
    finally:
        stackfiles.EXTRA_DIRS.clear()


# ---------------------------------------------------------------------------------------------
# A failover's diff of a cluster stack is only minimums.


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def test_flipping_role_changes_only_minimums(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, as_standby = pair_plans(tmp_path_factory, ("aws", "azure"))
    _, as_primary = pair_plans(tmp_path_factory, ("aws", "azure"), roles=("standby", "primary"))
    # Same stack name in both: plan pair-azure as primary (its peer pair-aws standby).
    assert as_standby.stack == as_primary.stack == "pair-azure"
    before = {r["urn"]: r for r in as_standby.resources}
    after = {r["urn"]: r for r in as_primary.resources}
    # The one resource a role adds: the replication CronJob runs only while standby.
    only_standby = sorted(set(before) - set(after))
    assert set(after) <= set(before), "the primary has nothing the standby lacks"
    assert [before[u]["type"] for u in only_standby] == ["kubernetes:batch/v1:CronJob"], only_standby
    assert "Replication" in only_standby[0]
    before = {u: r for u, r in before.items() if u in after}
    changed = [f"{urn}{p}" for urn in before for p in _diff(before[urn], after[urn])]
    assert changed, "the standby's minimums must differ from the primary's"
    for urn in before:
        if before[urn]["type"] == "pulumi:pulumi:StackReference":
            continue
        # A field the engine ignores after creation (the node count the autoscaler owns) is no diff.
        ignored = set(before[urn]["options"]["ignoreChanges"])
        for path in _diff(before[urn], after[urn]):
            leaf = path.rsplit(".", 1)[-1]
            initial = path.startswith(".inputs.") and path[len(".inputs."):] in ignored
            assert leaf.lower().startswith("min") or leaf == "replicas" or initial, f"{urn}{path}"
    output_diff = _diff(as_standby.outputs, as_primary.outputs)
    assert ".dr.role" in output_diff
    assert all(p in (".dr.role", ".replication.active") or p.rsplit(".", 1)[-1].startswith("min")
               for p in output_diff), output_diff
