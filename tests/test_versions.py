"""The Pulumi versions agree: the SDK the tests run is the one requirements.txt pins, the policy
pack's environment pins the same, and CI runs the CLI of that release."""

from __future__ import annotations

import re
from importlib.metadata import version

import yaml

from tests.conftest import ROOT


def pinned(path: str, package: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)$", text, re.MULTILINE)
    assert match, f"{path} does not pin {package}"
    return match.group(1)


def test_the_sdk_under_test_is_the_pinned_one_everywhere() -> None:
    sdk = pinned("requirements.txt", "pulumi")
    assert version("pulumi") == sdk, "the tests run another SDK than `pulumi up` would"
    assert pinned("policy/requirements.txt", "pulumi") == sdk
    workflow = yaml.safe_load((ROOT / ".github/workflows/stack.yml").read_text(encoding="utf-8"))
    assert workflow["env"]["PULUMI_VERSION"] == sdk, "CI's CLI is the release of the pinned SDK"
