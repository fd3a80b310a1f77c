"""A failover drill through the real program: the real `PulumiControl` edits the stack files (its own
`set_stack_value`, byte for byte what a real failover commits), and where it would run `pulumi up`
the drill runs the offline `plan` and `check` of every stack the edit touches, through the CLI.

So every state a failover or a failback leaves the files in must be a configuration the program
accepts, or the step fails as it would on a cloud: the orchestration and the configuration rules
cannot disagree unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.config import yamlio
from infra.failover.control import PulumiControl
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

    def __init__(self, traffic_stack: str, stacks_dir: Path) -> None:
        super().__init__(traffic_stack, work_dir=stacks_dir.parent, stacks_dir=stacks_dir, on_output=lambda _line: None)
        self.runs: list[Run] = []

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

    def healthy(self, stack: str) -> bool:
        return True
