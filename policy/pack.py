"""The pulumi-policy side of the guardrails: each rule of `infra.policy.rules` as a policy.

Resource rules become `ResourceValidationPolicy`s, stack rules `StackValidationPolicy`s; both hand
the rule the same `Resource` the offline `check` builds from the plan: type, properties, and the
options the policy SDK exposes (`args.opts.protect`, `args.opts.ignore_changes`, parent).

This module only builds policies. `policy/__main__.py` wraps them in a `PolicyPack`, which starts a
gRPC server and blocks: import this module, never that one, from tests and tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from infra.policy.rules import RULES, UNKNOWN, Context, Resource, Rule

PACK_NAME = "im-platform-guardrails"

ContextSource = Callable[[], Context]


def plain(value: Any) -> Any:
    """Properties as plain data, the way the plan writes them: pulumi-policy's proxies unwrapped
    and every value a preview cannot know yet replaced by infra.policy.rules.UNKNOWN."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def resource_from_args(args: ResourceValidationArgs) -> Resource:
    return Resource(type=args.resource_type, name=args.name, urn=args.urn, props=plain(args.props),
                    protect=bool(args.opts.protect), ignore_changes=tuple(args.opts.ignore_changes or ()),
                    parent=args.opts.parent)


def resource_from_stack(r: PolicyResource) -> Resource:
    parent = r.parent.urn if r.parent is not None else r.opts.parent
    return Resource(type=r.resource_type, name=r.name, urn=r.urn, props=plain(r.props),
                    protect=bool(r.opts.protect), ignore_changes=tuple(r.opts.ignore_changes or ()), parent=parent)


def context_from_environment() -> Context:
    """The stack's settings, read the way the program reads them: the engine passes the stack's
    configuration to policy packs in PULUMI_CONFIG (plus PULUMI_PROJECT and PULUMI_STACK), and
    infra.config.loader turns it into the same spec the program builds."""
    from pulumi.runtime import get_config_env

    from infra.config.errors import ConfigError
    from infra.config.loader import load_spec
    from infra.traffic.config import is_traffic, load_traffic

    project = os.environ.get("PULUMI_PROJECT", "im-platform")
    # Pulumi Cloud may pass org/project/stack; tags carry the stack's own name.
    stack = os.environ.get("PULUMI_STACK", "").rsplit("/", 1)[-1]
    config = get_config_env()
    if not config or not stack:
        raise RuntimeError(f"{PACK_NAME}: no stack configuration in PULUMI_CONFIG/PULUMI_STACK; run the pack "
                           "through `pulumi preview --policy-pack policy` from the im-platform project")
    try:
        if is_traffic(config):  # a traffic stack: no cluster, the pair's environment
            return Context(stack=stack, environment=load_traffic(config, project=project, stack=stack).environment)
        return Context.from_spec(load_spec(config, project=project, stack=stack))
    except ConfigError as exc:
        raise RuntimeError(f"{PACK_NAME}: {exc}") from None


def _cached(source: ContextSource) -> ContextSource:
    holder: list[Context] = []

    def get() -> Context:
        if not holder:
            holder.append(source())
        return holder[0]

    return get


def _resource_policy(rule: Rule, context: ContextSource) -> ResourceValidationPolicy:
    check = rule.resource_check
    assert check is not None

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in check(resource_from_args(args), context()):
            report(message, None)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY,
                                    remediation_steps=rule.remediation)


def _stack_policy(rule: Rule, context: ContextSource) -> StackValidationPolicy:
    check = rule.stack_check
    assert check is not None

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [resource_from_stack(r) for r in args.resources]
        for subject, message in check(resources, context()):
            report(message, subject.urn if subject is not None else None)

    return StackValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY,
                                 remediation_steps=rule.remediation)


def policies(context: ContextSource = context_from_environment) -> list[Policy]:
    """One policy per rule of infra.policy.rules, mandatory: a violation stops the preview or update."""
    source = _cached(context)
    built: list[Policy] = []
    for rule in RULES:
        if rule.resource_check is not None:
            built.append(_resource_policy(rule, source))
        if rule.stack_check is not None:
            built.append(_stack_policy(rule, source))
    return built
