"""`venv/bin/im-platform failover --to STACK [--dry-run] [--yes] [--journal FILE] [--health-timeout SECONDS]`

Moves the public name of a DR pair to STACK (see `infra.failover.orchestrator` for the steps and guarantees).
The pair and its traffic stack are found in stacks/: the traffic stack whose
`im-platform:traffic.stacks` lists STACK. Before anything changes, a real run checks what it needs:
the Pulumi CLI (on PATH or in $PULUMI_HOME/bin, new enough for the SDK) and that both stacks of the
pair and the traffic stack can be selected. Exit status: 0 done (a pending demotion is a warning),
1 a step failed (named), 2 bad usage, an unknown stack, a pair that disagrees, a preflight problem
(one line each), or the journal held by another run. The journal defaults to `.failover/<traffic-stack>.json` in the repository.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.failover.orchestrator import (
    DEFAULT_HEALTH_TIMEOUT_S,
    DRAIN_S,
    HEALTH_PASSES,
    ROUTE_ATTEMPTS,
    Control,
    FailoverError,
    Report,
    failover,
    read_journal,
    unfinished,
)

ROOT = Path(__file__).resolve().parents[2]
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What may reach $GITHUB_OUTPUT and a concurrency group: no newline, no expression, no space.
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PairError(Exception):
    """The target is not a stack a failover can move traffic to (one line for the operator)."""


@dataclass(frozen=True)
class Pair:
    traffic_stack: str
    name: str             # the public name
    stacks: tuple[str, str]
    active: str


def _config(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PairError(f"cannot read {path}: {exc}") from exc
    config = doc.get("config") if isinstance(doc, dict) else None
    return config if isinstance(config, dict) else {}


def find_pair(target: str, stacks_dir: Path) -> Pair:
    """The traffic stack that lists `target`, checked against both pair stacks' `im-platform:dr`."""
    if not (stacks_dir / f"Pulumi.{target}.yaml").is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise PairError(f"unknown stack {target}: no {stacks_dir.name}/Pulumi.{target}.yaml "
                        f"(stacks: {', '.join(known)})")
    own = _config(stacks_dir / f"Pulumi.{target}.yaml").get("im-platform:traffic")
    if isinstance(own, dict):
        raise PairError(f"{target} is a traffic stack: fail over to one of {', '.join(map(str, own.get('stacks') or []))}")
    found: list[Pair] = []
    for path in sorted(stacks_dir.glob("Pulumi.*.yaml")):
        traffic = _config(path).get("im-platform:traffic")
        if not isinstance(traffic, dict):
            continue
        stacks = traffic.get("stacks")
        if isinstance(stacks, list) and target in stacks:
            name = path.name[len("Pulumi."):-len(".yaml")]
            if len(stacks) != 2:
                raise PairError(f"im-platform:traffic.stacks of {name} is {stacks}: two stacks expected")
            found.append(Pair(name, str(traffic.get("name") or ""), (str(stacks[0]), str(stacks[1])),
                              str(traffic.get("active") or "")))
    if not found:
        raise PairError(f"{target} is in no DR pair: no traffic stack in {stacks_dir.name}/ lists it "
                        "in im-platform:traffic.stacks")
    if len(found) > 1:
        raise PairError(f"{target} is listed by several traffic stacks ({', '.join(p.traffic_stack for p in found)})")
    pair = found[0]
    peer = pair.stacks[1] if pair.stacks[0] == target else pair.stacks[0]
    for stack, other in ((target, peer), (peer, target)):
        dr = _config(stacks_dir / f"Pulumi.{stack}.yaml").get("im-platform:dr")
        if not isinstance(dr, dict) or dr.get("peer") != other:
            raise PairError(f"im-platform:dr.peer of {stack} is {(dr or {}).get('peer') if isinstance(dr, dict) else None!r}: "
                            f"{other} expected (the traffic stack {pair.traffic_stack} pairs them)")
    return pair


def default_journal(traffic_stack: str) -> Path:
    return ROOT / ".failover" / f"{traffic_stack}.json"


def _print_step(name: str, status: str, seconds: float, error: str | None, *, to: Any = None) -> None:
    if status == "running":
        print(f"==> {name} ...", flush=True, file=to)
    else:
        print(f"<== {name}: {status} in {seconds:.1f}s" + (f": {error}" if error else ""), flush=True, file=to)


def report_json(report: Report, pair: Pair) -> dict[str, Any]:
    """`failover --json`: the run's outcome as one document (the same facts as the summary)."""
    return {"target": report.target, "source": report.source, "serving": report.serving,
            "trafficStack": pair.traffic_stack, "ok": report.ok, "dryRun": report.dry_run,
            "nothingToDo": report.nothing_to_do, "timeToServeSeconds": report.time_to_serve_s,
            "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3), "error": s.error}
                      for s in report.steps],
            "pending": list(report.pending), "failedStep": report.failed_step, "warnings": list(report.warnings),
            "journal": report.journal}


