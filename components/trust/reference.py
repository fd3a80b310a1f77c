"""A referenced stack's outputs, read before the program goes on."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await


def read_output(reference: pulumi.StackReference | None, name: str) -> Any:
    """The value of a referenced stack's output `name` (None when it has none, or no reference):
    read before the program goes on, in a preview too, so what it holds decides what is declared.
    (`get_output_details` is a coroutine; the program is not, so it is awaited as Pulumi's own
    synchronous invokes are.)"""
    if reference is None:
        return None
    details = _sync_await(reference.get_output_details(name))
    return details.value if details.value is not None else details.secret_value
