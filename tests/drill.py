"""A failover drill through the real program: the real `PulumiControl` edits the stack files (its own
`set_stack_value`, byte for byte what a real failover commits), and where it would run `pulumi up`
the drill runs the offline `plan` and `check` of every stack the edit touches, through the CLI.

So every state a failover or a failback leaves the files in must be a configuration the program
accepts, or the step fails as it would on a cloud: the orchestration and the configuration rules
cannot disagree unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import yamlio
from infra.failover import scaling
from infra.failover.control import PulumiControl
from tests.fake_cloud import FakeCloud
from tests.test_cli import cli_in_process


@dataclass(frozen=True)
class Run:
    why: str        # the step's own words: "promote prod-azure to primary"
    stack: str
    command: str    # plan | check
    code: int
    warnings: tuple[str, ...]
    error: str      # the last line of stderr when the command failed


class DrillFailed(RuntimeError):
    """A state the failover left the files in does not plan or check."""


class PlanningControl(PulumiControl):
    """The real Control with `pulumi up` replaced by the offline plan and check; every probe passes
    (the drill proves configurations, not gateways)."""

    def __init__(self, traffic_stack: str, stacks_dir: Path, cloud: FakeCloud | None = None) -> None:
        self.said: list[str] = []
        super().__init__(traffic_stack, work_dir=stacks_dir.parent, stacks_dir=stacks_dir, on_output=self.said.append)
        self.runs: list[Run] = []
        # With a fake cloud, every `up` also sends the stack's node pools to it (its rules checked).
        self.cloud = cloud

    def planned_resources(self, name: str) -> list[dict[str, Any]]:
        result = cli_in_process("plan", "--config-file", str(self.stack_path(name)), "--json")
        if result.returncode != 0:
            raise DrillFailed(f"plan {name} exits {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
        resources: list[dict[str, Any]] = json.loads(result.stdout)["resources"]
        return resources

    def pool_state(self, name: str) -> list[dict[str, Any]]:
        """The refreshed state's pools (the fake cloud's, which a refresh reads)."""
        return self.cloud.state() if self.cloud else []

    def write_pool_state(self, name: str, raises: list[scaling.Raise]) -> None:
        assert self.cloud is not None
        for item in raises:
            self.cloud.edit_state(item.urn, item.path, item.new)

    def prepare(self, name: str) -> None:
        """Nothing to select: no Pulumi CLI and no backend."""

    def touched(self, name: str) -> list[str]:
        """The stacks whose validity reads this stack's file: itself, and for a pair stack its peer
        (one primary at least) and the traffic stack (reads both)."""
        if name == self.traffic_stack:
            return [name]
        doc = yamlio.safe_load(self.stack_path(name).read_text(encoding="utf-8"))
        peer = str(doc["config"]["im-platform:dr"]["peer"])
        return [name, peer, self.traffic_stack]

    def up(self, name: str, why: str) -> None:
        for stack in self.touched(name):
            for command in ("plan", "check"):
                result = cli_in_process(command, "--config-file", str(self.stack_path(stack)))
                lines = result.stderr.strip().splitlines()
                run = Run(why, stack, command, result.returncode,
                          tuple(line for line in lines if line.startswith("warning: ")),
                          lines[-1] if result.returncode and lines else "")
                self.runs.append(run)
                if run.code != 0:
                    raise DrillFailed(f"after {why}: {command} {stack} exits {run.code}: {run.error}")
        if self.cloud is not None and name != self.traffic_stack:
            self.cloud.up(name, self.planned_resources(name))
            self.cloud.idle()

    def healthy(self, stack: str) -> bool:
        return True
