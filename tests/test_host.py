"""`pulumi up` runs infra/__main__.py from infra/ with only that folder on sys.path (pitfall 11):
the program must import its packages by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.conftest import ROOT, make_config


def test_pulumi_yaml_points_the_host_at_the_program() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "im-platform"
    assert project["runtime"]["name"] == "python"
    assert project["stackConfigDir"] == "stacks"
    assert (ROOT / project["main"] / "__main__.py").is_file()


def test_program_imports_work_the_way_the_host_runs_it() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # -I: no PYTHONPATH, no script directory, no user site: sys.path holds only the interpreter's own.
    result = subprocess.run(
        [sys.executable, "-I", str(ROOT / "tests" / "host_emulator.py"), str(ROOT / "infra"), "dev-aws",
         json.dumps(make_config("aws", environment="dev"))],
        cwd=ROOT / "infra", capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 20
