"""Benchmark: plan every stack in stacks/ as users do (a whole `python -m infra.cli plan` process)
and print wall time, resource count, and the time to import the SDKs it needs (and the ratio) per stack.

    python -m infra.bench [--repeat N] [--cost]

--cost also times `cost --json` and `cost --json --compare` of each stack against its plan (targets:
at most 1.3x and 3x the plan's median).

Run on purpose; no test times anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from infra.plan import ROOT, all_stacks

TARGET_SECONDS = 6.0
COST_TARGETS = {"cost": 1.3, "cost --compare": 3.0}  # x the plan of the same stack
# A plan may take at most this many times the import of the SDKs it needs (its own and those of
# the stacks it references, planned first).
TARGET_RATIO = 1.6
SDK_MODULES = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure": "pulumi_azure_native"}


def sdks_of(stack: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The provider SDKs a plan of `stack` imports: its cloud's (or its DNS provider's), Kubernetes
    for a cluster, and those of every stack it references."""
    from infra.plan import project_name, read_stack_config, referenced_stacks
    from infra.stackfiles import find_stack_file

    path = find_stack_file(stack)
    if path is None or stack in seen:
        return set()
    config, _ = read_stack_config(path, project_name())
    cloud = config.get("im-platform:cloud") or "aws"  # a traffic stack: Route 53
    sdks = {"pulumi", SDK_MODULES.get(cloud, "pulumi_aws")}
    if "im-platform:cluster" in config:
        sdks.add("pulumi_kubernetes")
    for other in referenced_stacks(config):
        sdks |= sdks_of(other, seen | {stack})
    return sdks


def import_once(modules: set[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import " + ", ".join(sorted(modules))], cwd=ROOT, check=True)
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


def cost_ratios(stack: str, plan_median: float, repeat: int) -> dict[str, float]:
    """Median time of `cost` and `cost --compare`, each over the plan's median."""
    commands = {"cost": ("cost",), "cost --compare": ("cost", "--compare")}
    return {name: statistics.median(timed(stack, *cmd)[0] for _ in range(repeat)) / plan_median
            for name, cmd in commands.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per stack; the median is reported (default 3)")
    parser.add_argument("--cost", action="store_true", help="also time cost and cost --compare against the plan")
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
        imports = statistics.median(import_once(sdks_of(stack)) for _ in range(args.repeat))
        ratio = median / imports
        print(f"{stack:<16} {runs[0][1]:>9} {median:>9.2f} {max(times):>7.2f} {imports:>9.2f} {ratio:>6.2f}")
        if median > TARGET_SECONDS or ratio > TARGET_RATIO:
            slow.append(stack)
        if args.cost:
            for name, ratio in cost_ratios(stack, median, args.repeat).items():
                print(f"  {name:<16} {ratio:>5.2f}x the plan (target {COST_TARGETS[name]}x)")
                if ratio > COST_TARGETS[name]:
                    slow.append(f"{stack} {name}")
    if slow:
        print(f"over target (the {TARGET_SECONDS:.0f} s or {TARGET_RATIO}x-import plan target, or a cost ratio): {', '.join(slow)}")
        return 1
    print(f"every stack plans within the {TARGET_SECONDS:.0f} s and {TARGET_RATIO}x-import targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
