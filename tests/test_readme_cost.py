"""The README's cost figures are the command's output, not numbers typed by hand.

The README lists some stacks (the examples); a stack someone adds to stacks/ need not be listed, but
every stack the README lists must exist and show exactly what `cost` prints for it."""

from __future__ import annotations

import re

from infra.cost import tables
from infra.offline.plan import ROOT, all_stacks
from tests.test_cost import cost_json

README = (ROOT / "README.md").read_text()


def listed_rows() -> dict[str, str]:
    """The stack table's rows in the README, by stack name."""
    start = README.index(tables.STACK_HEADER)
    block = README[start + len(tables.STACK_HEADER):].split("\n\n", 1)[0]
    rows = [line for line in block.strip().splitlines() if line.startswith("| ")]
    return {line.split("|")[1].strip(): line for line in rows}


def test_the_readme_lists_example_stacks_that_exist() -> None:
    rows = listed_rows()
    assert {"prod-aws", "prod-azure", "prod-traffic"} <= set(rows), "the prod pair and its traffic stack"
    assert set(rows) <= set(all_stacks()), "a listed stack no longer in stacks/"


def test_each_listed_stacks_figures_are_the_commands_output() -> None:
    for stack, line in listed_rows().items():
        assert line == tables.stack_row(cost_json("--stack", stack)), stack


def test_the_readme_shows_the_compare_table_of_a_prod_stack_from_the_command() -> None:
    assert f"cost --stack {tables.COMPARED} --compare" in README
    block = "\n".join([tables.COMPARE_HEADER, *tables.compare_rows(cost_json("--stack", tables.COMPARED, "--compare"))])
    assert block in README
    assert re.search(r"python -m infra\.cost\.tables", README), "how to regenerate the figures"
