"""The traffic switch of a DR pair behind one small interface, one module per DNS provider.

A provider module defines a `pulumi.ComponentResource` class taking `(name, spec, endpoints)` that
declares, for each pair stack, a record `<stack>.<name>` holding its gateway, one health check on
that gateway, and failover records for `name` (`spec.active` first); it exposes `outputs` (what
the traffic stack exports). `switch_class` imports only the selected provider's SDK.
"""

from __future__ import annotations

import importlib
import ipaddress
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from components.spec import TrafficSpec

# provider -> "module:Class"
PROVIDERS = {"route53": "components.dns.route53:Route53Switch"}


@dataclass(frozen=True)
class Endpoint:
    """One pair stack's public gateway, as read from its `gateway` stack output."""

    stack: str
    address: pulumi.Output[str]  # the load balancer's hostname or IP
    port: pulumi.Output[int]
    health_path: pulumi.Output[str]


class TrafficSwitch(Protocol):
    outputs: dict[str, Any]


class SwitchClass(Protocol):
    def __call__(self, name: str, spec: TrafficSpec, endpoints: list[Endpoint]) -> TrafficSwitch: ...


def switch_class(provider: str) -> SwitchClass:
    module, _, cls = PROVIDERS[provider].partition(":")
    found: SwitchClass = getattr(importlib.import_module(module), cls)
    return found


def is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def record_name(spec: TrafficSpec, stack: str) -> str:
    """The per-stack name the failover records point at."""
    return f"{stack}.{spec.name}"
