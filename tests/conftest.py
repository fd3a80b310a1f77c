"""Shared helpers: build a stack configuration in code and plan it under the mock runtime."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import infra.offline.plan  # noqa: E402
from infra.offline.plan import Plan, run_program  # noqa: E402
from tests.plans import run_program_once, spec_plan, stack_plan  # noqa: E402, F401 - the shared plans, see tests/plans.py

PROVIDER = {
    "aws": {"aws:region": "eu-west-1"},
    "gcp": {"gcp:project": "im-platform-test", "gcp:region": "asia-east1"},
    "azure": {"azure-native:location": "westeurope"},
}

# One spec for every cloud: the contract tests run it on all three.
CLUSTER: dict[str, Any] = {
    "kubernetesVersion": "1.33",
    "network": {"cidr": "10.20.0.0/16"},
    "apiAllowedCidrs": ["203.0.113.0/24"],
    "nodePools": {
        "system": {"vcpu": 4, "memoryGiB": 16, "minNodes": 2, "maxNodes": 4},
        "gateway": {
            "vcpu": 8, "memoryGiB": 16, "minNodes": 3, "maxNodes": 40,
            "labels": {"im-platform/tier": "gateway"},
            "taints": ["im-platform/tier=gateway:NoSchedule"],
        },
        "worker": {"vcpu": 8, "memoryGiB": 32, "minNodes": 0, "maxNodes": 80, "spot": True},
    },
}


def cluster(**changes: Any) -> dict[str, Any]:
    """A deep copy of CLUSTER with top-level keys replaced."""
    value = copy.deepcopy(CLUSTER)
    value.update(changes)
    return value


def make_config(cloud: str, *, environment: str = "prod", cluster_value: Any = None,
                extra: dict[str, Any] | None = None) -> dict[str, str]:
    config: dict[str, str] = dict(PROVIDER[cloud])
    config["im-platform:cloud"] = cloud
    config["im-platform:environment"] = environment
    config["im-platform:cluster"] = json.dumps(CLUSTER if cluster_value is None else cluster_value)
    for key, value in (extra or {}).items():
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config


def plan_config(cloud: str, stack: str | None = None, **kwargs: Any) -> Plan:
    """A fresh plan, for tests of planning itself; `spec_plan` takes the same arguments and shares one."""
    environment = kwargs.get("environment", "prod")
    return run_program(stack or f"{environment}-{cloud}", make_config(cloud, **kwargs))


@pytest.fixture(params=["aws", "gcp", "azure"])
def cloud(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def contract_plan(cloud: str) -> Plan:
    """The shared spec planned on one cloud (planned once per cloud per test session)."""
    return spec_plan(cloud)


@pytest.fixture
def shared_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI commands (`infra.cli.run([...])`) reuse the session's plans."""
    monkeypatch.setattr(infra.offline.plan, "run_program", run_program_once)


def pytest_configure(config: pytest.Config) -> None:
    """The session's first process (pytest-xdist's controller, or the only one) creates the folder its
    processes share plans through (tests/plans.py); workers it starts inherit it."""
    import os
    import tempfile

    from tests.plans import SHARED_ENV

    if hasattr(config, "workerinput") or os.environ.get(SHARED_ENV):
        return
    folder = tempfile.mkdtemp(prefix="im-platform-plans-")
    os.environ[SHARED_ENV] = folder
    config.stash[_SHARED_FOLDER] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import shutil

    from tests.plans import SHARED_ENV

    folder = config.stash.get(_SHARED_FOLDER, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(SHARED_ENV, None)


_SHARED_FOLDER = pytest.StashKey[str]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported stays alive all session: out of the cyclic collector's sight (plans
    freeze again after importing a cloud's SDK, tests/plans.py)."""
    from tests.plans import freeze_what_is_loaded

    freeze_what_is_loaded()
