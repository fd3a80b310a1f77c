"""The small typed readers every configuration module shares: each names the full key path in its error.

Imported by `infra.config.loader`, `infra.config.services` and `infra.dr`, so imports point one way
(readers <- services_config <- config).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from components.naming import PROJECT
from components.spec import SYSTEM_POOL
from infra.config.errors import MISSING, ConfigError, UnknownKeyError

T = TypeVar("T")

NS = f"{PROJECT}:"
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# ---------------------------------------------------------------------------------------------
# Small typed readers: each names the full key path in its error.


def _did_you_mean(key: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(path: str, obj: Mapping[str, Any], allowed: tuple[str, ...], sep: str = ".") -> None:
    """An unknown key names itself and the closest allowed key in full, not its value."""
    for key in obj:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            raise UnknownKeyError(f"{path}{sep}{key}", f"{path}{sep}{close[0]}" if close else None,
                                  expected=allowed)


def as_mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "expected a map of keys to values")
    return value


def as_int(path: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, value, "expected a whole number")
    if minimum is not None and value < minimum:
        raise ConfigError(path, value, f"expected a whole number >= {minimum}")
    return value


def as_bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, value, "expected true or false")
    return value


def as_str(path: str, value: Any, pattern: re.Pattern[str] | None = None, what: str = "a string") -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(path, value, f"expected {what}")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(path, value, f"expected {what}")
    return value


def as_list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(path, value, "expected a list")
    return value


def required(path: str, obj: Mapping[str, Any], key: str, read: Callable[[str, Any], T]) -> T:
    if key not in obj or obj[key] is None:
        raise ConfigError(f"{path}.{key}", MISSING, _REQUIRED_HINTS.get(key, "required"))
    return read(f"{path}.{key}", obj[key])


def optional(path: str, obj: Mapping[str, Any], key: str, read: Callable[[str, Any], T], default: T) -> T:
    if key not in obj or obj[key] is None:
        return default
    return read(f"{path}.{key}", obj[key])


_REQUIRED_HINTS = {
    "vcpu": "required: vCPUs per node, a whole number >= 2",
    "memoryGiB": "required: memory per node in GiB, a whole number >= 1",
    "minNodes": "required: the fewest nodes the autoscaler keeps, a whole number >= 0",
    "maxNodes": "required: the most nodes the autoscaler may add, a whole number >= 1",
    "nodePools": f"required: a map of pool name to pool, with a pool named {SYSTEM_POOL!r}",
}


def structured(key: str, raw: Any) -> Any:
    """Pulumi passes structured config as JSON text; plain values stay strings."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            raise ConfigError(key, raw, "expected a map (structured configuration), not a plain string") from None
    return raw



def read_cidr(path: str, value: Any, *, private: bool = True) -> str:
    text = as_str(path, value, what="an IPv4 CIDR such as 10.20.0.0/16")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigError(path, value, "expected an IPv4 CIDR such as 10.20.0.0/16") from None
        raise ConfigError(path, value, "expected a network address (host bits zero), such as 10.20.0.0/16") from None
    if net.version != 4:
        raise ConfigError(path, value, "expected an IPv4 CIDR")
    if private and not any(net.subnet_of(r) for r in RFC1918):  # type: ignore[arg-type]
        raise ConfigError(path, value, "expected a private (RFC 1918) range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")
    return str(net)
