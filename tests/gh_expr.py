"""GitHub Actions expressions, the subset the workflows use, evaluated as GitHub does.

docs.github.com, "Evaluate expressions in workflows and actions": literals (strings in single
quotes, numbers, true, false, null), context paths (`inputs.x`, `needs.job.outputs.x`,
`vars.X`, `matrix.x`), operators `!`, `==`, `!=`, `&&`, `||`, parentheses; `&&` and `||` return an
operand, not a boolean; falsy are false, 0, '' and null; `==` compares strings ignoring case;
functions contains(search, item) (an array holds an item, or a string a substring, ignoring case),
fromJSON, toJSON, format, always, success, failure, cancelled. An `if:` may omit `${{ }}`.
Anything else raises: a workflow using more must extend this, not be misread.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!(),])"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))")
STATUS = {"always": True, "success": True, "failure": False, "cancelled": False}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read the expression at {text[pos:]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


class _Parser:
    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.context = context

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ValueError("the expression ends early")
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r}")
        self.i += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.unary()
        while self.peek() == "&&":
            self.take()
            right = self.unary()
            value = right if truthy(value) else value
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.compare()

    def compare(self) -> Any:
        value = self.primary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.primary()
            same = _equal(value, right)
            return same if op == "==" else not same
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return self.call(text, args)
        value: Any = self.context
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    @staticmethod
    def call(name: str, args: list[Any]) -> Any:
        if name in STATUS and not args:
            return STATUS[name]
        if name == "fromJSON" and len(args) == 1:
            return json.loads(args[0])
        if name == "toJSON" and len(args) == 1:
            return json.dumps(args[0])
        if name == "contains" and len(args) == 2:
            search, item = args
            if isinstance(search, list):
                return any(_equal(x, item) for x in search)
            return str(item).lower() in str(search).lower()
        if name == "format" and args:
            return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1)) + 1]), str(args[0]))
        raise ValueError(f"function {name}({len(args)} arguments) is not known here")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The value of `expression` (with or without `${{ }}`) in `context`."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return _Parser(text, context).parse()


def step_runs(step: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether a step runs: no `if:` means success(), which holds in a run where nothing failed."""
    condition = step.get("if")
    return True if condition is None else truthy(evaluate(str(condition), context))


def interpolate(value: str, context: dict[str, Any]) -> Any:
    """A `with:` or `env:` value: a lone `${{ }}` keeps its value's type; one inside text is
    replaced by the value as a string."""
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", value, re.DOTALL)
    if whole:
        return evaluate(whole.group(1), context)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), context)), value)