def _confirm(pair: Pair, target: str) -> bool:
    source = pair.active
    print(f"Fail over {pair.name or pair.traffic_stack} from {source} to {target}: promote {target}, "
          f"route traffic to it, demote {source}.")
    answer = input(f"Type {target} to go on: ").strip()
    return answer == target


def _describe(step: str, report: Report, pair: Pair, health_timeout_s: float) -> str:
    target, source = report.target, report.source or "?"
    return {
        "preflight": f"check that {pair.traffic_stack} routes to {target}'s peer",
        "promote": f"{target}: im-platform:dr.role = primary, pulumi up",
        "health": f"wait for {HEALTH_PASSES} passing probes in a row of {target}'s gateway "
                  f"(timeout {health_timeout_s:g}s)",
        "route": f"{pair.traffic_stack}: im-platform:traffic.active = {target}, pulumi up "
                 f"(up to {ROUTE_ATTEMPTS} attempts)",
        "demote": f"{source}: drain {DRAIN_S:g}s, im-platform:dr.role = standby, pulumi up",
    }[step]


def summary(report: Report, pair: Pair, health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S) -> list[str]:
    if report.nothing_to_do:
        return [f"{report.target} already serves {pair.name or pair.traffic_stack} "
                f"(traffic stack {pair.traffic_stack}): nothing to do."]
    lines = []
    if report.dry_run:
        lines.append(f"Dry run: fail over {pair.name or 'the public name'} (traffic stack {pair.traffic_stack}) "
                     f"from {report.serving} to {report.target}. Nothing is changed; no journal is written.")
        for step in report.steps:
            if step.status == "pending":
                lines.append(f"  {step.name:<9} would run: {_describe(step.name, report, pair, health_timeout_s)}")
            else:
                lines.append(f"  {step.name:<9} skipped: {step.error or 'done (journal ' + report.journal + ')'}")
    else:
        lines.append("")
        lines.append("Steps: " + ", ".join(f"{s.name} {s.status}" + (f" ({s.seconds:.1f}s)" if s.seconds else "")
                                           for s in report.steps))
        lines.append(f"Serving: {report.serving or 'unknown: check the traffic stack'}")
        if report.time_to_serve_s is not None:
            lines.append(f"Time to serve: {report.time_to_serve_s:.1f}s (start to routed)")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    if report.pending and not report.dry_run:
        lines.append(f"Pending: {', '.join(report.pending)} (rerun the same command; the journal "
                     f"{report.journal} resumes where this run stopped)")
    if report.failed_step:
        failed = next(s for s in report.steps if s.name == report.failed_step)
        lines.append(f"FAILED at {report.failed_step}: {failed.error}")
    return lines


