"""Benchmark: plan every stack in stacks/ as users do (a whole `venv/bin/im-platform plan` process)
and print wall time, resource count, and the time to import the SDKs it needs (and the ratio) per stack.

    venv/bin/python -m infra.offline.bench [--repeat N] [--cost] [--simulate]

--simulate times `simulate --json` of each stack with a cluster against its plan (target: at most
1.5x the plan's median). --cost also times `cost --json` and `cost --json --compare` of each stack against its plan (targets:
at most 1.3x and 3x the plan's median; a traffic stack has no `--compare`).

Run on purpose; no test times anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from infra.offline.plan import ROOT, all_stacks

TARGET_SECONDS = 6.0
COST_TARGETS = {"cost": 1.3, "cost --compare": 3.0}  # x the plan of the same stack
SIMULATE_TARGET = 1.5  # `simulate`, x the plan of the same stack
# A plan may take at most this many times the import of the SDKs it needs (its own and those of
# the stacks it references, planned first).
TARGET_RATIO = 1.6


SDK_PACKAGES = ("pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_azure_native", "pulumi_kubernetes")
# Plans the stack in a process of its own and prints the SDK modules it ended up importing.
_LIST_MODULES = """
import json, sys
from infra.offline.plan import plan_stack
plan_stack(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {packages!r})))
"""
# Imports the modules named on stdin, and nothing else.
_IMPORT_MODULES = "import importlib, json, sys\nfor m in json.load(sys.stdin): importlib.import_module(m)\n"


def sdk_modules(stack: str) -> list[str]:
    """Every module of the SDKs (Pulumi's and the providers') that a plan of `stack` imports: its
    cloud's, Kubernetes for a cluster, and those of the stacks it references, planned first. The SDKs
    load their modules lazily, so this is read off a real plan rather than guessed from the config."""
    result = subprocess.run([sys.executable, "-c", _LIST_MODULES.format(packages=SDK_PACKAGES), stack],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"plan of {stack} failed ({result.returncode}):\n{result.stderr}")
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def import_once(modules: list[str]) -> float:
    """Wall time of a fresh interpreter that imports `modules` (the baseline a plan is held to)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _IMPORT_MODULES], input=json.dumps(modules), text=True, cwd=ROOT, check=True)
    return time.perf_counter() - started


def timed(stack: str, *command: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "infra.cli", *command, "--stack", stack, "--json"],
                            cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} of {stack} failed ({result.returncode}):\n{result.stderr}")
    return elapsed, result.stdout


def plan_once(stack: str) -> tuple[float, int]:
    elapsed, out = timed(stack, "plan")
    return elapsed, len(json.loads(out)["resources"])


def comparable(stack: str) -> bool:
    """Whether `cost --compare` prices the stack: not a traffic stack (no cluster) nor an existing
    cluster's (no node pools of the program's); both refuse it."""
    from infra.offline.plan import project_name, read_stack_config, stack_file

    values, _ = read_stack_config(stack_file(stack), project_name())
    return "im-platform:traffic" not in values and values.get("im-platform:cloud") != "kubernetes"


def simulated(stack: str) -> bool:
    """Whether `simulate` has a day to replay: a traffic stack has no tiers (it refuses it)."""
    from infra.offline.plan import project_name, read_stack_config, stack_file

    values, _ = read_stack_config(stack_file(stack), project_name())
    return "im-platform:traffic" not in values


def cost_ratios(stack: str, plan_median: float, repeat: int) -> dict[str, float]:
    """Median time of `cost` and `cost --compare`, each over the plan's median. A traffic stack has
    no cluster to price on another cloud, nor a kubernetes stack node pools of the program's
    (`--compare` refuses both), so only their `cost` is timed."""
    commands = {"cost": ("cost",), "cost --compare": ("cost", "--compare")}
    if not comparable(stack):
        del commands["cost --compare"]
    return {name: statistics.median(timed(stack, *cmd)[0] for _ in range(repeat)) / plan_median
            for name, cmd in commands.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="venv/bin/python -m infra.offline.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per stack; the median is reported (default 3)")
    parser.add_argument("--cost", action="store_true", help="also time cost and cost --compare against the plan")
    parser.add_argument("--simulate", action="store_true", help="also time simulate against the plan")
    args = parser.parse_args(argv)
    stacks = all_stacks()
    print(f"{'stack':<16} {'resources':>9} {'median s':>9} {'max s':>7} {'import s':>9} {'ratio':>6}"
          f"  (whole process, {args.repeat} runs)")
    slow = []
    for stack in stacks:
        print(f"planning {stack}...", file=sys.stderr, flush=True)
        runs = [plan_once(stack) for _ in range(args.repeat)]
        times = [t for t, _ in runs]
        median = statistics.median(times)
        modules = sdk_modules(stack)
        imports = statistics.median(import_once(modules) for _ in range(args.repeat))
        ratio = median / imports
        print(f"{stack:<16} {runs[0][1]:>9} {median:>9.2f} {max(times):>7.2f} {imports:>9.2f} {ratio:>6.2f}")
        if median > TARGET_SECONDS or ratio > TARGET_RATIO:
            slow.append(stack)
        if args.cost:
            for name, ratio in cost_ratios(stack, median, args.repeat).items():
                print(f"  {name:<16} {ratio:>5.2f}x the plan (target {COST_TARGETS[name]}x)")
                if ratio > COST_TARGETS[name]:
                    slow.append(f"{stack} {name}")
        if args.simulate and simulated(stack):
            ratio = statistics.median(timed(stack, "simulate")[0] for _ in range(args.repeat)) / median
            print(f"  {'simulate':<16} {ratio:>5.2f}x the plan (target {SIMULATE_TARGET}x)")
            if ratio > SIMULATE_TARGET:
                slow.append(f"{stack} simulate")
    if slow:
        print(f"over target (the {TARGET_SECONDS:.0f} s or {TARGET_RATIO}x-import plan target, or a cost ratio): {', '.join(slow)}")
        return 1
    print(f"every stack plans within the {TARGET_SECONDS:.0f} s and {TARGET_RATIO}x-import targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
