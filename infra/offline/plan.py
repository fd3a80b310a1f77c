"""The offline plan: run the real Pulumi program under the mock runtime and record every
registration (inputs and options as the engine would receive them).

It runs `infra/__main__.py` itself, the file Pulumi's Python host runs, inside a Stack resource
exactly as the host does, so what the plan shows is what `pulumi preview`/`up` would declare.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import json
import logging
import os
import runpy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import empty_pb2, json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config

from infra.config import stackfiles
from infra.config.errors import ConfigError
from infra.config.stackfiles import (  # noqa: F401 (re-exported for the CLI and tests)
    ROOT,
    SECRET,
    STACKS_DIR,
    all_stacks,
    project_name,
    read_stack_config,
    stack_file,
    stack_name_from_file,
)
from infra.offline.mocks import PlanMocks

PROGRAM_DIR = ROOT / "infra"
UNKNOWN = "[unknown]"
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class PlanError(Exception):
    """The plan could not run for a reason that is not the configuration's."""


# ---------------------------------------------------------------------------------------------
# Stack files.


# ---------------------------------------------------------------------------------------------
# Recording what the program registers.


def decode(value: Any, reveal: bool = False) -> Any:
    """Engine wire values to plain JSON: secrets and unknowns become markers, refs become URNs.

    `reveal` keeps secret values (for tests that check what a secret holds); the plan never does.
    """
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return decode(value.get("value"), reveal) if reveal else SECRET
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        if sig == _ASSET_SIG:
            return {"asset": value.get("path") or value.get("uri") or value.get("text")}
        if sig == _ARCHIVE_SIG:
            return {"archive": value.get("path") or value.get("uri") or sorted(value.get("assets") or {})}
        # Sorted: the engine's maps come in no fixed order, and a plan should diff cleanly run to run.
        return {k: decode(value[k], reveal) for k in sorted(value)}
    if isinstance(value, list):
        return [decode(v, reveal) for v in value]
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _struct(message: Any, reveal: bool = False) -> dict[str, Any]:
    return decode(json_format.MessageToDict(message), reveal) if message is not None else {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps every registration request, options included."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[dict[str, Any]] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self.revealed_outputs: dict[str, dict[str, Any]] = {}
        # URN -> every resource its registration waits for: explicit `depends_on` and inputs alike.
        self.dependencies: dict[str, frozenset[str]] = {}
        self.property_dependencies: dict[str, dict[str, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine forms them: the parent's whole type chain, the root stack left out."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return super().make_urn("", type_, name)

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        implicit = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
        record = {
            "urn": response.urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent or None,
            "custom": bool(request.custom),
            "inputs": _struct(request.object),
            "options": {
                "protect": bool(request.protect) if request.HasField("protect") else False,
                "ignoreChanges": list(request.ignoreChanges),
                "dependsOn": sorted(set(request.dependencies) - implicit),
                "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                "retainOnDelete": bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
                "replaceOnChanges": list(request.replaceOnChanges),
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
                "provider": request.provider or None,
            },
        }
        waits_for = frozenset(request.dependencies) | implicit
        with self._lock:
            self.registrations.append(record)
            self.dependencies[response.urn] = waits_for
            self.property_dependencies[response.urn] = {
                prop: frozenset(deps.urns) for prop, deps in request.propertyDependencies.items()}
        return response

    def ReadResource(self, request: Any) -> Any:
        """Reads (a StackReference, a `get`) are recorded like registrations, with their id."""
        response = super().ReadResource(request)
        record = {
            "urn": response.urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent or None,
            "custom": True,
            "inputs": {"id": request.id, **_struct(request.properties)},
            "options": {"protect": False, "ignoreChanges": [], "dependsOn": [], "deleteBeforeReplace": False,
                        "retainOnDelete": False, "replaceOnChanges": [], "additionalSecretOutputs": [],
                        "provider": request.provider or None},
        }
        with self._lock:
            self.registrations.append(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        with self._lock:
            self.outputs[request.urn] = _struct(request.outputs)
            self.revealed_outputs[request.urn] = _struct(request.outputs, reveal=True)
        return super().RegisterResourceOutputs(request)


# ---------------------------------------------------------------------------------------------
# Running the program.


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Stack outputs with secret values in the clear: for tests only, never printed.
    revealed_outputs: dict[str, Any] = field(default_factory=dict)
    # URN -> the URNs its registration waits for, explicit and through inputs (the JSON's
    # `dependsOn` lists only the explicit ones inputs do not already imply). Not in `to_json`.
    dependencies: dict[str, frozenset[str]] = field(default_factory=dict)
    # URN -> input property -> the URNs that input was built from.
    property_dependencies: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    # "type name" of every resource the program constructed inside an Output callback (`apply`),
    # where `pulumi preview` and the policy pack would not see it whenever the inputs are unknown.
    constructed_in_apply: list[str] = field(default_factory=list)
    # What the program warned about (`pulumi.log.warn`), in order: `plan` and `check` print each
    # as `warning: ...` on stderr, as `pulumi up` would show it.
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack, "resources": self.resources, "outputs": self.outputs}

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def one(self, type_: str) -> dict[str, Any]:
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def children(self, urn: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["parent"] == urn]

    def waits_for(self, urn: str) -> set[str]:
        """Every URN the resource waits for before it is created, directly or through a chain of
        dependencies (explicit or inputs)."""
        seen: set[str] = set()
        todo = list(self.dependencies.get(urn, ()))
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(self.dependencies.get(dep, ()))
        return seen


_RUN_LOCK = threading.Lock()
PLAN_ORGANIZATION = "organization"


class _WorkerLoops:
    """The thread pool the runtime calls the mock monitor on, and the event loop of each thread.

    Pulumi's mock monitor gives every thread it runs on an event loop of its own
    (`sync_await._ensure_event_loop`) and never closes it. Left alone, those loops are collected
    while the interpreter tears down, after their self-pipe sockets, and stderr gets
    `Exception ignored in: <function BaseEventLoop.__del__ ...> ValueError: Invalid file
    descriptor: -1`. Here each thread gets its loop when it starts, and `close` joins the threads
    and then closes every loop while the process is still whole.
    """

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()
        self.executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="im-platform-plan",
                                                              initializer=self._start_thread)

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._lock:
            self.loops.append(loop)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            loops, self.loops = self.loops, []
        for loop in loops:
            loop.close()


async def _settle() -> None:
    """Wait until every output the program created has resolved, or one has failed.

    The runtime waits for the same outputs after the program returns (`wait_for_rpcs`), but one
    `asyncio.wait(FIRST_COMPLETED)` at a time over all of them: with the few thousand outputs of a
    cluster stack that is a few hundred rounds, each registering a callback on every pending
    output, and it dominated the plan. Waiting for all of them at once (FIRST_EXCEPTION, so a
    failure returns at once) ends in the same state; whatever is left, a failure included, the
    runtime's own wait then meets exactly as it would have.
    """
    def failed(task: asyncio.Future[Any]) -> bool:
        return task.done() and not task.cancelled() and task.exception() is not None

    while True:
        with pulumi_settings.SETTINGS.lock:
            tracked = list(pulumi_settings.SETTINGS.outputs)
        if any(failed(task) for task in tracked):
            return
        pending = [task for task in tracked if not task.done()]
        if not pending:
            return
        await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)


_IN_APPLY: contextvars.ContextVar[bool] = contextvars.ContextVar("im_platform_in_apply", default=False)


@contextmanager
def _watching_applies(found: list[str]) -> Iterator[None]:
    """Mark every Output callback while it runs, and note each resource constructed meanwhile in
    `found`: a resource declared inside `apply` exists only once the callback runs, so a preview
    whose inputs are unknown (a first deployment) and the policy pack never see it."""
    original_apply = pulumi.Output.apply
    original_init = pulumi.Resource.__init__

    def apply(self: pulumi.Output[Any], func: Callable[[Any], Any], run_with_unknowns: bool = False) -> Any:
        def marked(value: Any) -> Any:
            token = _IN_APPLY.set(True)
            try:
                return func(value)
            finally:
                _IN_APPLY.reset(token)
        return original_apply(self, marked, run_with_unknowns)

    def init(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        if _IN_APPLY.get():
            found.append(f"{t} {name}")
        original_init(self, t, name, *args, **kwargs)

    pulumi.Output.apply = apply  # type: ignore[method-assign]
    pulumi.Resource.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.Output.apply = original_apply  # type: ignore[method-assign]
        pulumi.Resource.__init__ = original_init  # type: ignore[method-assign]


@contextmanager
def _no_stack_traces() -> Iterator[None]:
    """Skip the SDK's per-resource stack trace while the mocks run the program.

    For every resource the SDK walks the whole Python stack (`traceback.extract_stack`, reading each
    frame's source line) to send the engine a source position, which the engine shows in its
    diagnostics and the mock monitor ignores. Under a test runner's deep stacks that walk was about
    a seventh of a plan's time. What the program registers is unchanged: only the request's
    `sourcePosition` and `stackTrace` stay empty, as the protocol allows. If the SDK renames its
    helper, plans simply keep paying for the walk."""
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    sdk_resource._get_stack_trace = source_pb2.StackTrace  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = original  # type: ignore[attr-defined]


def _run_main() -> None:
    """What the host does: run the program directory's __main__.py as __main__."""
    runpy.run_path(str(PROGRAM_DIR), run_name="__main__")
_LOG = logging.getLogger("im-platform.plan")
# The engine's warnings reach the user through `Plan.warnings` (the CLI prints them), not a handler.
_LOG.propagate = False
_LOG.addHandler(logging.NullHandler())


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
# A stack planned only so that another can read its outputs speaks through its own logger, which
# is silent: its warnings (a peer "not deployed yet" in a shallow plan) are not the user's stack's.
_REFERENCE_LOG = logging.getLogger("im-platform.plan.reference")
_REFERENCE_LOG.propagate = False
_REFERENCE_LOG.addHandler(logging.NullHandler())


# Outputs of referenced stacks, per process: (stack file, its content, shallow) -> outputs.
_REFERENCE_CACHE: dict[tuple[str, str, bool], tuple[dict[str, Any], list[str]]] = {}
# The plans behind those outputs (not shallow), per process: (stack file, its content) -> plan. `cost`
# of a DR pair member prices its peer from the plan already run for the reference, not a second one.
_REFERENCE_PLANS: dict[tuple[str, str], Plan] = {}


def referenced_plan(stack: str) -> Plan | None:
    """The (converged) plan of `stack`'s file as it is now, if this process planned it as a reference."""
    path = stackfiles.find_stack_file(stack)
    if path is None:
        return None
    return _REFERENCE_PLANS.get((str(path.resolve()), path.read_text(encoding="utf-8")))


def referenced_stacks(config: dict[str, str]) -> list[str]:
    """The stacks a configuration names (DR peer, a traffic stack's pair); validation is the program's."""
    names: list[str] = []
    for key, pick in (("im-platform:dr", lambda v: [v.get("peer")]), ("im-platform:traffic", lambda v: v.get("stacks"))):
        try:
            value = json.loads(config.get(key) or "null")
            found = pick(value) if isinstance(value, dict) else []
        except (ValueError, AttributeError):
            continue
        names += [n for n in found or [] if isinstance(n, str) and n not in names]
    return names


def reference_outputs(stack: str, chain: tuple[str, ...], project: str) -> tuple[dict[str, Any], list[str]]:
    """What a StackReference to `stack` reads: its planned outputs (secret ones named), planned
    before the referring stack runs, since Pulumi's runtime settings are process-global.

    A stack already being planned up the chain (A -> B -> A) is planned once more *shallow*: its own
    references answer "not deployed yet" (no outputs). So B sees what A exports by itself (its
    issuer, its replication account) and declares what it would once A is deployed, and A sees that:
    the plan shows the converged pair, and the cycle ends there. A stack whose file is missing or
    invalid answers with no outputs (the referring program reports that)."""
    path = stackfiles.find_stack_file(stack)
    if path is None:
        return {}, []
    shallow = stack in chain
    text = path.read_text(encoding="utf-8")
    key = (str(path.resolve()), text, shallow)
    if key not in _REFERENCE_CACHE:
        try:
            config, secret_keys = read_stack_config(path, project)
            plan = run_program(stack, config, secret_keys=secret_keys, project=project, _chain=chain, _shallow=shallow)
        except (ConfigError, pulumi.RunError):
            _REFERENCE_CACHE[key] = ({}, [])
        else:
            secret_names = sorted(k for k, v in plan.outputs.items() if v == SECRET)
            if not shallow:
                _REFERENCE_PLANS[key[:2]] = plan
            _REFERENCE_CACHE[key] = (plan.revealed_outputs, secret_names)
    return _REFERENCE_CACHE[key]


def run_program(stack: str, config: dict[str, str], *, secret_keys: list[str] | None = None,
                project: str | None = None, _chain: tuple[str, ...] = (), _shallow: bool = False) -> Plan:
    """Run infra/__main__.py under the mock runtime and return everything it registered.

    Stacks it references are planned first (`reference_outputs`). A configuration error surfaces
    as `ConfigError`; anything else as the program raised it.
    """
    with _collector_paused():
        return _run_program(stack, config, secret_keys=secret_keys, project=project, _chain=_chain, _shallow=_shallow)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a plan runs (nested plans leave it to the outermost).

    A plan allocates hundreds of thousands of short-lived futures, tasks and outputs on top of a
    heap that holds the provider SDKs' thousands of modules and types, so the collector's full
    passes kept walking that heap: they took more than half of a plan's time. Paused, the cycles a
    plan leaves are collected by the next pass after it (a plan holds tens of MB, not more)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _run_program(stack: str, config: dict[str, str], *, secret_keys: list[str] | None,
                 project: str | None, _chain: tuple[str, ...], _shallow: bool) -> Plan:
    project = project or project_name()
    chain = (*_chain, stack)
    references = referenced_stacks(config)
    if references:
        _check_config(stack, config, project)
    resolved = {name: ({}, []) if _shallow else reference_outputs(name, chain, project) for name in references}
    return run_recorded(_run_main, stack, config, mocks=PlanMocks(resolved), project=project,
                        secret_keys=secret_keys, log=_REFERENCE_LOG if _chain else _LOG)


def _check_config(stack: str, config: dict[str, str], project: str) -> None:
    """Stop on what the program would reject in this stack's own configuration before the stacks it
    references are planned (seconds each): the same validation the program runs first."""
    from infra.config.loader import load_spec
    from infra.traffic.config import is_traffic, load_traffic

    if is_traffic(config):
        load_traffic(config, project=project, stack=stack)
    else:
        load_spec(config, project=project, stack=stack, env=os.environ)


def run_recorded(program: Callable[[], Any], stack: str, config: dict[str, str], *, mocks: pulumi_mocks.Mocks,
                 project: str, secret_keys: list[str] | None = None, log: logging.Logger = _LOG,
                 organization: str | None = PLAN_ORGANIZATION) -> Plan:
    """Run `program` as the host runs a Pulumi program, inside a fresh Stack, under a recording mock
    monitor answering with `mocks`, and return everything it registered. The engine's log messages
    go to `log`. A configuration error surfaces as `ConfigError`; anything else as the program raised it.

    `run_program` runs infra/__main__.py through it; tests run parts of the program the same way."""

    def run_then_settle() -> Any:
        program()
        return _settle()

    with _collector_paused(), _RUN_LOCK:
        monitor = RecordingMonitor(mocks)
        set_all_config(dict(config), list(secret_keys or []))
        # What pulumi.runtime.set_mocks does, minus the finished root stack it installs for unit
        # tests: like the host, the plan runs the program inside a fresh Stack (run_in_stack).
        features = set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures)
        pulumi_settings.configure(pulumi_mocks.MockSettings(
            monitor=monitor, monitor_features=features, engine=pulumi_mocks.MockEngine(log),
            project=project, stack=stack, dry_run=True,
            # What a self-managed backend reports (the Pulumi Cloud reports the account or org).
            organization=organization, callbacks=None))
        pulumi_settings.ROOT.set(None)
        collect = _Collect()
        log.addHandler(collect)
        loop = asyncio.new_event_loop()
        workers = _WorkerLoops()
        loop.set_default_executor(workers.executor)
        in_apply: list[str] = []
        try:
            asyncio.set_event_loop(loop)
            with _watching_applies(in_apply), _no_stack_traces():
                loop.run_until_complete(pulumi.runtime.stack.run_in_stack(run_then_settle))
        except pulumi.RunError as exc:
            if isinstance(exc.__cause__, ConfigError):
                raise exc.__cause__ from None
            raise
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            workers.close()
            log.removeHandler(collect)
        records = sorted(monitor.registrations, key=lambda r: r["urn"])
        stack_urn = next((r["urn"] for r in records if r["type"] == "pulumi:pulumi:Stack"), None)
        resources = [r for r in records if r["type"] != "pulumi:pulumi:Stack"]
        outputs = monitor.outputs.get(stack_urn, {}) if stack_urn else {}
        component_outputs = {urn: out for urn, out in monitor.outputs.items() if urn != stack_urn}
        revealed = monitor.revealed_outputs.get(stack_urn, {}) if stack_urn else {}
        return Plan(project, stack, resources, outputs, component_outputs, revealed,
                    dependencies=dict(monitor.dependencies), property_dependencies=dict(monitor.property_dependencies),
                    constructed_in_apply=sorted(in_apply), warnings=collect.messages)


def plan_stack(stack: str | None = None, config_file: Path | None = None) -> Plan:
    project = project_name()
    stack, config_file = stackfiles.resolve_stack(stack, config_file)
    config, secret_keys = read_stack_config(config_file, project)
    # Stacks this one names (DR peer, the traffic stack's pair) are looked up beside it first.
    with stackfiles.searching_beside(config_file):
        plan = run_program(stack, config, secret_keys=secret_keys, project=project)
    plan.warnings.extend(version_warnings(stack, config))
    return plan


def version_warnings(stack: str, config: dict[str, str]) -> list[str]:
    """The support-window warning of a cluster stack whose configuration has just planned (so is valid)."""
    import datetime as dt

    from components.spec import DEFAULT_KUBERNETES_VERSION
    from infra.config import versions

    cloud = config.get("im-platform:cloud")
    if cloud not in versions.SERVICE or "im-platform:traffic" in config:
        return []
    try:
        cluster = json.loads(config.get("im-platform:cluster") or "{}")
    except ValueError:
        return []
    minor = str((cluster or {}).get("kubernetesVersion") or DEFAULT_KUBERNETES_VERSION)
    line = versions.support_warning(cloud, minor, stack, dt.date.today())
    return [line] if line else []


def is_traffic_stack(stack: str) -> bool:
    values, _ = read_stack_config(stack_file(stack), project_name())
    return "im-platform:traffic" in values


def cluster_stacks() -> list[str]:
    """The stacks that declare a cluster (every stack but the traffic stacks)."""
    return [s for s in all_stacks() if not is_traffic_stack(s)]


def traffic_stacks() -> list[str]:
    return [s for s in all_stacks() if is_traffic_stack(s)]
