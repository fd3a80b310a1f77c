"""Keys outside the program's own namespace: a typo there is an error, not a silently ignored key.

- a namespace one letter off `im-platform`, a provider or `pulumi` (`im-platfrom:guardrails`): the
  engine would hand it to no one, and the protection it meant to set falls back to its default;
- a key in `aws:`, `gcp:`, `azure-native:` or `kubernetes:` that the installed provider SDK's config
  module does not define (`aws:regoin`): the provider ignores it;
- a `pulumi:` key Pulumi does not document (`pulumi:disable-default-provider`): the kubeconfig
  protection it meant to switch on is off;
- an AWS region the installed SDK's `pulumi_aws.Region` enum does not list.

The provider's names are read from its installed SDK without importing it (`config/vars.py` and
`_enums.py` parsed as Python source: a millisecond, where importing a provider SDK takes seconds).
No Pulumi import.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.config.errors import UnknownKeyError

# Namespace -> the SDK package whose config/vars.py defines its keys.
PROVIDER_PACKAGES = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure-native": "pulumi_azure_native",
                     "kubernetes": "pulumi_kubernetes"}
# The engine's own keys (https://www.pulumi.com/docs/iac/concepts/resources/providers/#disabling-default-providers,
# https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming-configuration, and stack tags
# set from configuration: https://www.pulumi.com/docs/iac/concepts/projects/project-file/).
PULUMI_KEYS = ("pulumi:disable-default-providers", "pulumi:autonaming", "pulumi:tags")


@functools.cache
def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


@functools.cache
def provider_keys(namespace: str) -> tuple[str, ...] | None:
    """Every key the installed SDK of `namespace` reads (`aws:region`, ...); None when the SDK is
    not installed (then its keys are not checked)."""
    folder = _package_dir(PROVIDER_PACKAGES[namespace])
    source = folder / "config" / "vars.py" if folder else None
    if source is None or not source.is_file():
        return None
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        # `__config__.get('region')`, `.get_bool(...)`, `.get_int(...)`, `.get_object(...)`.
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("get")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "__config__"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(f"{namespace}:{node.args[0].value}")
    return tuple(sorted(names))


@functools.cache
def aws_regions() -> tuple[str, ...] | None:
    """The values of the installed SDK's `pulumi_aws.Region` enum; None without the SDK."""
    folder = _package_dir("pulumi_aws")
    source = folder / "_enums.py" if folder else None
    if source is None or not source.is_file():
        return None
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == "Region":
            return tuple(sorted(stmt.value.value for stmt in node.body if isinstance(stmt, ast.Assign)
                                and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)))
    return None


def _close(word: str, choices: list[str] | tuple[str, ...], cutoff: float = 0.6) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def check_namespaces(config: Mapping[str, Any], own_namespace: str) -> None:
    """Raise one `UnknownKeyError` for the first key above that is a typo (the program's own keys
    are checked by the program's readers)."""
    known_namespaces = [own_namespace, "pulumi", *PROVIDER_PACKAGES]
    for key in config:
        namespace, sep, name = str(key).partition(":")
        if not sep or namespace == own_namespace:
            continue
        if namespace == "pulumi":
            if key not in PULUMI_KEYS:
                close = _close(name, [k.partition(":")[2] for k in PULUMI_KEYS])
                raise UnknownKeyError(key, close and f"pulumi:{close}", "a key Pulumi does not define (the engine "
                                      f"ignores it; expected one of: {', '.join(PULUMI_KEYS)})")
        elif namespace in PROVIDER_PACKAGES:
            keys = provider_keys(namespace)
            if keys is not None and key not in keys:
                close = _close(name, [k.partition(":")[2] for k in keys])
                raise UnknownKeyError(key, close and f"{namespace}:{close}", f"a key the installed "
                                      f"{PROVIDER_PACKAGES[namespace]} does not define (the provider ignores it)")
        else:
            # Only a near miss: other namespaces (another provider's, a policy pack's) are not ours to judge.
            close = _close(namespace, known_namespaces, cutoff=0.75)
            if close is not None:
                raise UnknownKeyError(key, f"{close}:{name}", f"in an unknown namespace {namespace} "
                                      "(nothing reads it)")
