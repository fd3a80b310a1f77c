"""The README's cost tables, from the command: `venv/bin/python -m infra.cost.tables [STACK ...]`.

Prints the Markdown table of each named stack (default: every stack in stacks/) and the `--compare`
table of prod-aws, exactly as README.md shows them; tests/test_readme_cost.py holds the two equal.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from infra.cost.command import cents, stack_cost

STACK_HEADER = ("| stack | cloud, region | min | modeled | max | fixed capacity | saving vs fixed capacity | saving vs max |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|")
COMPARE_HEADER = ("| cloud | region | types | min | modeled | max | fixed capacity | saving vs fixed capacity |\n"
                  "|---|---|---|---:|---:|---:|---:|---:|")
COMPARED = "prod-aws"


def stack_row(doc: Mapping[str, Any]) -> str:
    t = doc["totals"]
    where = f"{doc['cloud']} {doc['region']}".strip()  # an existing cluster has no region
    return (f"| {doc['stack']} | {where} | {cents(t['min'])} | {cents(t['modeled'])} | "
            f"{cents(t['max'])} | {cents(t['fixedCapacity'])} | {t['savingVsFixedCapacityPercent']}% | {t['savingPercent']}% |")


def compare_rows(doc: Mapping[str, Any]) -> list[str]:
    rows = []
    for row in doc["compare"]:
        t = row["totals"]
        types = ", ".join(sorted({p["instanceTypes"][0] for p in row["pools"]}))
        mark = " (this stack)" if row["current"] else ""
        rows.append(f"| {row['cloud']}{mark} | {row['region']} | {types} | {cents(t['min'])} | {cents(t['modeled'])} | "
                    f"{cents(t['max'])} | {cents(t['fixedCapacity'])} | {t['savingVsFixedCapacityPercent']}% |")
    return rows


def main(argv: Sequence[str]) -> int:
    from infra.offline.plan import all_stacks

    stacks = list(argv) or all_stacks()
    print(STACK_HEADER)
    for stack in stacks:
        print(stack_row(stack_cost(stack, None)))
    print()
    print(COMPARE_HEADER)
    for row in compare_rows(stack_cost(COMPARED, None, compare_clouds=True)):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
