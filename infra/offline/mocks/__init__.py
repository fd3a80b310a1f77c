"""Realistic computed outputs for the offline plan.

Each cloud module maps type tokens to a function that returns (id, computed outputs) and invoke
tokens to their results. Inputs are echoed back (as a provider does), so a resource built from
another's output sees real-looking values and no input of the plan stays unknown.
"""

from __future__ import annotations

import importlib
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from infra.offline.mocks.common import CallFn, ResourceFn, fake_id

_PACKAGES = {"aws": "infra.offline.mocks.aws", "gcp": "infra.offline.mocks.gcp", "azure-native": "infra.offline.mocks.azure",
             "kubernetes": "infra.offline.mocks.kubernetes"}


def _table(token: str, attr: str) -> dict[str, Any]:
    package = token.split(":", 1)[0]
    module_name = _PACKAGES.get(package)
    if module_name is None:
        return {}
    return getattr(importlib.import_module(module_name), attr)


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class PlanMocks(Mocks):
    def __init__(self, stack_outputs: dict[str, tuple[dict[str, Any], list[str]]] | None = None) -> None:
        # Stack name -> (outputs, secret output names), from the offline plans of referenced stacks.
        self.stack_outputs = dict(stack_outputs or {})

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            full = str(args.resource_id or args.inputs.get("name") or args.name)
            stack = full.rsplit("/", 1)[-1]
            if stack not in self.stack_outputs:
                # A reference the plan did not resolve first would read nothing: make it loud instead.
                raise KeyError(f"the offline plan did not resolve the StackReference {full}")
            outputs, secret_names = self.stack_outputs[stack]
            return full, {"name": full, "outputs": outputs, "secretOutputNames": secret_names}
        if args.typ.startswith("pulumi:providers:"):
            return fake_id("provider", args.name), dict(args.inputs)
        fn: ResourceFn | None = _table(args.typ, "RESOURCES").get(args.typ)
        outputs = dict(args.inputs)
        if fn is None:
            return fake_id(args.typ, args.name), outputs
        resource_id, computed = fn(args)
        outputs.update(computed)
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        fn: CallFn | None = _table(args.token, "CALLS").get(args.token)
        if fn is None:
            # An invoke without a mock would silently return nothing: make it loud instead.
            raise KeyError(f"the offline plan has no mock for the invoke {args.token}; add one in infra/offline/mocks/")
        return fn(args)
