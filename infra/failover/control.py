"""The real failover `Control`: the Pulumi Automation API on this repository's stacks, and an
HTTPS probe of a stack's public gateway.

- `promote(stack)` / `demote(stack)`: `im-platform:dr.role` on the pair stack's file, then
  `pulumi up` with a message naming the stack, its output streamed line by line.
- `route(stack)`: `im-platform:traffic.active` on the traffic stack's file, then `pulumi up`.
- `active()`: the traffic stack's `im-platform:traffic.active`, read from its stack file (the file
  `set_config` writes), so a dry run needs neither the Pulumi CLI nor a cloud.
- `healthy(stack)`: one GET of https://<gateway.address>:<gateway.port><gateway.healthPath> (the
  stack's `gateway` output). The certificate is issued for the public name clients use (the traffic
  stack's `im-platform:traffic.name`), not for the load balancer's address: the probe connects to the
  address but sends that name as SNI and Host header and verifies the certificate against it, so a
  pass proves exactly what a client will see after the DNS switch.

The value is written into the stack file in stacks/ (Pulumi.yaml: stackConfigDir), the file the
engine reads on `up`, by `set_stack_value`: that one word changes, comments and layout stay (where
`pulumi config set` rewrites the whole file). After a failover those changed files are the truth
and must be committed, or the next deploy from main reverts it.

An update already running on a stack (someone else's) is reported as `StackBusy` and never
cancelled: cancelling leaves that update's resources in an unknown state.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation._minimum_version import _MINIMUM_VERSION  # what the Automation API itself requires

from infra.config import yamlio
from infra.config.stackfiles import set_stack_value
from infra.failover import scaling

ROOT = Path(__file__).resolve().parents[2]
ROLE_KEY = "im-platform:dr.role"
ACTIVE_KEY = "im-platform:traffic.active"
NAME_KEY = "im-platform:traffic.name"
PROBE_TIMEOUT_S = 5.0   # one probe; the gate retries, so a slow answer counts as a failure, not a hang


class StackBusy(RuntimeError):
    """Another update holds the stack; it is left alone."""


class PreflightError(Exception):
    """Something a real run needs is missing (one line for the operator); nothing was changed."""


def pulumi_home(env: Mapping[str, str]) -> Path:
    """Where the Pulumi CLI keeps itself: $PULUMI_HOME, else ~/.pulumi (the installer's default)."""
    return Path(env.get("PULUMI_HOME") or Path.home() / ".pulumi")


def find_pulumi(env: Mapping[str, str] | None = None) -> auto.PulumiCommand:
    """The Pulumi CLI a run drives: `pulumi` on PATH, else <PULUMI_HOME>/bin/pulumi; its version
    checked against the minimum the installed Automation API requires."""
    env = os.environ if env is None else env
    root: str | None = None
    found = shutil.which("pulumi", path=env.get("PATH"))
    if found is None:
        candidate = pulumi_home(env) / "bin" / "pulumi"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise PreflightError(f"no Pulumi CLI: `pulumi` is not on PATH and not in {candidate.parent} "
                                 f"(install version {_MINIMUM_VERSION} or newer: https://www.pulumi.com/docs/install/)")
        root, found = str(candidate.parent.parent), str(candidate)
    try:
        return auto.PulumiCommand(root=root)
    except auto.InvalidVersionError as exc:
        raise PreflightError(f"the Pulumi CLI {found} is too old for this SDK: {exc}") from None
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PreflightError(f"the Pulumi CLI {found} does not run (`pulumi version`: {exc})") from None


def _error_line(exc: Exception) -> str:
    """The CLI's own `error:` line out of an Automation API error (its whole output otherwise)."""
    lines = [re.sub(r"^(stdout|stderr|code):\s*", "", line.strip()) for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [type(exc).__name__])[-1]


class _SniConnection(http.client.HTTPSConnection):
    """Connects to the load balancer's address, speaks TLS as if to the public name."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(self.sock, server_hostname=self._server_name)


def probe(address: str, port: int, path: str, server_name: str, *, timeout_s: float = PROBE_TIMEOUT_S,
          ca_file: str | None = None) -> bool:
    """One HTTPS GET; True on a 2xx answer from a server whose certificate is valid for server_name."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    conn = _SniConnection(address, port, server_name, timeout_s, context)
    try:
        conn.request("GET", path, headers={"Host": server_name, "User-Agent": "im-platform-failover",
                                           "Connection": "close"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return 200 <= status < 300


class PulumiControl:
    def __init__(self, traffic_stack: str, *, work_dir: Path = ROOT, stacks_dir: Path | None = None,
                 pulumi_command: auto.PulumiCommand | None = None,
                 env_vars: Mapping[str, str] | None = None, on_output: Callable[[str], None] = print,
                 ca_file: str | None = None, probe_timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.traffic_stack = traffic_stack
        self.work_dir = work_dir
        self.stacks_dir = stacks_dir or work_dir / "stacks"
        self.pulumi_command = pulumi_command
        self.env_vars = dict(env_vars or {})
        self.on_output = on_output
        self.ca_file = ca_file
        self.probe_timeout_s = probe_timeout_s
        self._stacks: dict[str, auto.Stack] = {}
        self._gateways: dict[str, dict[str, Any]] = {}
        self._public_name: str | None = None
        self._deployments: dict[str, auto.Deployment] = {}

    def _stack(self, name: str) -> auto.Stack:
        if name not in self._stacks:
            opts = auto.LocalWorkspaceOptions(pulumi_command=self.pulumi_command, env_vars=self.env_vars or None)
            self._stacks[name] = auto.select_stack(stack_name=name, work_dir=str(self.work_dir), opts=opts)
        return self._stacks[name]

    def stack_path(self, name: str) -> Path:
        return self.stacks_dir / f"Pulumi.{name}.yaml"

    def _set_and_up(self, name: str, key: str, value: str, why: str, *, raise_counts: bool = False) -> None:
        # Selected before its file changes: a stack that cannot be selected is left as it was.
        self.prepare(name)
        self.on_output(f"[{name}] {key} = {value}; pulumi up ({why})")
        set_stack_value(self.stack_path(name), key, value)
        if raise_counts:
            self.raise_counts(name)
        self.up(name, why)

    def raise_counts(self, name: str) -> None:
        """Before a promotion's `up`: every pool count (the autoscaler's, ignored by the program)
        below its new minimum is raised to it in the state, so the update sends both and the
        cloud does not refuse a minimum above the count (infra/failover/scaling.py)."""
        current = self.pool_state(name)
        if not scaling.pool_urns(current):
            return
        raises = scaling.counts_to_raise(current, self.planned_resources(name))
        for item in raises:
            self.on_output(f"[{name}] {item.urn.rsplit('::', 1)[-1]}: {item.path} {item.old} -> {item.new} "
                           f"(the new minimum; the cloud refuses a minimum above the count)")
        if raises:
            self.write_pool_state(name, raises)

    def pool_state(self, name: str) -> list[dict[str, Any]]:
        """The stack's resources as its state holds them, the pools refreshed first (the counts the
        autoscaler chose since the last update)."""
        stack = self._stack(name)
        resources = list((stack.export_stack().deployment or {}).get("resources") or [])
        urns = scaling.pool_urns(resources)
        if urns:
            stack.refresh(target=urns, on_output=lambda line: self.on_output(f"[{name}] {line.rstrip()}"))
        deployment = stack.export_stack()
        self._deployments[name] = deployment
        return list((deployment.deployment or {}).get("resources") or [])

    def planned_resources(self, name: str) -> list[dict[str, Any]]:
        """The resources the stack's file now asks for: its offline plan (the same program)."""
        from infra.offline.plan import plan_stack

        return list(plan_stack(name, self.stack_path(name)).resources)

    def write_pool_state(self, name: str, raises: list[scaling.Raise]) -> None:
        deployment = self._deployments[name]
        scaling.apply_raises((deployment.deployment or {})["resources"], raises)
        self._stack(name).import_stack(deployment)

    def prepare(self, name: str) -> None:
        self._stack(name)

    def preflight(self, stacks: Sequence[str]) -> list[str]:
        """Everything a real run needs before it changes anything, one line per missing piece: the
        Pulumi CLI (found, and new enough) and every stack selectable in the backend logged in to."""
        if self.pulumi_command is None:
            try:
                self.pulumi_command = find_pulumi({**os.environ, **self.env_vars})
            except PreflightError as exc:
                return [str(exc)]  # without a CLI no stack can be looked at
        problems = []
        for name in stacks:
            try:
                self._stack(name)
            except auto.StackNotFoundError:
                problems.append(f"stack {name} cannot be selected: the backend you are logged in to has no such "
                                f"stack (pulumi login to the right one; pulumi stack ls)")
            except (auto.CommandError, OSError) as exc:
                problems.append(f"stack {name} cannot be selected: {_error_line(exc)}")
        return problems

    def up(self, name: str, why: str) -> None:
        """`pulumi up` of the stack as its file now says (the engine reads stacks/Pulumi.<name>.yaml)."""
        try:
            self._stack(name).up(message=f"failover: {why}",
                                 on_output=lambda line: self.on_output(f"[{name}] {line.rstrip()}"))
        except auto.ConcurrentUpdateError as exc:
            raise StackBusy(f"stack {name} has another update in progress; it was not cancelled. Wait for it "
                            f"(pulumi stack history --stack {name}), then rerun the failover") from exc

    def traffic_config(self) -> dict[str, Any]:
        path = self.stack_path(self.traffic_stack)
        doc = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
        traffic = (doc.get("config") or {}).get("im-platform:traffic")
        if not isinstance(traffic, dict):
            raise RuntimeError(f"{path} has no im-platform:traffic section")
        return traffic

    def active(self) -> str:
        active = self.traffic_config().get("active")
        if not isinstance(active, str) or not active:
            raise RuntimeError(f"{ACTIVE_KEY} of stack {self.traffic_stack} is {active!r}: a stack name expected")
        return active

    def promote(self, stack: str) -> None:
        self._set_and_up(stack, ROLE_KEY, "primary", f"promote {stack} to primary", raise_counts=True)

    def demote(self, stack: str) -> None:
        self._set_and_up(stack, ROLE_KEY, "standby", f"demote {stack} to standby")

    def route(self, stack: str) -> None:
        self._set_and_up(self.traffic_stack, ACTIVE_KEY, stack, f"route {self.traffic_stack} to {stack}")

    def gateway(self, stack: str) -> dict[str, Any]:
        if stack not in self._gateways:
            outputs = self._stack(stack).outputs()
            if "gateway" not in outputs:
                raise RuntimeError(f"stack {stack} has no `gateway` output (has it been deployed?)")
            value = outputs["gateway"].value
            if not isinstance(value, dict) or not value.get("address") or not value.get("port"):
                raise RuntimeError(f"stack {stack}'s `gateway` output is {value!r}: address and port expected")
            self._gateways[stack] = value
        return self._gateways[stack]

    def public_name(self) -> str:
        if self._public_name is None:
            self._public_name = str(self.traffic_config().get("name") or "")
            if not self._public_name:
                raise RuntimeError(f"{NAME_KEY} of stack {self.traffic_stack} is not set")
        return self._public_name

    def healthy(self, stack: str) -> bool:
        gw = self.gateway(stack)
        return probe(str(gw["address"]), int(gw["port"]), str(gw.get("healthPath") or "/healthz"), self.public_name(),
                     timeout_s=self.probe_timeout_s, ca_file=self.ca_file)
