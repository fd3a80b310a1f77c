"""Failover of a DR pair: promote the standby, prove it serves, move traffic, demote the old primary.

Pure orchestration (no Pulumi import): the cloud is reached only through the `Control` port, so
every fault can be injected in a test. The real port is `infra.dr.control.PulumiControl`.

Steps, in order (each recorded in the journal before and after it runs):

    preflight  the traffic stack routes to the target's peer (the target is not active yet)
    promote    control.promote(target)
    health     HEALTH_PASSES consecutive passing probes of the target, within health_timeout_s
    route      control.route(target), up to ROUTE_ATTEMPTS attempts
    demote     control.demote(source) after a drain; a failure is a warning and stays pending

Guarantees: `route` runs only after `health` is done in the journal; a failed promote or health
gate routes nothing; `demote` runs only after `route` is done and never on the target; a finished
step is never run again on resume; one run at a time per journal (a lock file beside it).

The journal (JSON, written atomically: temp file + fsync + os.replace) records the target, the
source (the stack that served when the failover started), each step's status (pending, running,
done, failed), attempts, timestamps and last error. A journal left by a finished failover is
history: the next run starts fresh. An unfinished one binds the journal to its target.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

STEPS = ("preflight", "promote", "health", "route", "demote")
HEALTH_PASSES = 3            # consecutive passing probes before traffic may move
ROUTE_ATTEMPTS = 3           # a DNS update is small and idempotent: retry transient API errors
ROUTE_BACKOFF_S = 15.0       # first wait between route attempts; doubles after each failure
PROBE_INTERVAL_S = 10.0      # matches the traffic stack's default health-check interval
DRAIN_S = 60.0               # twice the default DNS TTL (30 s): resolvers drop the old answer first
DEFAULT_HEALTH_TIMEOUT_S = 900.0
# A lock older than this is taken over even if its holder cannot be checked (another machine): no
# failover runs this long (a GitHub job stops at 6 h; four `pulumi up` plus the gate take < 2 h).
LOCK_TTL_S = 6 * 3600.0
JOURNAL_VERSION = 1


class Control(Protocol):
    def active(self) -> str: ...                  # the stack the traffic stack routes to now
    def promote(self, stack: str) -> None: ...    # dr.role primary + up; idempotent
    def demote(self, stack: str) -> None: ...     # dr.role standby + up; idempotent
    def healthy(self, stack: str) -> bool: ...    # one probe of the stack's public gateway
    def route(self, stack: str) -> None: ...      # traffic stack active = stack + up; idempotent


class Step(NamedTuple):
    name: str
    status: str            # done | failed | skipped | pending
    seconds: float
    error: str | None


@dataclass
class Report:
    ok: bool
    steps: list[Step]
    target: str
    source: str | None = None          # the stack that served when the failover started
    serving: str | None = None         # the stack traffic goes to after this run, as far as known
    time_to_serve_s: float | None = None  # start of the failover to the end of the route step
    warnings: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # steps still to run (rerun with the journal)
    failed_step: str | None = None
    nothing_to_do: bool = False
    dry_run: bool = False
    journal: str = ""


class FailoverError(Exception):
    """The run could not start: nothing was changed (the CLI exits 2)."""


class LockHeld(FailoverError):
    def __init__(self, lock: Path, holder: dict[str, Any]) -> None:
        self.lock, self.holder = lock, holder
        super().__init__(
            f"another failover holds {lock}: {describe_holder(holder)}. Wait for it to finish; if that run "
            f"is certainly gone, delete {lock} (a lock older than {LOCK_TTL_S / 3600:.0f} h is taken over)")


class JournalConflict(FailoverError):
    """The journal belongs to an unfinished failover to another stack."""


class JournalError(FailoverError):
    """The journal cannot be read."""


class UsageError(FailoverError):
    """The target is not a stack this failover can move traffic to."""


class _StepFailed(Exception):
    """A step of the failover failed; its message says which and why (raised and caught in this module)."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown holder (unreadable lock file)"
    return (f"user {holder.get('user', '?')} on {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"since {holder.get('started_at', '?')}")


# ---------------------------------------------------------------------------------------------
# Journal and lock.


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself must reach the disk, or a power cut could bring back the old journal.
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_journal(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JournalError(f"the journal {path} is not valid JSON ({exc}); move it aside after checking "
                           "which steps ran (the stack files and the traffic stack show the state)") from exc
    if (not isinstance(data, dict) or not isinstance(data.get("target"), str)
            or not isinstance(data.get("steps"), dict)
            or any(not isinstance(data["steps"].get(s), dict) for s in STEPS)):
        raise JournalError(f"the journal {path} is not a failover journal (target and steps expected)")
    return data


def _finished(journal: dict[str, Any]) -> bool:
    return all(journal["steps"][s].get("status") in ("done", "skipped") for s in STEPS)


def unfinished(journal: dict[str, Any] | None) -> str | None:
    """The target of the unfinished failover a journal holds, if any."""
    return None if journal is None or _finished(journal) else str(journal["target"])


def _done(journal: dict[str, Any], step: str) -> bool:
    return journal["steps"][step].get("status") in ("done", "skipped")


def _new_journal(target: str) -> dict[str, Any]:
    return {
        "version": JOURNAL_VERSION, "target": target, "source": None,
        "started_at": _now_iso(), "started_epoch": time.time(), "updated_at": _now_iso(),
        "routed_at": None, "routed_epoch": None, "finished_at": None,
        "steps": {s: {"status": "pending", "attempts": 0, "started_at": None, "ended_at": None,
                      "seconds": None, "error": None} for s in STEPS},
    }


def lock_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".lock")


def _read_lock(lock: Path) -> dict[str, Any]:
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True      # alive, owned by someone else
    except OSError:
        return True
    # A killed process its parent has not reaped yet still answers signal 0: a zombie is gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _stale_reason(lock: Path, holder: dict[str, Any], ttl_s: float) -> str | None:
    try:
        age = time.time() - float(holder.get("started_epoch") or lock.stat().st_mtime)
    except (OSError, TypeError, ValueError):
        return None
    if age > ttl_s:
        return f"it is {age / 3600:.1f} h old (more than {ttl_s / 3600:.1f} h)"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
        return f"its holder (pid {pid} on this host) is gone"
    return None


@contextlib.contextmanager
def _lock(journal: Path, warnings: list[str], ttl_s: float) -> Iterator[None]:
    lock = lock_path(journal)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "user": _user(), "started_at": _now_iso(),
          "started_epoch": time.time(), "token": uuid.uuid4().hex}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            raw = _raw(lock)
            holder = _read_lock(lock)
            reason = _stale_reason(lock, holder, ttl_s)
            if reason is None:
                raise LockHeld(lock, holder) from None
            # Take over only the very lock judged stale: another run may have taken it meanwhile.
            if _raw(lock) != raw:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            warnings.append(f"took over the lock {lock} of {describe_holder(holder)}: {reason}")
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        raise LockHeld(lock, _read_lock(lock))
    try:
        yield
    finally:
        if _read_lock(lock).get("token") == me["token"]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)


