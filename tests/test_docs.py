"""The documentation a user is sent to exists: every section an error message, a comment in a stack
file or a workflow names, and every local link of the README and docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.offline.plan import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Where a user meets a pointer: the code's messages and comments, the stack files, the workflows.
SOURCES = [p for folder in ("infra", "components", "policy") for p in (ROOT / folder).rglob("*.py")
           if "venv" not in p.relative_to(ROOT).parts]
SOURCES += sorted((ROOT / "stacks").glob("*.yaml")) + sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SOURCES += sorted((ROOT / "infra" / "cost" / "catalog").glob("*.yaml")) + [ROOT / "setup.sh"]

# "README, Configuration", "README.md, Cost", "docs/dr.md, First deployment", "docs/ci.md".
README_REF = re.compile(r"README(?:\.md)?, \"?([A-Z][A-Za-z ]*[a-z])")
DOCS_REF = re.compile(r"docs/([a-z][\w-]*\.md)(?:#([\w-]+)|, \"?([A-Z][A-Za-z ]*[a-z]))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def headings(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # a "# comment" in a block is no heading
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def has_section(path: Path, name: str) -> bool:
    return any(h.lower().startswith(name.lower()) for h in headings(path))


def references() -> list[tuple[str, Path, str | None, str | None]]:
    """(where, document, section named, anchor named) for every pointer in SOURCES."""
    found = []
    for source in SOURCES:
        text = source.read_text()
        where = str(source.relative_to(ROOT))
        found += [(where, README, m.group(1), None) for m in README_REF.finditer(text)]
        found += [(where, ROOT / "docs" / m.group(1), m.group(3), m.group(2)) for m in DOCS_REF.finditer(text)
                  if "/docs/" not in text[max(0, m.start() - 40):m.start() + 1]]  # not a vendor's docs/ URL
    return found


def test_pointers_are_found_where_messages_send_users() -> None:
    """The collector itself: the known pointers are among what it finds, so an empty list cannot pass."""
    refs = {(where, doc.name, section) for where, doc, section, _ in references()}
    assert ("infra/config/stackfiles.py", "README.md", "Configuration") in refs
    assert ("infra/program.py", "dr.md", "First deployment") in refs
    assert ("infra/cost/__init__.py", "README.md", "Cost") in refs


@pytest.mark.parametrize(("where", "doc", "section", "fragment"), references(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_named_section_exists(where: str, doc: Path, section: str | None, fragment: str | None) -> None:
    assert doc.is_file(), f"{where} points to {doc.relative_to(ROOT)}, which does not exist"
    if section:
        assert has_section(doc, section), f"{where} names the section {section!r} of {doc.name}: no such heading"
    if fragment:
        assert fragment in {anchor(h) for h in headings(doc)}, f"{where} links {doc.name}#{fragment}: no such heading"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_local_links_resolve(page: Path) -> None:
    """Every link of the README and docs/ to a file of the repository, and to a heading in it, exists."""
    broken = []
    for target in LINK.findall(re.sub(r"```.*?```", "", page.read_text(), flags=re.S)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, fragment = target.partition("#")
        doc = (page.parent / file).resolve() if file else page
        if not doc.exists():
            broken.append(target)
        elif fragment and doc.suffix == ".md" and fragment not in {anchor(h) for h in headings(doc)}:
            broken.append(target)
    assert not broken, f"{page.name}: links to nothing: {broken}"


def test_the_readme_is_a_user_guide_with_one_configuration_section_and_every_command() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 450
    assert [h for h in headings(README) if h.lower() == "configuration"] == ["Configuration"]
    table = text[text.index("## Commands"):text.index("## Configuration")]
    for command in ("plan", "check", "cost", "manifests", "failover", "stacks"):
        assert f"| `{command} " in table, command
    assert "python -m infra.offline.bench" in table


def test_docs_ci_lists_every_policy_rule_in_the_order_check_runs_them() -> None:
    # The rules are infra/policy/rules.py's RULES (what the pack and `check` run) plus check's
    # stack-file rule; `check --json` lists them in this order.
    from infra.policy.check import PLAINTEXT_SECRETS
    from infra.policy.rules import RULES

    text = (ROOT / "docs" / "ci.md").read_text()
    table = text.split("| Rule | What it stops |", 1)[1].split("\n\n", 1)[0]
    listed = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert listed == [r.name for r in RULES] + [PLAINTEXT_SECRETS]
