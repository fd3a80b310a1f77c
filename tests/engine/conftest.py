"""Fixtures of the engine tests (`pytest -m engine`; README, Engine tests): the built tools, a
control plane per test file, an isolated Pulumi engine with a file backend, and a control plane
with KEDA and a scripted Prometheus for the scaling tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.cluster import Cluster, running_cluster
from tests.engine.engine import TOOLS, bin_dir, engine_env
from tests.engine.keda import (
    HPA_SYNC_PERIOD_S,
    KEDA_TOOLS,
    ScalingRig,
    apply_crds,
    crd_documents,
    keda_source,
    running_scaling_rig,
)


@pytest.fixture(scope="session")
def tools() -> Path:
    return bin_dir()


@pytest.fixture(scope="module")
def cluster(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd, kube-apiserver and kube-controller-manager on loopback, for one test file."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), tools) as running:
        yield running


@pytest.fixture(scope="module")
def keda_crds(cluster: Cluster) -> None:
    """KEDA's CRDs, read from its Go module, on the file's control plane: the example stacks scale
    on load, so they declare ScaledObjects, which the API server admits (by the real CRD schema) only
    where KEDA is installed. The stacks say `monitoring.keda: existing` (engine.kubernetes_project)."""
    apply_crds(cluster, crd_documents(keda_source()))


@pytest.fixture(scope="module")
def env(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return engine_env(tools, tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def scaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScalingRig]:
    """A control plane whose HPA controller syncs every HPA_SYNC_PERIOD_S, KEDA's operator and
    metrics server, and a fake Prometheus (tests/engine/keda.py), for one test file."""
    tools = bin_dir((*TOOLS, *KEDA_TOOLS))
    folder = tmp_path_factory.mktemp("scaling")
    sync = (f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD_S}s",)
    with running_cluster(folder, tools, controller_args=sync) as cluster, running_scaling_rig(cluster, folder) as rig:
        yield rig
