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


def test_every_column_of_the_readmes_compare_table_is_what_the_text_command_prints() -> None:
    # What a user sees running the command the README names: each row's region, types, min,
    # modeled, max, fixed capacity and saving are on that cloud's lines of the plain-text output.
    from tests.test_cli import cli_in_process

    result = cli_in_process("cost", "--stack", tables.COMPARED, "--compare")
    assert result.returncode == 0, result.stderr
    text = result.stdout.split("Compare (", 1)[1].split("\n\nNot priced", 1)[0]
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines()[1:]:
        if not line.startswith("      "):
            current = line[2:].split()[0]
        blocks.setdefault(current, []).append(line)
    start = README.index(tables.COMPARE_HEADER)
    header = [c.strip() for c in tables.COMPARE_HEADER.splitlines()[0].strip("|").split("|")]
    rows = [line for line in README[start:].split("\n\n", 1)[0].splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == len(blocks) == 3
    for row in rows:
        cells = dict(zip(header, [c.strip() for c in row.strip("|").split("|")], strict=True))
        cloud = cells["cloud"].split()[0]
        first, types = blocks[cloud][0], blocks[cloud][1]
        assert (cells["cloud"].endswith("(this stack)")) == first.startswith(" *")
        assert cells["region"] in first.split()
        for column in ("min", "modeled", "max", "fixed capacity"):
            assert re.search(rf"{column} +{re.escape(cells[column])}\b", first), (column, cells[column], first)
        assert f"saving {cells['saving vs fixed capacity']} against fixed capacity" in first
        assert sorted({t.split()[1] for t in types.split("types: ", 1)[1].split(", ")}) == cells["types"].split(", ")
