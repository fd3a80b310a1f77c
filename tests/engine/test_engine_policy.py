"""`pulumi preview --policy-pack policy` as a user runs it, in a copy of the project folder: the
real pack, engine and provider, against a local API server. The example kubernetes stack passes;
a public tier without TLS and a tier without a disruption budget fail, naming the rule, and
`python -m infra.cli check` names the same rules for the same stack.

The CLI runs a Python pack through the Python language host's RunPlugin (the stand-in
tools/engine/build.sh builds): `python -u -m pulumi.policy` with the pack's virtualenv (PulumiPolicy.yaml:
virtualenv venv, so policy/venv), started in policy/, with the stack's configuration in
PULUMI_CONFIG, from which the pack builds the same context `check` builds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.engine.cluster import Cluster
from tests.engine.engine import kubernetes_project, project_stack, user_project

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("keda_crds")]

STACK = "dev-kubernetes"
PACK = "im-platform-guardrails"


def preview_with_pack(project: Path, env: dict[str, str], tools: Path) -> auto.PreviewResult:
    """`pulumi preview --policy-pack policy` in the project folder (the README's form)."""
    return project_stack(STACK, project, env, tools).preview(policy_packs=["policy"])


def failing_preview(project: Path, env: dict[str, str], tools: Path) -> str:
    with pytest.raises(auto.CommandError) as failed:
        preview_with_pack(project, env, tools)
    return str(failed.value)


def offline_check(project: Path) -> tuple[int, set[str]]:
    """`venv/bin/python -m infra.cli check --stack dev-kubernetes` in the same folder: its exit
    status and the rules its violation lines name."""
    out = subprocess.run([str(project / "venv" / "bin" / "python"), "-m", "infra.cli", "check", "--stack", STACK],
                         cwd=project, capture_output=True, text=True, timeout=300)
    rules = {line.split(":", 1)[0] for line in out.stdout.splitlines()[:-1]}
    return out.returncode, rules


def public_gateway(project: Path, *, tls_self: bool = False) -> None:
    """The example's private gateway made public (what the stack file's comment warns about)."""
    path = project / "stacks" / f"Pulumi.{STACK}.yaml"
    text = path.read_text(encoding="utf-8")
    assert "      drainSeconds: 60\n" in text
    extra = "      public: true\n" + ("      tls: self\n" if tls_self else "")
    path.write_text(text.replace("      drainSeconds: 60\n", "      drainSeconds: 60\n" + extra, 1), encoding="utf-8")


def violated_rules(message: str) -> set[str]:
    """The rules the CLI's policy report names as mandatory violations, under this pack's heading."""
    assert re.search(rf"{PACK}@v[\d.]+ \(local: policy\)", message), message
    return set(re.findall(r"- \[mandatory\]\s+([a-z0-9-]+)\s+\(", message))


def test_the_policy_pack_passes_the_example_kubernetes_stack(cluster: Cluster, env: dict[str, str], tools: Path,
                                                            tmp_path: Path) -> None:
    project = kubernetes_project(user_project(tmp_path), cluster)
    result = preview_with_pack(project, env, tools)
    assert PACK in result.stdout, result.stdout
    assert "mandatory" not in result.stdout.lower(), result.stdout
    assert offline_check(project) == (0, set())


def test_the_stack_configuration_reaches_the_pack(cluster: Cluster, env: dict[str, str], tools: Path,
                                                 tmp_path: Path) -> None:
    """A public tier passes only because its stack file says it ends TLS itself (tls: self): the
    pack read that from PULUMI_CONFIG (without it, it would report public-tier-tls, below)."""
    project = kubernetes_project(user_project(tmp_path), cluster)
    public_gateway(project, tls_self=True)
    result = preview_with_pack(project, env, tools)
    assert PACK in result.stdout and "mandatory" not in result.stdout.lower(), result.stdout
    assert offline_check(project) == (0, set())


def test_the_policy_pack_fails_a_public_tier_without_tls_naming_the_rule(cluster: Cluster, env: dict[str, str],
                                                                         tools: Path, tmp_path: Path) -> None:
    project = kubernetes_project(user_project(tmp_path), cluster)
    public_gateway(project)
    message = failing_preview(project, env, tools)
    assert violated_rules(message) == {"public-tier-tls"}, message
    assert "public Service im/gateway" in message, message
    assert offline_check(project) == (1, {"public-tier-tls"})


def test_the_policy_pack_fails_a_tier_without_a_disruption_budget_naming_the_rule(
        cluster: Cluster, env: dict[str, str], tools: Path, tmp_path: Path) -> None:
    """No configuration drops a tier's budget, so the copy's program does: the change the rule
    exists to catch (a tier declared without components/k8s/services.py's budget)."""
    project = kubernetes_project(user_project(tmp_path), cluster)
    services = project / "components" / "k8s" / "services.py"
    text, removed = re.subn(r"\n        k8s\.policy\.v1\.PodDisruptionBudget\(\n.*?\n        \)\n", "\n",
                            services.read_text(encoding="utf-8"), count=1, flags=re.DOTALL)
    assert removed == 1 and "PodDisruptionBudget(" not in text
    services.write_text(text, encoding="utf-8")
    message = failing_preview(project, env, tools)
    assert violated_rules(message) == {"tier-disruption-budget"}, message
    for tier in ("gateway", "logic", "push"):
        assert f"Deployment im/{tier} has no PodDisruptionBudget" in message, message
    assert offline_check(project) == (1, {"tier-disruption-budget"})


def test_the_policy_pack_fails_a_prod_scaled_tier_whose_fallback_could_scale_it_down(
        cluster: Cluster, env: dict[str, str], tools: Path, tmp_path: Path) -> None:
    """The example as prod (every tier at 2 replicas or more), its copy's program giving the
    ScaledObjects KEDA's default fallback (`static`, which may lower the count in a metric outage):
    the pack reads the ScaledObjects the engine hands it and names the rule, as `check` does."""
    project = kubernetes_project(user_project(tmp_path), cluster)
    path = project / "stacks" / f"Pulumi.{STACK}.yaml"
    text = path.read_text(encoding="utf-8")
    assert "im-platform:environment: dev\n" in text and "replicas: {min: 1," in text
    path.write_text(text.replace("im-platform:environment: dev\n", "im-platform:environment: prod\n")
                    .replace("replicas: {min: 1,", "replicas: {min: 2,"), encoding="utf-8")
    keda = project / "components" / "k8s" / "keda.py"
    source = keda.read_text(encoding="utf-8")
    assert source.count('"behavior": "currentReplicasIfHigher"') == 1
    keda.write_text(source.replace('"behavior": "currentReplicasIfHigher"', '"behavior": "static"'), encoding="utf-8")
    message = failing_preview(project, env, tools)
    assert violated_rules(message) == {"scaled-tier-fallback"}, message
    for tier in ("gateway", "logic", "push"):
        assert f"ScaledObject im/{tier} falls back with behavior 'static'" in message, message
    assert offline_check(project) == (1, {"scaled-tier-fallback"})
