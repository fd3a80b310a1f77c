"""`pulumi preview --policy-pack policy` with the real pack, the real engine and provider, against a
local API server: the example kubernetes stack passes, a violating one fails naming the rule.

The Python language host (which would run the pack through its RunPlugin) is not built: its Go
module is not served. The CLI then runs a Python pack the way it still supports for a runtime
without a language plugin, as the analyzer plugin `pulumi-analyzer-policy-python` on PATH, which
tools/engine/build.sh writes: `python -m pulumi.policy` (the Python SDK's own entry point) in the
pack's virtual environment (PulumiPolicy.yaml: virtualenv), started in the pack's directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.config.stackfiles import set_stack_value
from tests.engine.cluster import Cluster
from tests.engine.engine import ROOT, inline_stack, kubernetes_project

pytestmark = [
    pytest.mark.engine,
    # Blocked, not passing: the CLI runs a Python policy pack through the Python language host
    # (`no language plugin 'pulumi-language-python' found`), and the Go module proxy serves no
    # version of github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3. Strict: the day
    # the host is built, these fail until the marker goes.
    pytest.mark.xfail(strict=True, reason="the Python language host cannot be built from the Go module proxy"),
]

STACK = "dev-kubernetes"
PACK = ROOT / "policy"


def test_the_policy_pack_passes_the_example_kubernetes_stack(cluster: Cluster, env: dict[str, str], tools: Path,
                                                            tmp_path: Path) -> None:
    if not (PACK / "venv" / "bin" / "python").exists():
        pytest.fail("policy/venv is missing: run ./setup.sh", pytrace=False)
    stack = inline_stack(STACK, kubernetes_project(tmp_path, cluster), env, tools)
    result = stack.preview(policy_packs=[str(PACK)])
    assert "im-platform-guardrails" in result.stdout, result.stdout
    assert "mandatory" not in result.stdout.lower() or "violation" not in result.stdout.lower(), result.stdout


def test_the_policy_pack_fails_a_public_tier_without_tls_naming_the_rule(cluster: Cluster, env: dict[str, str],
                                                                         tools: Path, tmp_path: Path) -> None:
    project = kubernetes_project(tmp_path, cluster)
    path = project / "stacks" / f"Pulumi.{STACK}.yaml"
    text = path.read_text()
    assert "      drainSeconds: 60\n" in text
    path.write_text(text.replace("      drainSeconds: 60\n", "      drainSeconds: 60\n      public: true\n", 1))
    set_stack_value(path, "im-platform:environment", "dev")
    stack = inline_stack(STACK, project, env, tools)
    with pytest.raises(auto.CommandError) as failed:
        stack.preview(policy_packs=[str(PACK)])
    message = str(failed.value)
    assert "public-tier-tls" in message and "im-platform-guardrails" in message, message
    assert "mandatory" in message.lower(), message
