"""AKS: the Kubernetes provider waits for the deployer's role assignment, then for Azure RBAC to
let the deployer in (components/azure_access.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from components import azure_access
from infra.offline import plan as plan_module
from tests.conftest import plan_config
from tests.test_services_config import SERVICES


def test_the_kubernetes_provider_depends_on_the_deployers_cluster_admin_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicitly and through its kubeconfig: no Kubernetes call before the grant exists."""
    seen: dict[str, list[str]] = {}
    register = plan_module.RecordingMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        seen[request.name] = list(request.dependencies)
        return register(self, request)

    monkeypatch.setattr(plan_module.RecordingMonitor, "RegisterResource", recording)
    plan = plan_config("azure", extra={"im-platform:services": SERVICES})
    admin = next(r for r in plan.of_type("azure-native:authorization:RoleAssignment")
                 if r["name"].endswith("deployer-cluster-admin"))
    provider = plan.one("pulumi:providers:kubernetes")
    assert admin["urn"] in seen[provider["name"]]
    for pool in plan.of_type("azure-native:containerservice:AgentPool"):
        assert pool["urn"] in provider["options"]["dependsOn"], "and for the node pools, as before"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_polls_until_the_grant_has_propagated() -> None:
    answers = iter([False, False, False, True])
    clock = Clock()
    attempts = asyncio.run(azure_access.wait_until_allowed(lambda: next(answers), timeout=600, interval=15,
                                                           clock=clock, sleep=clock.sleep))
    assert attempts == 4 and clock.slept == [15, 15, 15]


def test_a_grant_already_in_effect_costs_one_request() -> None:
    clock = Clock()
    assert asyncio.run(azure_access.wait_until_allowed(lambda: True, clock=clock, sleep=clock.sleep)) == 1
    assert clock.slept == []


def test_gives_up_after_the_timeout_with_a_clear_message() -> None:
    clock = Clock()
    with pytest.raises(azure_access.AccessNotGranted, match="within 600 s"):
        asyncio.run(azure_access.wait_until_allowed(lambda: False, timeout=600, interval=15,
                                                    clock=clock, sleep=clock.sleep))
    assert clock.now >= 600 and len(clock.slept) == 40


def test_waits_ten_minutes_at_most_twice_what_azure_documents() -> None:
    assert azure_access.TIMEOUT_SECONDS == 2 * 5 * 60
    assert azure_access.ACCESS_REVIEW["spec"]["resourceAttributes"] == {"verb": "create", "resource": "namespaces"}


def test_previews_and_the_offline_plan_call_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> bool:
        raise AssertionError("no network call outside a real `pulumi up`")

    monkeypatch.setattr(azure_access, "access_allowed", refuse)
    monkeypatch.setattr(azure_access, "exec_token", refuse)
    monkeypatch.setattr(azure_access, "under_mocks", lambda: False)
    monkeypatch.setattr(azure_access.pulumi.runtime, "is_dry_run", lambda: True)
    assert asyncio.run(azure_access.kubeconfig_once_allowed("{}")) == "{}"
