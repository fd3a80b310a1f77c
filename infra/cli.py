"""im-platform, offline: plan, check, stacks and manifests need no Pulumi CLI and no cloud.

    python -m infra.cli plan --stack NAME [--config-file FILE] [--json]
    python -m infra.cli failover --to STACK [--dry-run] [--yes] [--journal FILE] [--health-timeout SECONDS]

Exit status: 0 on success, 2 on a configuration error (one message, no traceback), 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.config.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
# Further subcommands: each module has `register(subparsers)`, which adds its parser and sets
# `func` (a callable taking the parsed args and returning the exit status). A command that reads no
# single stack sets `needs_stack=False` (failover names its stacks with --to).
EXTRA_COMMANDS: list[str] = ["infra.policy.check", "infra.offline.manifests", "infra.failover.command", "infra.cost.command"]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def render_tree(plan: Any) -> str:
    """Components and their children, then the node pools."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    urns = {r["urn"] for r in plan.resources}
    for r in plan.resources:
        parent = r["parent"] if r["parent"] in urns else None
        by_parent.setdefault(parent, []).append(r)
    lines = [f"Stack {plan.project}/{plan.stack}: {len(plan.resources)} resources"]

    def walk(parent: str | None, indent: str) -> None:
        for r in sorted(by_parent.get(parent, []), key=lambda x: (x["custom"], x["type"], x["name"])):
            flags = [f for f, on in (("protected", r["options"]["protect"]),
                                     ("ignores " + ",".join(r["options"]["ignoreChanges"]), r["options"]["ignoreChanges"]))
                     if on]
            suffix = f"  [{'; '.join(flags)}]" if flags else ""
            lines.append(f"{indent}{r['type']}  {r['name']}{suffix}")
            walk(r["urn"], indent + "    ")

    walk(None, "  ")
    pools = plan.outputs.get("nodePools") or []
    if pools:
        lines.append("")
        lines.append("Node pools:")
        width = max(len(p["name"]) for p in pools)
        for p in pools:
            types = ", ".join(p["machineTypes"])
            spot = "spot" if p["spot"] else "on-demand"
            lines.append(f"  {p['name']:<{width}}  {types}  {p['minNodes']}..{p['maxNodes']} nodes  {spot}")
    lines.append("")
    lines.append("Outputs:")
    for key in sorted(plan.outputs):
        if key != "nodePools":
            lines.append(f"  {key}: {plan.outputs[key]}")
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    from infra.offline.plan import plan_stack

    started = time.monotonic()
    if not args.json:
        _progress(f"Planning {args.stack or args.config_file} offline (mock runtime, no cloud calls)...")
    plan = plan_stack(args.stack, Path(args.config_file) if args.config_file else None)
    for line in plan.warnings:
        print(line, file=sys.stderr)
    if args.json:
        json.dump(plan.to_json(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(render_tree(plan))
        _progress(f"Planned in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print every resource the program would declare, offline")
    plan.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    plan.add_argument("--config-file", help="read this stack file instead (name taken from Pulumi.<name>.yaml)")
    plan.add_argument("--json", action="store_true", help="one JSON document on stdout")
    plan.set_defaults(func=cmd_plan)
    for module_name in EXTRA_COMMANDS:
        importlib.import_module(module_name).register(sub)
    return parser


def run(argv: list[str] | None, commands: Callable[[argparse.Namespace], int] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (getattr(args, "needs_stack", True) and getattr(args, "stack", "") is None
            and getattr(args, "config_file", "") is None):
        parser.error(f"{args.command} needs --stack NAME or --config-file FILE")
    try:
        if getattr(args, "stack", None) and not getattr(args, "config_file", None):
            from infra.offline.plan import stack_file

            stack_file(args.stack)  # an unknown stack is said before any work starts
        return (commands or args.func)(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        # The reader (head, less) went away: not an error of the plan.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a command-line tool
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("(run with IM_PLATFORM_DEBUG=1 for the full traceback)", file=sys.stderr)
        if os.environ.get("IM_PLATFORM_DEBUG"):
            raise
        return EXIT_FAILURE


# Commands that run for long (polling a cloud) keep Python's cyclic garbage collector.
_LONG_RUNNING = {"failover"}


def main() -> None:
    if not _LONG_RUNNING & set(sys.argv[1:2]):
        # An offline command is one short batch that ends with the process. The collector's full
        # passes walk the provider SDKs' thousands of modules again and again while they are
        # imported and while the program runs (a sixth of a plan's time) and free almost nothing;
        # the process gives all its memory back when it exits.
        gc.disable()
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
