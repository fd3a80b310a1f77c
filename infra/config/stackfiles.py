"""Stack files (`stacks/Pulumi.<stack>.yaml`): found, read and keyed as the engine keys them.

No Pulumi import: the configuration reader uses it to read a DR peer's file, the plan to run a stack.
A stack named by another is looked up in `search_dirs()`: the folder of the file being planned
(`plan --config-file FILE`) first, then `stacks/`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from infra.config import yamlio
from infra.config.errors import ConfigError

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


def stack_file(stack: str) -> Path:
    """`stacks/Pulumi.<stack>.yaml`; a stack without a file is a configuration error that lists the
    stacks there are (every command taking --stack comes through here)."""
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
    try:
        doc = yamlio.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), None, f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(str(path), None, "expected a YAML map with a top-level 'config' key")
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
    return values, secret_keys
