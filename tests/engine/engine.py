"""The real Pulumi engine for the engine tests: the CLI and plugins tools/engine/build.sh built,
an isolated PULUMI_HOME, a file backend and a passphrase, so nothing reaches the network.

The user's path (user_project, project_stack) runs a copy of this folder as `pulumi up` does:
the CLI runs Pulumi.yaml's program through the stand-in Python language host. inline_stack runs
`infra.program.main` as an inline Automation API program; the CLI still reads the stack's
configuration from the project's stackConfigDir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from infra.config.stackfiles import set_stack_value
from tests.engine.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "engine" / "build.sh"
TOOLS = ("pulumi", "pulumi-resource-kubernetes", "pulumi-language-yaml", "pulumi-language-python",
         "pulumi-language-python-exec",
         "etcd", "kube-apiserver", "kube-controller-manager")
PASSPHRASE = "engine-tests-only"


def bin_dir(tools: tuple[str, ...] = TOOLS) -> Path:
    """The bin directory of the versions tools/engine pins, or a failure (CI) / skip saying how to build."""
    out = subprocess.run(["bash", str(BUILD), "--bin-dir"], capture_output=True, text=True, timeout=60)
    folder = Path(out.stdout.strip()) if out.returncode == 0 else None
    missing = [t for t in tools if folder is None or not os.access(folder / t, os.X_OK)]
    if missing:
        message = (f"the engine tools are not built ({', '.join(missing)} missing in {folder}): "
                   f"run ./setup.sh --engine{(' (' + out.stderr.strip() + ')') if out.returncode else ''}")
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert folder is not None
    return folder


def engine_env(tools: Path, home: Path) -> dict[str, str]:
    """Environment of every CLI call: the built tools first on PATH (plugins are found there), a
    private PULUMI_HOME, a file backend, no update check, no plugin download, no ambient kubeconfig."""
    state = home / "state"
    state.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }


def project_copy(folder: Path, stacks: Mapping[str, Path | dict[str, Any]] | None = None) -> Path:
    """A project directory like the repository's: Pulumi.yaml and the given stack files under stacks/
    (a path is copied byte for byte, a dict is written as a stack file's config)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    # `main: infra/` must exist for the CLI to read the project; the inline program is the one run.
    (folder / "infra").mkdir(exist_ok=True)
    (folder / "stacks").mkdir(exist_ok=True)
    for name, source in (stacks or {}).items():
        target = folder / "stacks" / f"Pulumi.{name}.yaml"
        if isinstance(source, Path):
            shutil.copy(source, target)
        else:
            target.write_text(yaml.safe_dump({"config": source}, sort_keys=False))
    return folder


def user_project(folder: Path) -> Path:
    """A copy of the project folder as a user has it after ./setup.sh: Pulumi.yaml, the program
    (infra/, components/), the policy pack (policy/) and the virtualenvs they name (venv,
    policy/venv: links to this checkout's), with an empty stacks/ (kubernetes_project adds one)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "venv")
    for package in ("infra", "components", "policy"):
        shutil.copytree(ROOT / package, folder / package, ignore=ignore, dirs_exist_ok=True)
    for venv in ("venv", "policy/venv"):
        if not (ROOT / venv / "bin" / "python").exists():
            pytest.fail(f"{ROOT / venv} is missing: run ./setup.sh", pytrace=False)
        (folder / venv).symlink_to((ROOT / venv).resolve(), target_is_directory=True)
    (folder / "stacks").mkdir(exist_ok=True)
    return folder


def project_stack(name: str, work_dir: Path, env: dict[str, str], tools: Path) -> auto.Stack:
    """`pulumi stack init NAME` (or select) in the project at work_dir: the CLI runs the project's
    own program (Pulumi.yaml: runtime python, main infra/) through the Python language host."""
    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=env, pulumi_command=command(tools),
                                      pulumi_home=env["PULUMI_HOME"])
    return auto.create_or_select_stack(stack_name=name, work_dir=str(work_dir), opts=opts)


def command(tools: Path) -> auto.PulumiCommand:
    """The built CLI (PulumiCommand runs <root>/bin/pulumi and checks its version against the SDK's)."""
    return auto.PulumiCommand(root=str(tools.parent))


def inline_stack(name: str, work_dir: Path, env: dict[str, str], tools: Path,
                 program: Callable[[], None] | None = None) -> auto.Stack:
    """`name` in the project at work_dir, running `program` (default: the real program) inline."""
    if program is None:
        from infra.program import main as program
    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=env, pulumi_command=command(tools),
                                      pulumi_home=env["PULUMI_HOME"])
    return auto.create_or_select_stack(stack_name=name, project_name="im-platform", program=program, opts=opts)


def cli(tools: Path, env: dict[str, str], *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One plain CLI call (what an operator types), for the calls the Automation API has no verb for."""
    return subprocess.run([str(tools / "pulumi"), *args, "--non-interactive"], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=check)


def kubernetes_project(folder: Path, cluster: Cluster, stack: str = "dev-kubernetes",
                       source: Path | None = None) -> Path:
    """The project at `folder` (made by project_copy unless it holds one) with the example kubernetes
    stack's file (or `source`), pointed at the test cluster by the two values a user changes: the
    kubeconfig path and the context; and, where the stack reads its load from Prometheus,
    `monitoring.keda: existing`, the mode for a cluster where KEDA already runs (the test cluster has
    KEDA's CRDs, conftest's `keda_crds`; the chart `install` deploys is not reachable offline)."""
    stack_source = source or ROOT / "stacks" / "Pulumi.dev-kubernetes.yaml"
    if (folder / "Pulumi.yaml").exists():
        project = folder
        shutil.copy(stack_source, folder / "stacks" / f"Pulumi.{stack}.yaml")
    else:
        project = project_copy(folder, {stack: stack_source})
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    set_stack_value(path, "im-platform:cluster.kubeconfig", str(cluster.kubeconfig))
    set_stack_value(path, "im-platform:cluster.context", cluster.context)
    keda_existing(path)
    return project


def keda_existing(path: Path) -> None:
    """`im-platform:monitoring.keda: existing` in a stack file with a monitoring block, leaving the
    rest of the file as it was."""
    monitoring = (yaml.safe_load(path.read_text(encoding="utf-8"))["config"] or {}).get("im-platform:monitoring")
    if not isinstance(monitoring, dict):
        return
    if "keda" in monitoring:
        set_stack_value(path, "im-platform:monitoring.keda", "existing")
        return
    text = path.read_text(encoding="utf-8")
    block = "\n  im-platform:monitoring:\n"
    assert block in text, f"{path}: im-platform:monitoring as a block"
    first = text[text.index(block) + len(block):].split("\n", 1)[0]
    indent = first[: len(first) - len(first.lstrip())]
    path.write_text(text.replace(block, f"{block}{indent}keda: existing\n", 1), encoding="utf-8")


def offline_plan(config_file: Path, stack: str) -> dict[str, Any]:
    """`python -m infra.cli plan --json` of a stack file, in its own process (the mock runtime's
    settings are process-wide, the engine's inline program is in this one)."""
    out = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--stack", stack, "--config-file",
                          str(config_file), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    plan: dict[str, Any] = json.loads(out.stdout)
    return plan


def planned_objects(plan: dict[str, Any]) -> set[tuple[str, str, str, str | None]]:
    """(apiVersion, kind, name, namespace) of every Kubernetes object the plan declares."""
    found = set()
    for r in plan["resources"]:
        token = r["type"]
        if not token.startswith("kubernetes:") or token.startswith("kubernetes:providers") or not r.get("custom"):
            continue
        if token.startswith("pulumi:providers"):
            continue
        _, group_version, kind = token.split(":")
        api_version = group_version.removeprefix("core/")
        metadata = (r.get("inputs") or {}).get("metadata") or {}
        found.add((api_version, kind, metadata["name"], metadata.get("namespace")))
    return found
