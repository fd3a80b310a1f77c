"""The README's cost figures are the command's output, not numbers typed by hand."""

from __future__ import annotations

from infra.cost.command import cents
from infra.offline.plan import ROOT, all_stacks
from tests.test_cost import cost_json

README = (ROOT / "README.md").read_text()
COMPARED = "prod-aws"


def stacks_table() -> str:
    rows = ["| stack | cloud, region | min | modeled | max | saving |", "|---|---|---:|---:|---:|---:|"]
    for stack in all_stacks():
        doc = cost_json("--stack", stack)
        t = doc["totals"]
        rows.append(f"| {stack} | {doc['cloud']} {doc['region']} | {cents(t['min'])} | {cents(t['modeled'])} | "
                    f"{cents(t['max'])} | {t['savingPercent']}% |")
    return "\n".join(rows)


def compare_table() -> str:
    rows = ["| cloud | region | min | modeled | max | saving |", "|---|---|---:|---:|---:|---:|"]
    for row in cost_json("--stack", COMPARED, "--compare")["compare"]:
        t = row["totals"]
        rows.append(f"| {row['cloud']} | {row['region']} | {cents(t['min'])} | {cents(t['modeled'])} | "
                    f"{cents(t['max'])} | {t['savingPercent']}% |")
    return "\n".join(rows)


def test_the_readme_shows_each_example_stacks_cost_from_the_command() -> None:
    assert stacks_table() in README


def test_the_readme_shows_the_compare_table_of_a_prod_stack_from_the_command() -> None:
    assert f"cost --stack {COMPARED} --compare" in README
    assert compare_table() in README
