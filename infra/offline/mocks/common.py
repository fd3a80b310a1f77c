"""Deterministic fake identifiers: the same program gives the same plan, run after run."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from pulumi.runtime.config import get_config
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

ResourceFn = Callable[[MockResourceArgs], tuple[str, dict[str, Any]]]
CallFn = Callable[[MockCallArgs], dict[str, Any]]

ACCOUNT_ID = "123456789012"
FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC/offline-plan-ca\n-----END CERTIFICATE-----\n").decode()


def digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def fake_id(kind: str, name: str, length: int = 17) -> str:
    return digest(kind, name, length=length)


def autoname(args: MockResourceArgs, key: str = "name") -> str:
    """The physical name a provider would give: the input if set, else name plus a suffix."""
    given = args.inputs.get(key)
    if isinstance(given, str) and given:
        return given
    prefix = args.inputs.get(f"{key}Prefix")
    if isinstance(prefix, str) and prefix:
        return prefix + digest(args.name, length=8)
    return f"{args.name}-{digest(args.name, length=7)}"


def config_value(key: str, default: str) -> str:
    """A stack setting (region, project, ...) so mock ARNs and zones match the stack."""
    value = get_config(key)
    return str(value) if value else default
