"""Stack files (`stacks/Pulumi.<stack>.yaml`): found, read and keyed as the engine keys them.

No Pulumi import: the configuration reader uses it to read a DR peer's file, the plan to run a stack.
A stack named by another is looked up in `search_dirs()`: the folder of the file being planned
(`plan --config-file FILE`) first, then `stacks/`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from infra.config import yamlio
from infra.config.errors import MISSING, ConfigError, DuplicateKeyError, HiddenValueError, YamlSyntaxError

ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"
SECRET = "[secret]"

# Folders searched before stacks/ for a stack named by another (set by the plan for --config-file).
EXTRA_DIRS: list[Path] = []


@contextlib.contextmanager
def searching_beside(config_file: Path | None) -> Iterator[None]:
    """Look up stacks named by `config_file` in its folder first, for the duration of the block."""
    saved = list(EXTRA_DIRS)
    if config_file is not None:
        EXTRA_DIRS[:] = [Path(config_file).resolve().parent]
    try:
        yield
    finally:
        EXTRA_DIRS[:] = saved


def search_dirs() -> list[Path]:
    return [*EXTRA_DIRS, STACKS_DIR]


def find_stack_file(stack: str) -> Path | None:
    """The file of a stack named by another (DR peer, traffic stack's pair), or None."""
    for folder in search_dirs():
        for ext in ("yaml", "yml"):
            path = folder / f"Pulumi.{stack}.{ext}"
            if path.is_file():
                return path
    return None


def project_name() -> str:
    with open(ROOT / "Pulumi.yaml", encoding="utf-8") as fh:
        return str(yamlio.safe_load(fh)["name"])


# What `im-platform:cloud` may name (components.spec.STACK_KINDS): a stack name's part that says its cloud.
CLOUDS = ("aws", "gcp", "azure", "kubernetes")


def looks_like_a_file(stack: str) -> bool:
    """`Pulumi.dev-aws.yaml`, `stacks/x.yaml`, `./x`: a path, never a stack name."""
    return (stack.endswith((".yaml", ".yml")) or "/" in stack or "\\" in stack
            or (stack.startswith("Pulumi.") and stack.count(".") >= 2))


def stack_file(stack: str) -> Path:
    """`stacks/Pulumi.<stack>.yaml`; a stack without a file is a configuration error that lists the
    stacks there are (every command taking --stack comes through here)."""
    if looks_like_a_file(stack):
        named = stack_name_from_file(Path(stack))
        instead = f" (or --stack {named})" if named and named != stack else ""
        raise ConfigError("--stack", stack, "a file name, and --stack takes a stack name such as dev-aws: "
                                            f"pass the file as --config-file {stack}{instead}")
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = all_stacks()
        close = difflib.get_close_matches(stack, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listing = ", ".join(known) if known else "none yet"
        raise ConfigError("--stack", stack,
                          f"no such stack (no stacks/{path.name}): {hint}the stacks are {listing}; "
                          "to add one, copy the nearest stack file (README, Configuration)")
    return path


def _declared_cloud(path: Path) -> str | None:
    """The `im-platform:cloud` a stack file declares, or None (unreadable, a traffic stack)."""
    try:
        doc = yamlio.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    config = doc.get("config") if isinstance(doc, dict) else None
    cloud = config.get("im-platform:cloud") if isinstance(config, dict) else None
    return cloud if isinstance(cloud, str) else None


def _cloud_of_name(stack: str) -> str | None:
    """The cloud a stack is known by: its file in stacks/, else a part of its name (`dev-aws`)."""
    known = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if known.is_file():
        return _declared_cloud(known)
    parts = [p for p in stack.lower().replace("_", "-").replace(".", "-").split("-") if p in CLOUDS]
    return parts[-1] if len(set(parts)) == 1 else None


def resolve_stack(stack: str | None, config_file: Path | None) -> tuple[str, Path]:
    """The stack's name and file from `--stack` and `--config-file`; a name that is a file, a file
    that does not exist, or a name that disagrees with the file (its name or its cloud) is a
    configuration error naming both, said before any work starts."""
    if config_file is None:
        if not stack:
            raise ConfigError("--stack", None, "expected a stack name such as dev-aws, or --config-file")
        return stack, stack_file(stack)
    if stack and looks_like_a_file(stack):
        stack_file(stack)  # raises: says to use --config-file
    if not config_file.is_file():
        what = "a directory, not a stack file" if config_file.is_dir() else "no such file"
        raise ConfigError("--config-file", str(config_file), what)
    named = stack_name_from_file(config_file)
    if not stack:
        if not named:
            raise ConfigError("--config-file", str(config_file), "name the file Pulumi.<stack>.yaml or pass --stack")
        return named, config_file
    if named and named != stack:
        raise ConfigError("--stack", stack, f"but --config-file {config_file} is the file of stack {named!r}: "
                                            "pass one of them, or name the file Pulumi.<stack>.yaml")
    declared, implied = _declared_cloud(config_file), _cloud_of_name(stack)
    if declared and implied and declared != implied:
        raise ConfigError("--stack", stack, f"but that stack is on {implied} and --config-file {config_file} "
                                            f"declares im-platform:cloud {declared}: pass the file's own stack name")
    return stack, config_file


def all_stacks() -> list[str]:
    return sorted(n for p in STACKS_DIR.glob("Pulumi.*.yaml") if (n := stack_name_from_file(p)))


def stack_name_from_file(path: Path) -> str | None:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")) and name.count(".") >= 2:
        return name[len("Pulumi."):].rsplit(".", 1)[0] or None
    return None


def _config_value(value: Any) -> str:
    """What the engine hands the program: scalars as text, structured values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def read_stack_config(path: Path, project: str) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys of a stack file, keyed like the engine keys them."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "no such stack file; create it (see README, Configuration)") from None
    values, secret_keys = _parse_stack_config(str(path), text, project)
    return dict(values), list(secret_keys)


@functools.lru_cache(maxsize=256)
def _parse_stack_config(where: str, text: str, project: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """`read_stack_config` of a file's text, once per text: a plan of a stack pair reads each
    file several times (the stack, its peer, the traffic stack naming both, the TLS host lookup).
    A configuration error is not cached (lru_cache keeps only returned values)."""
    path = Path(where)
    try:
        doc = yamlio.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            context = f"{context} at line {context_mark.line + 1}"
        raise YamlSyntaxError(str(path), mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                              str(getattr(exc, "problem", None) or exc), context) from None
    if not isinstance(doc, dict):
        raise HiddenValueError(str(path), "not a YAML map: expected a map with a top-level 'config' key")
    check_duplicates(path, text, project)
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config", config, "expected a map of configuration keys")
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        full = str(key) if ":" in str(key) else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted values cannot be read offline; the program sees a placeholder.
            values[full] = SECRET
            secret_keys.append(full)
            continue
        values[full] = _config_value(value)
    return tuple(values.items()), tuple(secret_keys)


def set_stack_value(path: Path, key: str, value: str) -> bool:
    """Set one scalar of a stack file in place, as `pulumi config set --path KEY VALUE` would, but
    leaving every other byte as it was (comments, order, quoting): a failover's commit is a one-word
    diff. `key` is a full key with a path below it (`im-platform:dr.role`); the value it replaces
    must already be a scalar there. Returns False when it already holds `value` (nothing written).

    Written atomically (temp file, fsync, rename), so an interrupted run never leaves half a file.
    """
    text = path.read_text(encoding="utf-8")
    top, *below = key.split(".")
    node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    for name in ("config", top, *below):
        node = _child(node, name, top)
        if node is None:
            raise ConfigError(key, MISSING, f"in {path}: expected the stack file to hold it already")
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(key, yaml.safe_load(yaml.serialize(node)), f"in {path}: expected a single value to replace")
    if node.value == value and node.tag == "tag:yaml.org,2002:str":
        return False
    # A plain scalar where it reads back as this very string, else double-quoted (JSON is YAML).
    literal = value if yaml.safe_load(value) == value and "#" not in value else json.dumps(value)
    updated = text[:node.start_mark.index] + literal + text[node.end_mark.index:]
    check: Any = yaml.compose(updated, Loader=yaml.SafeLoader)
    for name in ("config", top, *below):
        check = _child(check, name, top)
    if not isinstance(check, yaml.ScalarNode) or check.value != value:
        raise ConfigError(key, value, f"could not be written into {path} in place: set it by hand")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(updated)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return True


def _child(node: Any, key: str, top: str) -> Any:
    """The value under `key` in a mapping node; the project's own top keys may be written unprefixed."""
    if not isinstance(node, yaml.MappingNode):
        return None
    prefix = f"{project_name()}:"
    names = {key, key[len(prefix):]} if key == top and key.startswith(prefix) else {key}
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value in names), None)


def check_duplicates(path: Path, text: str, project: str) -> None:
    """A key written twice in one map is an error: YAML keeps the last silently, so the first (a
    pool's minNodes, a guardrail) would be dropped without a word. Named by its full key path."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = yaml.compose(text, Loader=loader)

    def walk(node: Any, where: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value in node.value:
                key = str(key_node.value)
                if where == "config":
                    full = key if ":" in key else f"{project}:{key}"
                else:
                    full = f"{where}.{key}" if where else key
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(full, path.name, seen[key], line)
                seen[key] = line
                walk(value, "config" if not where and key == "config" else (full if where else ""))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{where}[{i}]")

    walk(root, "")
