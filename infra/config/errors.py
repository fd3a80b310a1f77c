"""The one error a user's configuration can raise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_MISSING = object()


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


class ConfigError(Exception):
    """A bad configuration value: names the full key path, the value given and what is expected."""

    def __init__(self, key: str, value: Any = _MISSING, expected: str = "") -> None:
        self.key = key
        self.value = None if value is _MISSING else value
        self.expected = expected
        if value is _MISSING:
            message = f"{key} is not set"
        else:
            message = f"{key} is {render_value(value)}"
        if expected.startswith("but "):
            message += f", {expected}"
        elif expected:
            message += f": {expected}"
        super().__init__(message)

    def __str__(self) -> str:
        return f"config error: {self.args[0]}"


MISSING = _MISSING


class UnknownKeyError(ConfigError):
    """A key nothing reads (a typo): named with the closest known key in full, never with its value
    (a structured value can run to hundreds of characters and says nothing about the typo)."""

    def __init__(self, key: str, suggestion: str | None, why: str = "an unknown key",
                 expected: tuple[str, ...] | list[str] | None = None) -> None:
        super().__init__(key, MISSING, why)
        listing = f" (expected one of: {', '.join(expected)})" if expected else ""
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        self.suggestion = suggestion
        self.args = (f"{key} is {why}{listing}{hint}",)


class DuplicateKeyError(ConfigError):
    """A key written twice in one map of a stack file (YAML keeps the last one silently)."""

    def __init__(self, key: str, file: str, first_line: int, line: int) -> None:
        super().__init__(key, MISSING, "")
        self.args = (f"{key} is set twice in {file} (lines {first_line} and {line}): YAML keeps only the last, "
                     "silently; keep one",)


class HiddenValueError(ConfigError):
    """A value the message must not repeat (a credential, a kubeconfig's content): named by its key,
    what it is and what is expected instead."""

    def __init__(self, key: str, why: str, suggestion: str | None = None) -> None:
        super().__init__(key, MISSING, "")
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        self.args = (f"{key} is {why}{hint}",)


class YamlSyntaxError(ConfigError):
    """A stack file YAML cannot parse: the file, the line and column, and the parser's own words."""

    def __init__(self, file: str, line: int | None, column: int | None, problem: str, context: str | None = None) -> None:
        super().__init__(file, MISSING, "")
        where = f"{file}:{line}:{column}" if line is not None else file
        started = f" ({context})" if context else ""
        self.line = line
        self.args = (f"{where}: YAML syntax error: {problem}{started}",)


class ConfigErrors(ConfigError):
    """Several independent mistakes in one stack file, each its own `config error:` line (the first
    is the error this one stands for: its key, value and expectation)."""

    errors: list[ConfigError]

    def __init__(self, errors: list[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, ConfigErrors) else [error])
        first = flat[0]
        Exception.__init__(self, first.args[0])
        self.key, self.value, self.expected = first.key, first.value, first.expected
        self.errors = flat

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class Collector:
    """Reads independent parts of a configuration, going on past a part's error so that every
    mistake the reader can find is reported at once; `raise_any` raises them together."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextmanager
    def part(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as error:
            self.errors.append(error)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)