def cmd_failover(args: argparse.Namespace, control: Control | None = None) -> int:
    stacks_dir = Path(args.stacks_dir) if args.stacks_dir else ROOT / "stacks"
    target = args.to
    try:
        pair = find_pair(target, stacks_dir)
    except PairError as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.health_timeout < 0:
        print(f"failover: --health-timeout is {args.health_timeout:g}: seconds >= 0 expected", file=sys.stderr)
        return EXIT_USAGE
    journal = Path(args.journal) if args.journal else default_journal(pair.traffic_stack)
    try:
        resuming = unfinished(read_journal(journal)) == target
    except FailoverError as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if pair.active == target and not resuming:
        if args.json:
            done = Report(ok=True, steps=[], target=target, source=target, serving=target, nothing_to_do=True,
                          dry_run=args.dry_run, journal=str(journal))
            print(json.dumps(report_json(done, pair), indent=2))
        else:
            print(f"failover: {target} already serves {pair.name or pair.traffic_stack} "
                  f"(traffic stack {pair.traffic_stack}): nothing to do")
        return EXIT_OK
    if not args.dry_run and not args.yes and not sys.stdin.isatty():
        print("failover: no terminal to confirm on: pass --yes to run without a prompt", file=sys.stderr)
        return EXIT_USAGE
    if control is None:
        from infra.failover.control import PulumiControl

        real = PulumiControl(pair.traffic_stack, work_dir=stacks_dir.parent, stacks_dir=stacks_dir)
        if not args.dry_run:
            # Before the confirmation, the journal or any file: a run that cannot finish does not start.
            problems = real.preflight([*pair.stacks, pair.traffic_stack])
            for problem in problems:
                print(f"failover: preflight: {problem}", file=sys.stderr)
            if problems:
                return EXIT_USAGE
        control = real
    if not args.dry_run and not args.yes:
        if not _confirm(pair, target):
            print("failover: not confirmed; nothing was changed", file=sys.stderr)
            return EXIT_USAGE
    started = time.monotonic()
    try:
        # time.sleep looked up when the run waits, not bound once at import: one clock for the process.
        report = failover(target, control=control, journal=journal, health_timeout_s=args.health_timeout,
                          sleep=lambda seconds: time.sleep(seconds), dry_run=args.dry_run, pair=pair.stacks,
                          on_step=None if args.dry_run else functools.partial(
                              _print_step, to=sys.stderr if args.json else sys.stdout),
                          demote=not args.no_demote)
    except FailoverError as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"failover: interrupted; {journal} records the step that was running. Rerun the same "
              "command to resume (that step runs again; finished ones do not)", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report_json(report, pair), indent=2))
        return EXIT_OK if report.ok else EXIT_FAILED
    for line in summary(report, pair, args.health_timeout):
        print(line)
    if not args.dry_run:
        print(f"Total: {time.monotonic() - started:.1f}s")
    return EXIT_OK if report.ok else EXIT_FAILED


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("failover", help="move a DR pair's traffic to STACK: promote, prove, route, demote")
    p.add_argument("--to", required=True, metavar="STACK", help="the stack to serve (one of a DR pair)")
    p.add_argument("--dry-run", action="store_true", help="print the steps it would run; change nothing")
    p.add_argument("--yes", action="store_true", help="no confirmation prompt (required without a terminal)")
    p.add_argument("--journal", metavar="FILE",
                   help="the run's journal (default .failover/<traffic-stack>.json); a rerun resumes from it")
    p.add_argument("--health-timeout", type=float, default=DEFAULT_HEALTH_TIMEOUT_S, metavar="SECONDS",
                   help=f"how long the target may take to pass {HEALTH_PASSES} probes in a row (default %(default)g)")
    p.add_argument("--no-demote", action="store_true",
                   help="stop after routing; the demotion stays pending in the journal for a rerun "
                        "from where the old primary's cluster API is reachable")
    p.add_argument("--stacks-dir", metavar="DIR", help="the folder of stack files (default stacks/)")
    p.add_argument("--json", action="store_true",
                   help="the outcome as one JSON document on stdout (the steps' progress goes to stderr)")
    p.set_defaults(func=cmd_failover, needs_stack=False)


def github_outputs(target: str, stacks_dir: Path) -> dict[str, str]:
    """For the failover workflow: the pair's traffic stack (its concurrency group) and the target's
    environment (the GitHub environment whose reviewers approve the run)."""
    pair = find_pair(target, stacks_dir)
    environment = _config(stacks_dir / f"Pulumi.{target}.yaml").get("im-platform:environment")
    for key, value in (("traffic stack", pair.traffic_stack), ("im-platform:environment", environment)):
        if not isinstance(value, str) or not STACK_NAME.match(value):
            raise PairError(f"{key} of {target} is {value!r}: a name of letters, digits, '-', '_' or '.' expected")
    source = pair.stacks[1] if pair.stacks[0] == target else pair.stacks[0]
    clouds = {s: _config(stacks_dir / f"Pulumi.{s}.yaml").get("im-platform:cloud") for s in (target, source)}
    for key, value in (("im-platform:cloud", clouds[target]), ("im-platform:cloud", clouds[source])):
        if value not in ("aws", "gcp", "azure"):
            raise PairError(f"{key} of the pair of {target} is {value!r}: aws, gcp or azure expected")
    from infra.policy.check import stack_clouds

    # What each job signs in to, from the offline plans: the failover job updates the target and the
    # traffic stack, the demote job the old primary (a GKE or AKS stack with ACME TLS needs AWS too).
    promote = sorted({*stack_clouds(stacks_dir / f"Pulumi.{target}.yaml"),
                      *stack_clouds(stacks_dir / f"Pulumi.{pair.traffic_stack}.yaml")})
    demote = stack_clouds(stacks_dir / f"Pulumi.{source}.yaml")
    return {"traffic-stack": pair.traffic_stack, "environment": str(environment), "cloud": str(clouds[target]),
            "peer": source, "peer-cloud": str(clouds[source]),
            "clouds": json.dumps(promote, separators=(",", ":")), "peer-clouds": json.dumps(demote, separators=(",", ":"))}


def main(argv: list[str]) -> int:
    """`venv/bin/python -m infra.failover.command --github-output STACK`: key=value lines for $GITHUB_OUTPUT."""
    if len(argv) != 2 or argv[0] != "--github-output":
        print("usage: venv/bin/python -m infra.failover.command --github-output STACK", file=sys.stderr)
        return EXIT_USAGE
    try:
        outputs = github_outputs(argv[1], ROOT / "stacks")
    except PairError as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for key, value in outputs.items():
        print(f"{key}={value}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
