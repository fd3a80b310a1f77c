"""im-platform: plan, check, cost, manifests and stacks run offline; failover drives Pulumi.

    venv/bin/im-platform plan --stack NAME [--config-file FILE] [--json]
    venv/bin/im-platform failover --to STACK [--dry-run] [--yes] [--json] [--journal FILE] ...
    venv/bin/im-platform --version

Exit status: 0 on success, 2 on a configuration or usage error (one message, no traceback), 1
otherwise. The commands table is in README.md, Commands.
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
EXTRA_COMMANDS: list[str] = ["infra.policy.check", "infra.offline.manifests", "infra.failover.command", "infra.cost.command",
                           "infra.simulate.command"]


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
            if "nodeSelector" in p:
                # An existing cluster's node group: selected, never created or scaled by the program.
                selector = ", ".join(f"{k}={v}" for k, v in p["nodeSelector"].items())
                shape = f"  {p['vcpu']} vCPU, {p['memoryGiB']} GiB" if p.get("vcpu") else ""
                lines.append(f"  {p['name']:<{width}}  existing nodes {selector}{shape}")
                continue
            types = ", ".join(p["machineTypes"])
            spot = "spot" if p["spot"] else "on-demand"
            lines.append(f"  {p['name']:<{width}}  {types}  {p['minNodes']}..{p['maxNodes']} nodes  {spot}")
    lines.append("")
    lines.append("Outputs:")
    for key in sorted(plan.outputs):
        if key != "nodePools":
            lines.append(f"  {key}: {_known(plan.outputs[key])}")
    return "\n".join(lines)


# A public address the cluster assigns only when the Service is deployed (an existing cluster's
# load balancer implementation): said as such, never shown as an address.
ASSIGNED_AT_DEPLOY = "(assigned by the cluster's load balancer when deployed)"


def _known(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ASSIGNED_AT_DEPLOY if k == "publicAddress" and v == "" else _known(v) for k, v in value.items()}
    return value


def cmd_plan(args: argparse.Namespace) -> int:
    from infra.offline.plan import plan_stack

    started = time.monotonic()
    if not args.json:
        _progress(f"Planning {args.stack or args.config_file} offline (mock runtime, no cloud calls)...")
    plan = plan_stack(args.stack, Path(args.config_file) if args.config_file else None)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump(plan.to_json(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(render_tree(plan))
        _progress(f"Planned in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def version() -> str:
    """The project's version: pyproject.toml of this checkout, else the installed distribution's."""
    import tomllib
    from importlib import metadata

    try:
        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            return metadata.version("im-platform")
        except metadata.PackageNotFoundError:
            return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="im-platform", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"im-platform {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print every resource the program would declare, offline")
    plan.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    plan.add_argument("--config-file", help="read this stack file instead (name taken from Pulumi.<name>.yaml)")
    plan.add_argument("--json", action="store_true", help="one JSON document on stdout")
    plan.set_defaults(func=cmd_plan)
    for module_name in EXTRA_COMMANDS:
        importlib.import_module(module_name).register(sub)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return dict(action.choices)


def run(argv: list[str] | None, commands: Callable[[argparse.Namespace], int] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # A usage error is said by the subcommand's own parser: its usage, one error line, exit 2.
    command = _subparsers(parser)[args.command]
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    names_a_stack = getattr(args, "needs_stack", True) and hasattr(args, "stack")
    if names_a_stack and args.stack is None and getattr(args, "config_file", None) is None:
        command.error(f"{args.command} needs --stack NAME or --config-file FILE")
    try:
        if names_a_stack:
            from infra.config.stackfiles import resolve_stack

            # An unknown stack, a file given as --stack, a missing file, a name that disagrees with
            # its file: said before any work starts.
            resolve_stack(args.stack, Path(args.config_file) if getattr(args, "config_file", None) else None)
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


# What every command imports; checked before anything else, so an interpreter without them (a
# system Python before ./setup.sh) gets one line instead of an import traceback.
REQUIRED_MODULES = ("yaml", "pulumi")


def missing_packages() -> list[str]:
    import importlib.util

    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def main() -> None:
    missing = missing_packages()
    if missing:
        print(f"error: {sys.executable} lacks the program's packages ({', '.join(missing)}): run ./setup.sh once, "
              "then run venv/bin/im-platform", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    if not _LONG_RUNNING & set(sys.argv[1:2]):
        # An offline command is one short batch that ends with the process. The collector's full
        # passes walk the provider SDKs' thousands of modules again and again while they are
        # imported and while the program runs (a sixth of a plan's time) and free almost nothing;
        # the process gives all its memory back when it exits.
        gc.disable()
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
