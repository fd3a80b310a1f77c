"""Every configuration value of the wrong type is a `config error:` line, never a traceback.

A property over every key of the contract (stack-config.md, and the keys the README documents:
each module's key tuple), at every place it can appear in each example stack: hypothesis puts a
value of another type there (maps, lists, numbers, strings, null, booleans, nested) and the real
loader the plan runs, then the CLI's `check` and `plan` entry, must answer with a ConfigError (exit 2) or accept it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from infra.config import loader
from infra.config import services as services_config
from infra.config import tls as tls_config
from infra.config.errors import ConfigError
from infra.config.stackfiles import all_stacks, read_stack_config, stack_file
from infra.dr import pair
from infra.offline.plan import _check_config
from infra.traffic import config as traffic_config
from tests.test_cli import cli_in_process

PROJECT = "im-platform"
# Where each block's keys live (a "*" is every entry of a map), and the keys the program reads there.
CONTRACT_KEYS: dict[str, list[tuple[tuple[Any, ...], tuple[str, ...]]]] = {
    "im-platform:cluster": [((), loader.CLUSTER_KEYS + loader.EXISTING_CLUSTER_KEYS), (("network",), loader.NETWORK_KEYS),
                            (("nodePools", "*"), loader.POOL_KEYS)],
    "im-platform:services": [(("*",), services_config.SERVICE_KEYS), (("*", "replicas"), services_config.REPLICA_KEYS),
                             (("*", "egress", 0), services_config.EGRESS_KEYS)],
    "im-platform:capacityBuffer": [(("*",), services_config.BUFFER_KEYS)],
    "im-platform:guardrails": [((), loader.GUARDRAIL_KEYS)],
    "im-platform:cost": [((), loader.COST_KEYS), (("commitment",), ("term", "coverage"))],
    "im-platform:tls": [((), tls_config.TLS_KEYS)],
    "im-platform:dr": [((), pair.DR_KEYS), (("standby",), pair.STANDBY_KEYS), (("replication",), pair.REPLICATION_KEYS)],
    "im-platform:traffic": [((), traffic_config.TRAFFIC_KEYS), (("healthCheck",), traffic_config.HEALTH_KEYS)],
}
SCALAR_KEYS = ("im-platform:cloud", "im-platform:environment")


def _values(stack: str) -> dict[str, str]:
    return read_stack_config(stack_file(stack), PROJECT)[0]


def _existing_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _existing_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _existing_paths(v, (*prefix, i))
    return found


def _maps_at(doc: Any, where: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    outs: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    for part in where:
        nxt = []
        for path, obj in outs:
            if part == "*" and isinstance(obj, dict):
                nxt += [((*path, k), v) for k, v in obj.items()]
            elif isinstance(obj, dict) and part in obj:
                nxt.append(((*path, part), obj[part]))
            elif isinstance(obj, list) and isinstance(part, int) and part < len(obj):
                nxt.append(((*path, part), obj[part]))
        outs = nxt
    return [path for path, obj in outs if isinstance(obj, dict)]


def targets() -> list[tuple[str, str, tuple[Any, ...]]]:
    """(stack, key, path inside the key's value) for every place a value can be put."""
    out: set[tuple[str, str, tuple[Any, ...]]] = set()
    for stack in all_stacks():
        values = _values(stack)
        for key in SCALAR_KEYS:
            if key in values:
                out.add((stack, key, ()))
        for key, places in CONTRACT_KEYS.items():
            doc = json.loads(values[key]) if key in values else {}
            out.update((stack, key, p) for p in _existing_paths(doc))
            for where, keys in places:
                for at in _maps_at(doc, where):
                    out.update((stack, key, (*at, k)) for k in keys)
    return sorted(out, key=repr)


TARGETS = targets()
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
wrong_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                            max_leaves=6)


def with_value(stack: str, key: str, path: tuple[Any, ...], value: Any) -> tuple[dict[str, str], Any]:
    """The stack's config map with `value` at `path` of `key`, and the key's new structure."""
    values = dict(_values(stack))
    if key in SCALAR_KEYS:
        doc = value
    else:
        doc = json.loads(values[key]) if key in values else {}
        if path:
            target = doc
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = copy.deepcopy(value)
        else:
            doc = copy.deepcopy(value)
    values[key] = doc if isinstance(doc, str) else json.dumps(doc)
    return values, doc


def test_every_contract_key_is_a_target() -> None:
    keys = {(key, p[-1]) for _, key, p in TARGETS if p and isinstance(p[-1], str)}
    for key, places in CONTRACT_KEYS.items():
        for _, names in places:
            assert {(key, n) for n in names} <= keys, key
    assert len(TARGETS) > 300


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), value=wrong_values)
def test_a_value_of_any_type_anywhere_is_accepted_or_one_config_error(target: tuple[str, str, tuple[Any, ...]],
                                                                        value: Any) -> None:
    stack, key, path = target
    config, _ = with_value(stack, key, path, value)
    try:
        _check_config(stack, config, PROJECT)
    except ConfigError as exc:
        first = str(exc).splitlines()[0]
        assert first.startswith("config error: im-platform:") or first.startswith("config error: "), first


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), value=wrong_values)
def test_the_cli_answers_a_wrong_type_with_exit_2_and_no_traceback(tmp_path: Path, target: tuple[str, str, tuple[Any, ...]],
                                                                   value: Any) -> None:
    stack, key, path = target
    config, doc = with_value(stack, key, path, value)
    try:
        _check_config(stack, config, PROJECT)
        refused = False
    except ConfigError:
        refused = True
    assume(refused)  # an accepted value plans: the plans of the examples are tested elsewhere
    raw = yaml.safe_load(stack_file(stack).read_text())
    raw["config"][key] = doc
    path_file = tmp_path / f"Pulumi.{stack}.yaml"
    path_file.write_text(yaml.safe_dump(raw))
    for command in ("check", "plan"):
        result = cli_in_process(command, "--config-file", str(path_file))
        assert result.returncode == 2, (command, result.stderr)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("Planning ")]
        assert lines and lines[0].startswith("config error: "), result.stderr
        assert "Traceback" not in result.stderr and "error: TypeError" not in result.stderr
