"""Kubernetes versions by support window: the data file, the default, and the warning plan/check print."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from components.k8s.addons_aws import AUTOSCALER_IMAGE_TAGS
from components.spec import CLOUDS, DEFAULT_KUBERNETES_VERSION
from infra.config import versions
from infra.config.loader import SUPPORTED_MINORS

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 12, 4)


def test_every_window_names_its_source_and_date_and_ends_in_order() -> None:
    for cloud in CLOUDS:
        found = versions.windows(cloud)
        assert found, cloud
        for minor, w in found.items():
            assert w.source.startswith("https://") and w.as_of <= TODAY + dt.timedelta(days=1), (cloud, minor)
            assert w.standard_end < w.extended_end, (cloud, minor)


def test_the_default_is_the_newest_minor_in_standard_support_on_all_three_clouds() -> None:
    assert versions.newest_standard_everywhere(TODAY) == DEFAULT_KUBERNETES_VERSION
    for cloud in CLOUDS:
        assert versions.window(cloud, DEFAULT_KUBERNETES_VERSION, TODAY) == versions.STANDARD, cloud


def test_eks_133_is_in_extended_support_since_2026_07_29() -> None:
    assert versions.window("aws", "1.33", dt.date(2026, 7, 29)) == versions.STANDARD
    assert versions.window("aws", "1.33", dt.date(2026, 7, 30)) == versions.EXTENDED
    line = versions.support_warning("aws", "1.33", "prod-aws", TODAY)
    assert line is not None and "\n" not in line
    assert "2026-07-29" in line and "$0.60/h instead of $0.10/h" in line and "kubernetesVersion" in line
    assert versions.support_warning("aws", DEFAULT_KUBERNETES_VERSION, "prod-aws", TODAY) is None
    assert versions.control_plane_tier("aws", "1.33", "standard", TODAY) == "extended"
    assert versions.control_plane_tier("azure", "1.33", "standard", TODAY) == "premium"


def test_every_listed_minor_is_accepted_validated_and_has_an_autoscaler() -> None:
    """The minors the loader accepts are the ones the data dates, the schema validator knows and the
    EKS autoscaler has an image for: moving the default cannot leave one of them behind."""
    listed = set(versions.windows("aws")) & set(versions.windows("gcp")) & set(versions.windows("azure"))
    accepted = {f"1.{m}" for m in SUPPORTED_MINORS}
    assert accepted <= listed
    assert accepted <= set(AUTOSCALER_IMAGE_TAGS)
    for minor in accepted:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
                                     minor, strict=True)


@pytest.mark.parametrize("command", ["plan", "check"])
def test_plan_and_check_warn_once_for_an_eks_stack_past_standard_support(tmp_path: Path, command: str) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev-aws.yaml").read_text(encoding="utf-8")
    assert f'kubernetesVersion: "{DEFAULT_KUBERNETES_VERSION}"' in text
    path = tmp_path / "Pulumi.old-aws.yaml"
    path.write_text(text.replace(f'kubernetesVersion: "{DEFAULT_KUBERNETES_VERSION}"', 'kubernetesVersion: "1.33"'))
    run = subprocess.run([sys.executable, "-m", "infra.cli", command, "--config-file", str(path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if "past standard support" in ln]
    assert len(lines) == 1, run.stderr
    assert "old-aws" in lines[0] and "2026-07-29" in lines[0] and "$0.60/h" in lines[0]
