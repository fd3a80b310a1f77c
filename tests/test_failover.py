"""The failover orchestration over a fake Control with faults injected at every step: who serves
afterwards, which calls happened in which order, what the journal keeps, and that no run routes to
an unproven target, re-runs a finished step or shares a journal with another run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.failover.orchestrator import (
    HEALTH_PASSES,
    ROUTE_ATTEMPTS,
    JournalConflict,
    JournalError,
    LockHeld,
    Report,
    UsageError,
    failover,
    lock_path,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class FakeControl:
    """Two stacks, one serving; each method can be given a list of faults (an exception to raise,
    or None for success) consumed one per call, or a callable."""

    def __init__(self, active: str = "prod-aws", health: Callable[[int], bool] | None = None) -> None:
        self.serving = active
        self.roles = {"prod-aws": "primary" if active == "prod-aws" else "standby",
                      "prod-azure": "primary" if active == "prod-azure" else "standby"}
        self.calls: list[tuple[str, str]] = []
        self.faults: dict[str, list[BaseException | None]] = {}
        self.health = health or (lambda n: True)
        self.probes = 0
        self.passes_in_a_row: dict[str, int] = {}
        self.proven: set[str] = set()

    def _fault(self, name: str) -> None:
        queue = self.faults.get(name)
        if queue:
            exc = queue.pop(0)
            if exc is not None:
                raise exc

    def active(self) -> str:
        self.calls.append(("active", ""))
        self._fault("active")
        return self.serving

    def promote(self, stack: str) -> None:
        self.calls.append(("promote", stack))
        self._fault("promote")
        self.roles[stack] = "primary"
        self.passes_in_a_row[stack] = 0

    def demote(self, stack: str) -> None:
        self.calls.append(("demote", stack))
        self._fault("demote")
        assert self.serving != stack, "demoted the stack that serves"
        self.roles[stack] = "standby"

    def healthy(self, stack: str) -> bool:
        self.calls.append(("healthy", stack))
        self.probes += 1
        self._fault("healthy")
        ok = self.roles[stack] == "primary" and self.health(self.probes)
        self.passes_in_a_row[stack] = self.passes_in_a_row.get(stack, 0) + 1 if ok else 0
        if self.passes_in_a_row[stack] >= HEALTH_PASSES:
            self.proven.add(stack)
        return ok

    def route(self, stack: str) -> None:
        self.calls.append(("route", stack))
        assert stack in self.proven, f"routed to {stack} before it passed {HEALTH_PASSES} probes in a row"
        self._fault("route")
        self.serving = stack

    def names(self) -> list[str]:
        return [name for name, _ in self.calls if name != "healthy"]


def run(control: FakeControl, journal: Path, clock: FakeClock | None = None, **kwargs: Any) -> Report:
    clock = clock or FakeClock()
    kwargs.setdefault("health_timeout_s", 120)
    return failover("prod-azure", control=control, journal=journal, sleep=clock.sleep, clock=clock, **kwargs)


def statuses(report: Report) -> dict[str, str]:
    return {s.name: s.status for s in report.steps}


def journal_steps(journal: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in json.loads(journal.read_text())["steps"].items()}


@pytest.fixture()
def journal(tmp_path: Path) -> Path:
    return tmp_path / ".failover" / "prod-traffic.json"


def test_a_clean_failover_promotes_proves_routes_then_demotes(journal: Path) -> None:
    control = FakeControl()
    clock = FakeClock()
    report = run(control, journal, clock)
    assert report.ok and report.serving == control.serving == "prod-azure"
    assert control.names() == ["active", "promote", "route", "demote"]
    assert [c for c in control.calls if c[0] == "healthy"] == [("healthy", "prod-azure")] * 3
    assert control.roles == {"prod-aws": "standby", "prod-azure": "primary"}
    assert statuses(report) == dict.fromkeys(("preflight", "promote", "health", "route", "demote"), "done")
    assert report.source == "prod-aws" and report.pending == [] and report.time_to_serve_s is not None
    assert journal_steps(journal) == statuses(report)
    assert not lock_path(journal).exists(), "the lock is released"
    assert clock.slept[-1] == 60.0, "the old primary drains before its demotion"


def test_a_failed_promote_routes_nothing(journal: Path) -> None:
    control = FakeControl()
    control.faults["promote"] = [RuntimeError("azure API 500")]
    report = run(control, journal)
    assert not report.ok and report.failed_step == "promote"
    assert "azure API 500" in (report.steps[1].error or "")
    assert control.serving == "prod-aws" and report.serving == "prod-aws"
    assert control.names() == ["active", "promote"]
    assert statuses(report) == {"preflight": "done", "promote": "failed", "health": "pending",
                                "route": "pending", "demote": "pending"}


def test_health_that_never_passes_times_out_and_routes_nothing(journal: Path) -> None:
    control = FakeControl(health=lambda n: False)
    clock = FakeClock()
    report = run(control, journal, clock, health_timeout_s=100)
    assert not report.ok and report.failed_step == "health"
    assert control.serving == "prod-aws" and "route" not in control.names()
    assert 100 <= clock.now - 1000.0 <= 110, "the gate waits the timeout, through the injected sleep"
    assert control.probes == 11


def test_flapping_health_resets_the_count(journal: Path) -> None:
    # pass, pass, fail, pass, raise, pass, pass, pass: only the last three count.
    pattern = [True, True, False, True, None, True, True, True]
    control = FakeControl(health=lambda n: bool(pattern[n - 1]))
    control.faults["healthy"] = [None, None, None, None, OSError("reset by peer")]
    report = run(control, journal)
    assert report.ok and control.serving == "prod-azure"
    assert control.probes == 8


def test_a_clock_that_stands_still_or_jumps_back_still_ends_the_gate(journal: Path) -> None:
    times = iter([5000.0, 10.0] + [10.0] * 1000)
    control = FakeControl(health=lambda n: False)
    report = failover("prod-azure", control=control, journal=journal, health_timeout_s=50,
                      sleep=lambda s: None, clock=lambda: next(times))
    assert report.failed_step == "health" and control.probes == 6


def test_route_fails_then_recovers(journal: Path) -> None:
    control = FakeControl()
    control.faults["route"] = [TimeoutError("route53 throttled"), None]
    report = run(control, journal)
    assert report.ok and control.serving == "prod-azure"
    assert control.names() == ["active", "promote", "route", "route", "demote"]
    assert json.loads(journal.read_text())["steps"]["route"]["attempts"] == 1


def test_route_that_keeps_failing_leaves_the_target_promoted_and_traffic_where_it_was(journal: Path) -> None:
    control = FakeControl()
    control.faults["route"] = [RuntimeError("denied")] * ROUTE_ATTEMPTS
    report = run(control, journal)
    assert not report.ok and report.failed_step == "route"
    assert control.names() == ["active", "promote", "route", "route", "route"]
    assert control.roles == {"prod-aws": "primary", "prod-azure": "primary"}, "both can serve: nobody is left dark"
    assert control.serving == "prod-aws" == report.serving
    # The rerun does not promote or probe again: it routes, then demotes.
    again = FakeControl()
    again.proven.add("prod-azure")
    again.roles["prod-azure"] = "primary"
    report = run(again, journal)
    assert report.ok and again.names() == ["route", "demote"] and again.probes == 0
    assert statuses(report)["promote"] == "skipped"


def test_a_failed_demotion_is_a_warning_and_a_rerun_only_demotes(journal: Path) -> None:
    control = FakeControl()
    control.faults["demote"] = [ConnectionError("AWS unreachable")]
    report = run(control, journal)
    assert report.ok and control.serving == "prod-azure"
    assert statuses(report)["demote"] == "pending" and report.pending == ["demote"]
    assert any("demotion of prod-aws failed" in w for w in report.warnings)
    assert journal_steps(journal)["demote"] == "pending"
    control.calls.clear()
    report = run(control, journal)
    assert report.ok and control.names() == ["demote"] and report.pending == []
    assert control.roles["prod-aws"] == "standby"
    # Finished: the same command again has nothing to do.
    control.calls.clear()
    report = run(control, journal)
    assert report.nothing_to_do and control.names() == ["active"]


@pytest.mark.parametrize("crash", [KeyboardInterrupt(), SystemExit(1)])
@pytest.mark.parametrize("step", ["promote", "route", "demote"])
def test_a_crash_mid_run_resumes_without_rerunning_finished_steps(journal: Path, step: str,
                                                                     crash: BaseException) -> None:
    control = FakeControl()
    control.faults[step] = [crash]
    with pytest.raises(type(crash)):
        run(control, journal)
    assert not lock_path(journal).exists()
    before = control.names()
    assert before[-1] == step
    control.calls.clear()
    report = run(control, journal)
    assert report.ok and control.serving == "prod-azure"
    after = control.names()
    order = ["promote", "route", "demote"]
    assert after == order[order.index(step):], "finished steps are not run again"
    assert ("healthy" in dict(control.calls)) == (step == "promote")


def test_a_crash_between_steps_resumes_at_the_next_one(journal: Path) -> None:
    control = FakeControl()
    original = control.promote

    def promote_then_die(stack: str) -> None:
        original(stack)
        raise KeyboardInterrupt  # the promote happened; the journal never heard it finished

    control.promote = promote_then_die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run(control, journal)
    assert journal_steps(journal)["promote"] == "failed"
    control.promote = original  # type: ignore[method-assign]
    control.calls.clear()
    assert run(control, journal).ok
    assert control.names() == ["promote", "route", "demote"], "an unfinished step runs again (it is idempotent)"


def test_a_second_run_on_the_same_journal_refuses_and_names_the_holder(journal: Path) -> None:
    control = FakeControl()
    inner: list[BaseException] = []

    def promote(stack: str) -> None:
        try:
            run(FakeControl(), journal)
        except LockHeld as exc:
            inner.append(exc)
        FakeControl.promote(control, stack)

    control.promote = promote  # type: ignore[method-assign]
    assert run(control, journal).ok
    assert len(inner) == 1
    message = str(inner[0])
    assert socket.gethostname() in message and str(os.getpid()) in message


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_a_dead_holders_lock_is_taken_over_with_a_warning(journal: Path) -> None:
    journal.parent.mkdir(parents=True)
    import time
    lock_path(journal).write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "user": "x",
                                              "started_at": "then", "started_epoch": time.time()}))
    report = run(FakeControl(), journal)
    assert report.ok and any("took over the lock" in w and "is gone" in w for w in report.warnings)


def test_a_lock_from_another_host_is_kept_until_it_is_old(journal: Path) -> None:
    import time
    journal.parent.mkdir(parents=True)
    holder = {"host": "elsewhere", "pid": 1, "user": "ops", "started_at": "now", "started_epoch": time.time()}
    lock_path(journal).write_text(json.dumps(holder))
    control = FakeControl()
    with pytest.raises(LockHeld, match="user ops on elsewhere"):
        run(control, journal)
    assert control.calls == [] and not journal.exists()
    holder["started_epoch"] = time.time() - 7 * 3600
    lock_path(journal).write_text(json.dumps(holder))
    assert run(control, journal).ok


def test_dry_run_changes_nothing(journal: Path) -> None:
    control = FakeControl()
    report = run(control, journal, dry_run=True)
    assert report.ok and report.dry_run
    assert control.calls == [("active", "")] and not journal.parent.exists()
    assert statuses(report) == dict.fromkeys(("preflight", "promote", "health", "route", "demote"), "pending")
    # From a journal with only the demotion left, the dry run plans only the demotion.
    control.faults["demote"] = [RuntimeError("down")]
    run(control, journal)
    before = journal.read_bytes()
    report = run(control, journal, dry_run=True)
    assert report.pending == ["demote"] and journal.read_bytes() == before


def test_the_target_already_serving_has_nothing_to_do(journal: Path) -> None:
    control = FakeControl(active="prod-azure")
    report = run(control, journal)
    assert report.ok and report.nothing_to_do and control.names() == ["active"]


def test_a_finished_failover_then_another_target_starts_fresh(journal: Path) -> None:
    control = FakeControl()
    assert run(control, journal).ok
    control.calls.clear()
    clock = FakeClock()
    report = failover("prod-aws", control=control, journal=journal, health_timeout_s=60, sleep=clock.sleep,
                      clock=clock)
    assert report.ok and control.serving == "prod-aws" and control.names() == ["active", "promote", "route", "demote"]


def test_an_unfinished_failover_binds_the_journal_to_its_target(journal: Path) -> None:
    control = FakeControl(health=lambda n: False)
    run(control, journal, health_timeout_s=10)
    with pytest.raises(JournalConflict, match="unfinished failover to prod-azure"):
        failover("prod-gcp", control=control, journal=journal, sleep=lambda s: None)


def test_failing_back_drops_a_pending_demotion_of_the_new_target(journal: Path) -> None:
    control = FakeControl()
    control.faults["demote"] = [RuntimeError("down")]
    run(control, journal)
    control.calls.clear()
    clock = FakeClock()
    report = failover("prod-aws", control=control, journal=journal, health_timeout_s=60, sleep=clock.sleep,
                      clock=clock)
    assert report.ok and control.serving == "prod-aws"
    assert control.names() == ["active", "promote", "route", "demote"]
    assert ("demote", "prod-azure") in control.calls and ("demote", "prod-aws") not in control.calls


def test_bad_input_and_a_broken_journal_are_refused(journal: Path) -> None:
    with pytest.raises(UsageError):
        failover("prod-gcp", control=FakeControl(), journal=journal, pair=("prod-aws", "prod-azure"))
    journal.parent.mkdir(parents=True)
    journal.write_text("{not json")
    with pytest.raises(JournalError):
        run(FakeControl(), journal)


def test_an_active_call_that_fails_is_a_failed_preflight(journal: Path) -> None:
    control = FakeControl()
    control.faults["active"] = [RuntimeError("no state backend")]
    report = run(control, journal)
    assert not report.ok and report.failed_step == "preflight" and control.names() == ["active"]


def test_a_killed_holder_not_yet_reaped_is_dead(journal: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc.kill()
        import time
        for _ in range(100):
            if Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                break
            time.sleep(0.05)
        journal.parent.mkdir(parents=True)
        lock_path(journal).write_text(json.dumps({"host": socket.gethostname(), "pid": proc.pid}))
        report = run(FakeControl(), journal)
        assert report.ok and any("is gone" in w for w in report.warnings)
    finally:
        proc.wait()


def test_without_demotion_the_run_stops_after_routing_and_a_rerun_demotes(journal: Path) -> None:
    control = FakeControl()
    report = run(control, journal, demote=False)
    assert report.ok and control.names() == ["active", "promote", "route"] and report.pending == ["demote"]
    control.calls.clear()
    assert run(control, journal).ok and control.names() == ["demote"]
