"""The scaling rig itself (tests/engine/keda.py): KEDA's CRDs from its module, its operator and
metrics server behind the external metrics APIService, the real HPA controller and the fake
Prometheus, driven through `ScalingRig.replay` with a ScaledObject written here to the scaling
contract (a prometheus trigger per pod, a fallback that never scales down, a slow scale-down)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.engine.keda import ScalingRig

pytestmark = pytest.mark.engine

NS = "rig"
TARGET = 100
BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                             {"type": "Pods", "value": 4, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 12, "selectPolicy": "Max",
                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 6},
                               {"type": "Percent", "value": 10, "periodSeconds": 6}]},
}


def scaled_object(prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "maxReplicaCount": 4,
                 "fallback": {"failureThreshold": 3, "replicas": 1, "behavior": "currentReplicasIfHigher"},
                 "advanced": {"horizontalPodAutoscalerConfig": {"behavior": BEHAVIOR}},
                 "triggers": [{"type": "prometheus", "metadata": {
                     "serverAddress": prometheus_url, "query": 'sum(im_connections{namespace="rig"})',
                     "threshold": str(TARGET), "ignoreNullValues": "false"}}]},
    }


@pytest.fixture(scope="module")
def web(scaling: ScalingRig) -> dict[str, Any]:
    cluster = scaling.cluster
    cluster.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}})
    scaling.prometheus.answer_value(TARGET)
    so = scaled_object(scaling.prometheus.url)
    cluster.request("POST", f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects?fieldValidation=Strict", so)
    return so


def test_the_crd_schema_admits_the_contract_s_scaled_object_and_refuses_a_wrong_one(
        scaling: ScalingRig, web: dict[str, Any]) -> None:
    path = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects?dryRun=All&fieldValidation=Strict"
    for change, field in (({"minReplicaCount": "one"}, "minReplicaCount"), ({"fallbak": {}}, "fallbak"),
                          ({"fallback": {"failureThreshold": 3, "replicas": 1, "behavior": "lower"}}, "behavior")):
        bad = copy.deepcopy(web)
        bad["metadata"]["name"] = "bad"
        bad["spec"].update(change)
        status, body = scaling.cluster.request("POST", path, bad, ok=(201, 400, 422))
        assert status in (400, 422) and field in str(body), (change, body)


def test_keda_makes_the_hpa_and_replay_records_the_real_controller(scaling: ScalingRig, web: dict[str, Any]) -> None:
    hpa = scaling.hpa_of("web", NS)["spec"]
    assert hpa["behavior"] == BEHAVIOR
    assert [m["external"]["target"] for m in hpa["metrics"]] == [{"type": "AverageValue", "averageValue": str(TARGET)}]
    # Up at once to ceil(250 / 100) = 3; down after 12 s of low load, one pod per 6 s.
    series = scaling.replay("web", NS, [(0, TARGET), (2, 2.5 * TARGET), (12, TARGET)], until_s=45)
    changes = [(s.seconds, s.replicas) for s in series.changes()]
    assert [r for _, r in changes] == [1, 3, 2, 1], changes
    (_, _), (up, _), (first_down, _), (second_down, _) = changes
    assert 2 <= up <= 2 + 3 * scaling.sync_period_s, changes
    assert first_down >= 12 + 12 - scaling.sync_period_s, changes
    assert second_down - first_down >= 6 - 1, changes
    assert series.at(up) == 3 and series.samples[-1].load == TARGET
