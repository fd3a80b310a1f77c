"""Fixtures of the engine tests (`pytest -m engine`; README, Engine tests): the built tools, a
control plane per test file, and an isolated Pulumi engine with a file backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.cluster import Cluster, running_cluster
from tests.engine.engine import bin_dir, engine_env


@pytest.fixture(scope="session")
def tools() -> Path:
    return bin_dir()


@pytest.fixture(scope="module")
def cluster(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd, kube-apiserver and kube-controller-manager on loopback, for one test file."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), tools) as running:
        yield running


@pytest.fixture(scope="module")
def env(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return engine_env(tools, tmp_path_factory.mktemp("engine"))
