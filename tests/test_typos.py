"""Typos a new user makes, each one `config error:` line and exit 2 naming the key and the closest
valid one, through the real CLI: a namespace one letter off, a provider or `pulumi:` key nothing
defines, an AWS region the SDK does not list, a key written twice, an unknown key of the program
(named with the closest key in full, never with its value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config.namespaces import aws_regions, provider_keys
from tests.conftest import ROOT
from tests.test_cli import cli_in_process

DEV = (ROOT / "stacks" / "Pulumi.dev-aws.yaml").read_text(encoding="utf-8")
TRAFFIC = (ROOT / "stacks" / "Pulumi.prod-traffic.yaml").read_text(encoding="utf-8")

CASES = [
    ("namespace", "im-platform:guardrails:", "im-platfrom:guardrails:",
     "config error: im-platfrom:guardrails is in an unknown namespace im-platfrom (nothing reads it); "
     "did you mean im-platform:guardrails?"),
    ("pulumi key", "pulumi:disable-default-providers:", "pulumi:disable-default-provider:",
     "config error: pulumi:disable-default-provider is a key Pulumi does not define"),
    ("provider key", "aws:region: eu-west-1", "aws:regoin: eu-west-1",
     "config error: aws:regoin is a key the installed pulumi_aws does not define (the provider ignores it); "
     "did you mean aws:region?"),
    ("region", "aws:region: eu-west-1", "aws:region: eu-west-9",
     'config error: aws:region is "eu-west-9": not a region the installed pulumi_aws knows (pulumi_aws.Region)'),
    ("duplicate", "      gateway:\n        vcpu: 4\n", "      gateway:\n        vcpu: 4\n        vcpu: 8\n",
     "config error: im-platform:cluster.nodePools.gateway.vcpu is set twice in Pulumi.typo-aws.yaml (lines "),
    ("top key", "im-platform:services:", "im-platform:service:",
     "config error: im-platform:service is an unknown key"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_typo_is_one_config_error_naming_the_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in DEV
    path = tmp_path / "Pulumi.typo-aws.yaml"
    path.write_text(DEV.replace(old, new, 1))
    for command in ("plan", "check"):
        result = cli_in_process(command, "--config-file", str(path))
        assert result.returncode == 2, result.stderr
        # Only the progress line ("Planning ...") besides the one error, which ends the output.
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("Planning ")]
        assert len(lines) == 1 and lines[0].startswith(expected), lines
        assert "Traceback" not in result.stderr


def test_an_unknown_key_names_the_closest_in_full_and_not_its_value(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.typo-aws.yaml"
    path.write_text(DEV.replace("im-platform:services:", "im-platform:service:", 1))
    line = cli_in_process("plan", "--config-file", str(path)).stderr.strip().splitlines()[-1]
    assert line.endswith("did you mean im-platform:services?")
    assert "ghcr.io" not in line and len(line) < 400, "the tiers' value is not repeated"


def test_the_traffic_stack_gets_the_same_checks(tmp_path: Path) -> None:
    for name in ("prod-aws", "prod-azure"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    path = tmp_path / "Pulumi.prod-traffic.yaml"
    path.write_text(TRAFFIC.replace("aws:region: us-east-1", "aws:regoin: us-east-1"))
    result = cli_in_process("plan", "--config-file", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[1:] == [
        "config error: aws:regoin is a key the installed pulumi_aws does not define (the provider ignores it); "
        "did you mean aws:region?"]


def test_the_names_come_from_the_installed_sdks() -> None:
    aws = provider_keys("aws")
    assert aws is not None and {"aws:region", "aws:profile", "aws:skipCredentialsValidation"} <= set(aws)
    gcp = provider_keys("gcp")
    assert gcp is not None and {"gcp:project", "gcp:region"} <= set(gcp)
    azure = provider_keys("azure-native")
    assert azure is not None and {"azure-native:location", "azure-native:clientId"} <= set(azure)
    regions = aws_regions()
    assert regions is not None and {"eu-west-1", "us-east-1"} <= set(regions) and "eu-west-9" not in regions
