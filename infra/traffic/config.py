"""Read `im-platform:traffic` into a `TrafficSpec`, checking the pair it names in their own files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.naming import PROJECT
from components.spec import (
    DEFAULT_HEALTH_FAILURE_THRESHOLD,
    DEFAULT_HEALTH_INTERVAL_SECONDS,
    DEFAULT_TRAFFIC_TTL,
    HEALTH_CHECK_INTERVALS,
    KUBERNETES,
    TRAFFIC_PROVIDERS,
    HealthCheckSpec,
    TrafficSpec,
)
from infra.config.errors import MISSING, ConfigError
from infra.config.loader import PROVIDER_KEYS, check_aws_region, load_peer_spec
from infra.config.namespaces import check_namespaces
from infra.config.readers import NS, _did_you_mean, as_int, as_list, as_mapping, as_str, check_keys, optional, required, structured
from infra.dr.pair import two_primaries_warning

TRAFFIC_KEY = f"{NS}traffic"
TRAFFIC_KEYS = ("provider", "zone", "name", "stacks", "active", "ttl", "healthCheck")
HEALTH_KEYS = ("path", "intervalSeconds", "failureThreshold")
# What a provider needs besides the traffic block (Route 53 is global; the provider still wants a region).
PROVIDER_CONFIG = {"route53": "aws:region"}
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/%-]*$")
TTL_RANGE = (1, 60)  # longer TTLs keep clients on a failed stack after the switch
THRESHOLD_RANGE = (1, 10)  # what Route 53 accepts


def is_traffic(config: Mapping[str, Any]) -> bool:
    return TRAFFIC_KEY in config


def _dns_name(path: str, value: Any) -> str:
    text = as_str(path, value, what="a lowercase DNS name such as chat.example.com")
    if not DNS_NAME_RE.match(text.rstrip(".")):
        raise ConfigError(path, value, "expected a lowercase DNS name such as chat.example.com")
    return text.rstrip(".")


def _ranged(path: str, value: Any, low: int, high: int) -> int:
    number = as_int(path, value)
    if not low <= number <= high:
        raise ConfigError(path, number, f"expected a whole number from {low} to {high}")
    return number


def load_traffic(config: Mapping[str, Any], *, project: str, stack: str) -> TrafficSpec:
    check_namespaces(config, PROJECT)
    for key in config:
        if key.startswith(NS) and key != TRAFFIC_KEY:
            raise ConfigError(key, structured(key, config[key]) if key.endswith(("cluster", "dr")) else config[key],
                              f"but this is a traffic stack ({TRAFFIC_KEY}): it declares no cluster; remove the key")
    block = as_mapping(TRAFFIC_KEY, structured(TRAFFIC_KEY, config[TRAFFIC_KEY]))
    check_keys(TRAFFIC_KEY, block, TRAFFIC_KEYS)
    provider = required(TRAFFIC_KEY, block, "provider", lambda p, v: v)
    if provider not in TRAFFIC_PROVIDERS:
        raise ConfigError(f"{TRAFFIC_KEY}.provider", provider,
                          f"expected one of {', '.join(TRAFFIC_PROVIDERS)}{_did_you_mean(str(provider), TRAFFIC_PROVIDERS)}")
    region_key = PROVIDER_CONFIG[provider]
    if region_key not in config:
        raise ConfigError(region_key, MISSING, f"required when {TRAFFIC_KEY}.provider is {provider}: an AWS region such as us-east-1")
    pattern, what = PROVIDER_KEYS["aws"][region_key]
    region = as_str(region_key, config[region_key], pattern, what)
    check_aws_region(region_key, region)

    zone = required(TRAFFIC_KEY, block, "zone", _dns_name)
    name = required(TRAFFIC_KEY, block, "name", _dns_name)
    if name == zone:
        raise ConfigError(f"{TRAFFIC_KEY}.name", name, f"but zone is {zone}: expected a name below the zone, not its apex")
    if not name.endswith("." + zone):
        raise ConfigError(f"{TRAFFIC_KEY}.name", name, f"but zone is {zone}: expected a name inside the zone, such as chat.{zone}")

    stacks_path = f"{TRAFFIC_KEY}.stacks"
    listed = required(TRAFFIC_KEY, block, "stacks", as_list)
    if len(listed) != 2 or len(set(map(str, listed))) != 2:
        raise ConfigError(stacks_path, listed, "expected exactly two different stacks: the two stacks of a DR pair")
    stacks = tuple(as_str(f"{stacks_path}[{i}]", s, what="a stack name") for i, s in enumerate(listed))
    specs = {}
    for i, other in enumerate(stacks):
        item = f"{stacks_path}[{i}]"
        try:
            spec = load_peer_spec(other, project=project)
        except ConfigError as exc:
            raise ConfigError(item, other, f"but its stack file is invalid: {exc.args[0]}") from None
        if spec is None:
            raise ConfigError(item, other, f"no stack file Pulumi.{other}.yaml: expected an existing cluster stack")
        specs[other] = spec
    for i, other in enumerate(stacks):
        item, spec = f"{stacks_path}[{i}]", specs[other]
        if spec.cloud == KUBERNETES:
            raise ConfigError(item, other, f"but {other} is a {KUBERNETES} stack (an existing cluster): expected one of "
                                           "the two cloud stacks of a DR pair")
        if spec.dr is None or spec.dr.peer != stacks[1 - i]:
            raise ConfigError(item, other, f"but {other} does not name {stacks[1 - i]} as its im-platform:dr.peer: "
                                           "expected the two stacks of one DR pair")
        if not any(s.public for s in spec.services):
            raise ConfigError(item, other, f"but {other} has no public tier: expected a public gateway to route to")
    # The pair rules each stack checks against its peer, checked here too: the two stacks are read
    # without their own peer checks, and a broken pair must stop here, not halfway through a plan.
    first, second = (specs[s] for s in stacks)
    if first.cloud == second.cloud:
        raise ConfigError(f"{stacks_path}[1]", stacks[1], f"but {stacks[0]} is on {first.cloud} too: "
                                                         "the two stacks of a DR pair run on different clouds")
    if first.environment != second.environment:
        raise ConfigError(f"{stacks_path}[1]", stacks[1], f"but its environment is {second.environment} and "
                                                         f"{stacks[0]}'s is {first.environment}: expected one environment")
    warnings: tuple[str, ...] = ()
    if first.dr is not None and second.dr is not None and first.dr.role == second.dr.role:
        if first.dr.role == "standby":
            raise ConfigError(f"{stacks_path}[1]", stacks[1], f"but both stacks have im-platform:dr.role {first.dr.role}: "
                                                             "expected one primary and one standby "
                                                             "(with two standbys nobody runs at full size)")
        warnings = (two_primaries_warning(*stacks),)
    active = required(TRAFFIC_KEY, block, "active", lambda p, v: v)
    if active not in stacks:
        raise ConfigError(f"{TRAFFIC_KEY}.active", active, f"expected one of the stacks: {', '.join(stacks)}")
    ttl = optional(TRAFFIC_KEY, block, "ttl", lambda p, v: _ranged(p, v, *TTL_RANGE), DEFAULT_TRAFFIC_TTL)

    hc_path = f"{TRAFFIC_KEY}.healthCheck"
    hc: Mapping[str, Any] = optional(TRAFFIC_KEY, block, "healthCheck", as_mapping, {})
    check_keys(hc_path, hc, HEALTH_KEYS)
    path = optional(hc_path, hc, "path", lambda p, v: as_str(p, v, HEALTH_PATH_RE, "an HTTP path such as /healthz"), None)
    interval = optional(hc_path, hc, "intervalSeconds", as_int, DEFAULT_HEALTH_INTERVAL_SECONDS)
    if interval not in HEALTH_CHECK_INTERVALS:
        raise ConfigError(f"{hc_path}.intervalSeconds", interval,
                          f"expected {' or '.join(map(str, HEALTH_CHECK_INTERVALS))} (the request intervals Route 53 offers)")
    threshold = optional(hc_path, hc, "failureThreshold", lambda p, v: _ranged(p, v, *THRESHOLD_RANGE),
                         DEFAULT_HEALTH_FAILURE_THRESHOLD)
    return TrafficSpec(project=project, stack=stack, provider=provider, zone=zone, name=name,
                       stacks=(stacks[0], stacks[1]), active=active, region=region,
                       environment=specs[stacks[0]].environment, ttl=ttl,
                       health_check=HealthCheckSpec(path=path, interval_seconds=interval, failure_threshold=threshold),
                       warnings=warnings)
