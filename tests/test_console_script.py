"""One spelling of every command: the console script `venv/bin/im-platform` that ./setup.sh installs
(pyproject's [project.scripts], the entry point Python CLIs ship), the same in the README, docs/ and
the program's own messages; an interpreter without the program's packages gets one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest

from infra import cli
from infra.offline.plan import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_pyproject_declares_the_console_script_and_setup_installs_it() -> None:
    # PyPA: [project.scripts] "console scripts" entry points
    # (https://packaging.python.org/en/latest/specifications/entry-points/).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"im-platform": "infra.cli:main"}
    module, _, function = project["project"]["scripts"]["im-platform"].partition(":")
    assert module == cli.__name__ and callable(getattr(cli, function))
    setup = (ROOT / "setup.sh").read_text()
    install = re.search(r"^if ! venv/bin/pip install .*--no-deps -e \.; then$", setup, re.MULTILINE)
    assert install and setup.index("make_env venv ") < install.start(), "the project, after its requirements"


def test_the_installed_console_script_runs() -> None:
    script = ROOT / "venv" / "bin" / "im-platform"
    if not script.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("venv/bin/im-platform is missing: ./setup.sh installs it")
        pytest.skip("venv/bin/im-platform not installed here (./setup.sh installs it)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, f"im-platform {cli.version()}"), result.stderr


def test_an_interpreter_without_the_packages_gets_one_line_not_a_traceback() -> None:
    # -S: no site-packages, as the system Python before ./setup.sh.
    result = subprocess.run([sys.executable, "-S", "-m", "infra.cli", "plan", "--stack", "dev-aws"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "run ./setup.sh once, then run venv/bin/im-platform" in line, line


def test_every_command_has_one_spelling_in_the_readme_and_docs() -> None:
    for path in DOCS:
        text = path.read_text()
        assert not re.search(r"python3? -m infra\.cli\b", text), f"{path.name}: spell it venv/bin/im-platform"
        for match in re.finditer(r"(\S*)python3? -m infra\.", text):
            assert match.group(1).lstrip("`(") == "venv/bin/", f"{path.name}: {match.group(0)!r}"
    assert "venv/bin/im-platform plan --stack dev-aws" in (ROOT / "README.md").read_text()