def _raw(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


# ---------------------------------------------------------------------------------------------
# Planning: what this run does with the journal it finds.


@dataclass
class _Plan:
    journal: dict[str, Any]
    resumed: bool
    warnings: list[str]


def _plan(target: str, existing: dict[str, Any] | None, path: Path) -> _Plan:
    if existing is None:
        return _Plan(_new_journal(target), False, [])
    if _finished(existing):
        note = [] if existing["target"] == target else [
            f"the journal {path} holds a finished failover to {existing['target']}; starting a new one"]
        return _Plan(_new_journal(target), False, note)
    steps = existing["steps"]
    if existing["target"] == target:
        return _Plan(existing, True, [f"resuming the failover to {target} from {path}"])
    untouched = all(steps[s].get("status") == "pending" and not steps[s].get("attempts") for s in STEPS[1:])
    if untouched:
        return _Plan(_new_journal(target), False, [
            f"the journal {path} held a failover to {existing['target']} that changed nothing; starting over"])
    only_demotion = all(_done(existing, s) for s in STEPS[:-1])
    if only_demotion and existing.get("source") == target:
        return _Plan(_new_journal(target), False, [
            f"dropping the pending demotion of {target} (left by the failover to {existing['target']}): "
            f"{target} becomes the primary again"])
    left = [s for s in STEPS if not _done(existing, s)]
    raise JournalConflict(
        f"the journal {path} holds an unfinished failover to {existing['target']} "
        f"(from {existing.get('source')}; not done: {', '.join(left)}). Finish it first with "
        f"--to {existing['target']}, or abandon it: put the stacks back by hand and move the journal aside")


# ---------------------------------------------------------------------------------------------
# The run.


class _Run:
    def __init__(self, target: str, control: Control, path: Path, journal: dict[str, Any],
                 sleep: Callable[[float], None], clock: Callable[[], float], health_timeout_s: float,
                 probe_interval_s: float, drain_s: float, on_step: Callable[[str, str, float, str | None], None] | None,
                 pair: Sequence[str] | None) -> None:
        self.target, self.control, self.path, self.j = target, control, path, journal
        self.sleep, self.clock = sleep, clock
        self.health_timeout_s, self.probe_interval_s, self.drain_s = health_timeout_s, probe_interval_s, drain_s
        self.on_step, self.pair = on_step, pair
        self.report_steps: dict[str, Step] = {}
        self.warnings: list[str] = []
        self.routed_here = False
        self.routed_clock = 0.0
        self.started_here = False
        self.nothing_to_do = False

    def save(self) -> None:
        self.j["updated_at"] = _now_iso()
        _write_atomic(self.path, self.j)

    def _elapsed(self, start: float) -> float:
        try:
            return max(0.0, self.clock() - start)
        except Exception:  # noqa: BLE001 - a broken clock must not hide the step's outcome
            return 0.0

    def run_step(self, name: str, body: Callable[[], None]) -> bool:
        """Runs one step with journal entries before and after; True when it is done."""
        entry = self.j["steps"][name]
        if _done(self.j, name):
            self.report_steps[name] = Step(name, "skipped", 0.0, None)
            return True
        entry.update(status="running", started_at=_now_iso(), ended_at=None, error=None)
        entry["attempts"] = int(entry.get("attempts") or 0) + 1
        self.save()
        self._notify(name, "running", 0.0, None)
        start = self.clock()
        try:
            body()
        except BaseException as exc:
            seconds = self._elapsed(start)
            message = str(exc) if isinstance(exc, _StepFailed) else f"{type(exc).__name__}: {exc}"
            interrupted = not isinstance(exc, Exception)
            status = "pending" if name == "demote" and not interrupted else "failed"
            if interrupted:
                message = f"interrupted ({type(exc).__name__})"
            entry.update(status=status, ended_at=_now_iso(), seconds=round(seconds, 3), error=message)
            self.save()
            self.report_steps[name] = Step(name, status, seconds, message)
            self._notify(name, status, seconds, message)
            if interrupted:
                raise
            return False
        seconds = self._elapsed(start)
        entry.update(status="done", ended_at=_now_iso(), seconds=round(seconds, 3), error=None)
        if name == "route":
            self.j["routed_at"], self.j["routed_epoch"] = _now_iso(), time.time()
        self.save()
        self.report_steps[name] = Step(name, "done", seconds, None)
        self._notify(name, "done", seconds, None)
        return True

    def _notify(self, name: str, status: str, seconds: float, error: str | None) -> None:
        if self.on_step is not None:
            self.on_step(name, status, seconds, error)

    # Step bodies -----------------------------------------------------------------------------

    def preflight(self) -> None:
        active = self.control.active()
        if not isinstance(active, str) or not active:
            raise _StepFailed(f"the traffic stack names no active stack (got {active!r})")
        if self.pair is not None and active not in self.pair:
            raise _StepFailed(f"the traffic stack routes to {active}, which is not one of the pair "
                              f"{', '.join(self.pair)}: fix the traffic stack first")
        if active == self.target:
            self.nothing_to_do = True
            return
        self.j["source"] = active

    def promote(self) -> None:
        self.control.promote(self.target)

    def health(self) -> None:
        start = self.clock()
        slept = 0.0
        passes = probes = 0
        last = "no probe passed"
        while True:
            try:
                ok = self.control.healthy(self.target) is True
                if not ok:
                    last = "the probe failed"
            except Exception as exc:  # noqa: BLE001 - a probe that raises is a failed probe
                ok, last = False, f"the probe raised {type(exc).__name__}: {exc}"
            probes += 1
            passes = passes + 1 if ok else 0
            if passes >= HEALTH_PASSES:
                return
            # Elapsed never runs backwards (a clock that jumps back) and never lags the time slept
            # (a clock that stands still): the gate always ends.
            elapsed = max(self._elapsed(start), slept)
            if elapsed >= self.health_timeout_s:
                raise _StepFailed(f"{self.target} did not pass {HEALTH_PASSES} health probes in a row within "
                                  f"{self.health_timeout_s:g} s ({probes} probes; last: {last})")
            wait = max(0.0, min(self.probe_interval_s, self.health_timeout_s - elapsed))
            self.sleep(wait)
            slept += wait

    def route(self) -> None:
        if not _done(self.j, "health") or not _done(self.j, "promote"):
            raise _StepFailed("refusing to route: the target has not passed the health gate")
        backoff = ROUTE_BACKOFF_S
        errors: list[str] = []
        for attempt in range(1, ROUTE_ATTEMPTS + 1):
            try:
                self.control.route(self.target)
                self.routed_here = True
                self.routed_clock = self.clock()
                return
            except Exception as exc:  # noqa: BLE001 - any Control error is a failed attempt
                errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
                self.j["steps"]["route"]["error"] = errors[-1]
                self.save()
            if attempt < ROUTE_ATTEMPTS:
                self.sleep(backoff)
                backoff *= 2
        raise _StepFailed(f"route to {self.target} failed {ROUTE_ATTEMPTS} times ({'; '.join(errors)})")

    def demote(self) -> None:
        source = self.j.get("source")
        if not _done(self.j, "route") or not source or source == self.target:
            raise _StepFailed("refusing to demote: traffic has not moved off it")
        if self.routed_here and self.drain_s > 0:
            self.sleep(self.drain_s)   # let resolvers and open connections leave the old primary
        self.control.demote(source)


def failover(target: str, *, control: Control, journal: str | os.PathLike[str], health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
             dry_run: bool = False, probe_interval_s: float = PROBE_INTERVAL_S, drain_s: float = DRAIN_S,
             pair: Sequence[str] | None = None, lock_ttl_s: float = LOCK_TTL_S, demote: bool = True,
             on_step: Callable[[str, str, float, str | None], None] | None = None) -> Report:
    """Moves traffic to `target`; see the module docstring. `on_step(name, status, seconds, error)`
    hears each step start ("running") and end (done, failed, pending). `demote=False` stops after
    the route step and leaves the demotion pending in the journal (for a run where the old
    primary's cluster is reachable). Raises FailoverError (LockHeld,
    JournalConflict, JournalError, UsageError) when the run cannot start; any other outcome is in
    the Report (ok False names the failed step)."""
    if not isinstance(target, str) or not target:
        raise UsageError(f"the target stack is {target!r}: a stack name is expected")
    if pair is not None and target not in pair:
        raise UsageError(f"{target} is not one of the pair {', '.join(pair)}")
    if not health_timeout_s >= 0:
        raise UsageError(f"the health timeout is {health_timeout_s!r}: seconds >= 0 expected")
    if not probe_interval_s > 0:
        raise UsageError(f"the probe interval is {probe_interval_s!r}: seconds > 0 expected")
    path = Path(journal)
    if dry_run:
        return _dry_run(target, control, path, pair)
    warnings: list[str] = []
    with _lock(path, warnings, lock_ttl_s):
        plan = _plan(target, read_journal(path), path)
        warnings += plan.warnings
        run = _Run(target, control, path, plan.journal, sleep, clock, health_timeout_s, probe_interval_s,
                   drain_s, on_step, pair)
        run.warnings = warnings
        started = clock()
        run.started_here = not _done(run.j, "preflight")
        failed: str | None = None
        if not run.run_step("preflight", run.preflight):
            failed = "preflight"
        elif run.nothing_to_do:
            for s in STEPS[1:]:
                run.j["steps"][s].update(status="skipped")
                run.report_steps[s] = Step(s, "skipped", 0.0, None)
            run.j["finished_at"] = _now_iso()
            run.save()
            return _report(run, ok=True, failed=None, started=started)
        else:
            for name, body in (("promote", run.promote), ("health", run.health), ("route", run.route)):
                if not run.run_step(name, body):
                    failed = name
                    break
            if failed is None and not demote and not _done(run.j, "demote"):
                run.warnings.append(f"the demotion of {run.j['source']} is left pending (no demotion asked for): "
                                    "rerun with the same journal where its cluster is reachable")
            elif failed is None and not run.run_step("demote", run.demote):
                run.warnings.append(
                    f"the demotion of {run.j['source']} failed ({run.j['steps']['demote']['error']}); "
                    f"{run.target} serves. Rerun with the same journal to demote it once its cloud answers")
        if failed is None and _finished(run.j):
            run.j["finished_at"] = _now_iso()
            run.save()
        return _report(run, ok=failed is None, failed=failed, started=started)


def _report(run: _Run, *, ok: bool, failed: str | None, started: float) -> Report:
    steps = [run.report_steps.get(s) or Step(s, "pending", 0.0, None) for s in STEPS]
    source = run.j.get("source")
    routed = _done(run.j, "route") and not run.nothing_to_do
    serving = run.target if (routed or run.nothing_to_do) else source
    time_to_serve: float | None = None
    if run.routed_here and run.started_here:
        time_to_serve = max(0.0, run.routed_clock - started)
    elif routed and not run.nothing_to_do:
        # Resumed: from the start of the failover in an earlier run, in wall time.
        with contextlib.suppress(TypeError, ValueError):
            time_to_serve = float(run.j["routed_epoch"]) - float(run.j["started_epoch"])
    pending = [s for s in STEPS if not _done(run.j, s)]
    return Report(ok=ok, steps=steps, target=run.target, source=source, serving=serving,
                  time_to_serve_s=time_to_serve, warnings=list(run.warnings), pending=pending,
                  failed_step=failed, nothing_to_do=run.nothing_to_do, journal=str(run.path))


def _dry_run(target: str, control: Control, path: Path, pair: Sequence[str] | None) -> Report:
    warnings: list[str] = []
    lock = lock_path(path)
    if lock.exists():
        warnings.append(f"a run holds {lock}: {describe_holder(_read_lock(lock))}; a real run would refuse")
    plan = _plan(target, read_journal(path), path)
    warnings += plan.warnings
    j = plan.journal
    try:
        active = control.active()
    except Exception as exc:  # noqa: BLE001 - reported, not raised: a dry run changes nothing
        steps = [Step("preflight", "failed", 0.0, f"{type(exc).__name__}: {exc}")]
        steps += [Step(s, "pending", 0.0, None) for s in STEPS[1:]]
        return Report(ok=False, steps=steps, target=target, source=j.get("source"), warnings=warnings,
                      pending=list(STEPS), failed_step="preflight", dry_run=True, journal=str(path))
    if pair is not None and active not in pair:
        raise UsageError(f"the traffic stack routes to {active}, which is not one of the pair {', '.join(pair)}")
    source = j.get("source") if _done(j, "preflight") else active
    nothing = not _done(j, "preflight") and active == target
    steps = []
    for s in STEPS:
        if nothing and s != "preflight":
            steps.append(Step(s, "skipped", 0.0, "nothing to do"))
        else:
            steps.append(Step(s, "skipped" if _done(j, s) else "pending", 0.0, None))
    pending = [] if nothing else [s for s in STEPS if not _done(j, s)]
    return Report(ok=True, steps=steps, target=target, source=source if not nothing else None, serving=active,
                  warnings=warnings, pending=pending, nothing_to_do=nothing, dry_run=True, journal=str(path))
