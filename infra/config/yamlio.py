"""YAML reading with libyaml's C loader where PyYAML was built with it: several times faster than the
pure-Python loader on the same documents. A document the C loader rejects is read again by the Python
loader, whose error (problem, line and column) is the one reported, so messages do not depend on how
PyYAML was built."""

from __future__ import annotations

from typing import IO, Any

import yaml

_FAST: Any = getattr(yaml, "CSafeLoader", None)


def safe_load(source: str | bytes | IO[str]) -> Any:
    """`yaml.safe_load`, through the C loader when there is one."""
    if _FAST is None:
        return yaml.safe_load(source)
    text = source if isinstance(source, (str, bytes)) else source.read()
    try:
        return yaml.load(text, Loader=_FAST)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return yaml.safe_load(text)
