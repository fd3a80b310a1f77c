"""Pure tests of `im-platform:services` and `im-platform:capacityBuffer` parsing: no Pulumi runtime."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components.spec import SHUTDOWN_SECONDS, CapacityBufferSpec, EgressRule
from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from infra.config.services import cpu_millicores, cpu_quantity, memory_bytes
from tests.conftest import CLUSTER, PROVIDER, ROOT

SERVICES: dict[str, Any] = {
    "gateway": {"image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "pool": "gateway", "cpu": "1",
                "memory": "2Gi", "replicas": {"min": 3, "max": 60}, "targetCpuPercent": 60, "public": True,
                "drainSeconds": 300},
    "logic": {"image": "ghcr.io/acme/im-logic:2.4.1", "port": 9090, "cpu": "2", "memory": "4Gi",
              "replicas": {"min": 2, "max": 40}, "allowFrom": ["gateway"]},
    "push": {"image": "ghcr.io/acme/im-push@sha256:" + "a" * 64, "port": 8081, "pool": "worker", "allowSpot": True,
             "cpu": "500m", "memory": "1Gi", "replicas": {"min": 2, "max": 80}, "allowFrom": ["logic"],
             "egress": [{"cidr": "0.0.0.0/0", "port": 443}]},
}


def config(services: Any = None, environment: str = "prod", cloud: str = "aws",
           extra: dict[str, Any] | None = None) -> dict[str, str]:
    values: dict[str, str] = dict(PROVIDER[cloud])
    values["im-platform:cloud"] = cloud
    values["im-platform:environment"] = environment
    values["im-platform:cluster"] = json.dumps(CLUSTER)
    values["im-platform:services"] = json.dumps(SERVICES if services is None else services)
    values.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    return values


def load(values: dict[str, str]):  # noqa: ANN201 - returns ClusterSpec
    return load_spec(values, project="im-platform", stack="prod-aws")


def with_service(name: str = "gateway", **changes: Any) -> dict[str, Any]:
    """SERVICES with keys of one service changed (None removes the key)."""
    services = copy.deepcopy(SERVICES)
    for key, value in changes.items():
        if value is None:
            services[name].pop(key, None)
        else:
            services[name][key] = value
    return services


def error_of(values: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load(values)
    return str(info.value)


# -- a valid configuration ------------------------------------------------------------------------

def test_services_become_frozen_specs_with_documented_defaults() -> None:
    spec = load(config())
    gateway, logic, push = spec.services
    assert (gateway.name, gateway.image, gateway.port, gateway.pool) == ("gateway", "ghcr.io/acme/im-gateway:2.4.1", 8080, "gateway")
    assert (gateway.min_replicas, gateway.max_replicas, gateway.target_cpu_percent) == (3, 60, 60)
    assert gateway.public and gateway.drain_seconds == 300 and gateway.holds_connections
    # Defaults: own namespace, /healthz, port 443 outside, 70 % CPU, 30 s drain, CPU limit twice the request.
    assert (logic.namespace, logic.health_path, logic.public, logic.public_port) == ("logic", "/healthz", False, 443)
    assert (logic.target_cpu_percent, logic.drain_seconds, logic.pool) == (70, 30, None)
    assert (logic.cpu, logic.cpu_limit, logic.memory) == ("2", "4", "4Gi")
    assert not logic.holds_connections and not logic.allow_spot
    assert (push.cpu, push.cpu_limit) == ("500m", "1")
    assert push.allow_spot and push.allow_from == ("logic",) and push.egress == (EgressRule("0.0.0.0/0", 443),)
    assert gateway.termination_grace_seconds == 300 + SHUTDOWN_SECONDS > gateway.drain_seconds
    assert spec.max_termination_grace_seconds == gateway.termination_grace_seconds
    with pytest.raises(AttributeError):
        gateway.port = 1  # type: ignore[misc]


def test_no_services_is_an_empty_tuple_and_a_dev_tier_may_run_one_replica() -> None:
    values = config()
    del values["im-platform:services"]
    assert load(values).services == ()
    dev = load(config(with_service("logic", replicas={"min": 1, "max": 2}), environment="dev"))
    assert dev.services[1].min_replicas == 1


def test_optional_keys_users_need() -> None:
    services = with_service("logic", cpuLimit="3", healthPath="/ready", namespace="im", env={"LOG_LEVEL": "info"},
                            egress=[{"cidr": "10.20.0.0/16", "port": 5432}])
    services["gateway"].update(publicPort=8443, namespace="im")
    spec = load(config(services))
    gateway, logic = spec.services[:2]
    assert (logic.cpu_limit, logic.health_path, logic.namespace, logic.env) == ("3", "/ready", "im", (("LOG_LEVEL", "info"),))
    assert gateway.public_port == 8443 and gateway.namespace == "im"


def test_capacity_buffer_is_read_per_pool() -> None:
    spec = load(config(extra={"im-platform:capacityBuffer": {"gateway": {"pods": 2, "cpu": "3", "memory": "6Gi"}}}))
    assert spec.capacity_buffers == (CapacityBufferSpec("gateway", 2, "3", "6Gi"),)


# -- the errors the issue promises ----------------------------------------------------------------

def test_unknown_pool_names_the_pools_there_are() -> None:
    message = error_of(config(with_service(pool="gatway")))
    assert message == ('config error: im-platform:services.gateway.pool is "gatway": expected the name of a pool in '
                       "im-platform:cluster.nodePools (one of: system, gateway, worker); did you mean 'gateway'?")


@pytest.mark.parametrize("image", ["ghcr.io/acme/im-gateway:latest", "ghcr.io/acme/im-gateway:LATEST",
                                   "ghcr.io/acme/im-gateway:latest@sha256:" + "b" * 64])
def test_latest_image_is_rejected(image: str) -> None:
    message = error_of(config(with_service(image=image)))
    assert message.startswith(f'config error: im-platform:services.gateway.image is "{image}": "latest" moves')
    assert 'a version tag (never "latest") or an @sha256: digest' in message


@pytest.mark.parametrize("image", ["ghcr.io/acme/im-gateway", "localhost:5000/im-gateway", "im-gateway"])
def test_untagged_image_is_rejected(image: str) -> None:
    assert "the image is not pinned (no tag means \"latest\")" in error_of(config(with_service(image=image)))


@pytest.mark.parametrize("image", ["ghcr.io/acme/im-gateway:2.4.1", "localhost:5000/im/gateway:v2",
                                   "registry.example.com:443/a/b/c:1.0.0-rc.1", "gateway@sha256:" + "0" * 64,
                                   "docker.io/library/nginx:1.27.3-alpine"])
def test_pinned_images_are_accepted(image: str) -> None:
    assert load(config(with_service(image=image))).services[0].image == image


@pytest.mark.parametrize("image", ["GHCR.io/Acme/Gateway:1", "ghcr.io/acme/gateway:", "ghcr.io/acme/gateway@sha256:xyz", 42])
def test_malformed_image_is_rejected(image: Any) -> None:
    assert "expected an image reference pinned by" in error_of(config(with_service(image=image)))


def test_min_above_max_is_rejected() -> None:
    message = error_of(config(with_service(replicas={"min": 10, "max": 5})))
    assert message == "config error: im-platform:services.gateway.replicas.min is 10, but max is 5: min must be <= max"


def test_prod_with_one_replica_is_rejected() -> None:
    message = error_of(config(with_service(replicas={"min": 1, "max": 5})))
    assert message.startswith("config error: im-platform:services.gateway.replicas.min is 1: expected >= 2 when environment is prod")


def test_zero_replicas_is_rejected_everywhere() -> None:
    assert "replicas.min is 0: expected a whole number >= 1" in error_of(config(with_service(replicas={"min": 0, "max": 5}),
                                                                               environment="dev"))


def test_a_spot_pool_needs_the_tier_to_opt_in() -> None:
    message = error_of(config(with_service("push", allowSpot=None)))
    assert message.startswith('config error: im-platform:services.push.pool is "worker", but pool worker is spot')
    assert "set allowSpot: true" in message


@pytest.mark.parametrize(("changes", "key", "expected"), [
    ({"port": 0}, "port", "expected a port number from 1 to 65535"),
    ({"port": 70000}, "port", "expected a port number from 1 to 65535"),
    ({"port": "8080"}, "port", "expected a whole number"),
    ({"cpu": "1.5 cores"}, "cpu", "expected a CPU quantity"),
    ({"cpu": "0"}, "cpu", "expected a CPU quantity above zero"),
    ({"cpu": "0.0001"}, "cpu", "at most millicore precision"),
    ({"memory": "2GB"}, "memory", "expected a memory quantity"),
    ({"memory": 512}, "memory", "a bare number counts bytes"),
    ({"cpu": "8"}, "cpu", "but pool gateway has 8 vCPUs per node"),
    ({"memory": "16Gi"}, "memory", "but pool gateway has 16 GiB per node"),
    ({"cpuLimit": "500m"}, "cpuLimit", "but cpu is 1: the limit must be >= the request"),
    ({"targetCpuPercent": 0}, "targetCpuPercent", "expected a whole number from 1 to 100"),
    ({"targetCpuPercent": 101}, "targetCpuPercent", "expected a whole number from 1 to 100"),
    ({"drainSeconds": -1}, "drainSeconds", "expected a whole number from 0 to 3600 seconds"),
    ({"drainSeconds": 3601}, "drainSeconds", "expected a whole number from 0 to 3600 seconds"),
    ({"public": "yes"}, "public", "expected true or false"),
    ({"healthPath": "healthz"}, "healthPath", "an HTTP path starting with '/'"),
    ({"namespace": "kube-system"}, "namespace", "reserved for Kubernetes or the platform"),
    ({"namespace": "default"}, "namespace", "reserved for Kubernetes or the platform"),
    ({"namespace": "IM"}, "namespace", "a lowercase DNS label"),
    ({"env": {"1BAD": "x"}}, "env.1BAD", "expected an environment variable name"),
    ({"env": {"PORT": 8080}}, "env.PORT", "quote numbers and booleans"),
    ({"egress": [{"cidr": "0.0.0.0/0"}]}, "egress[0].port", "is not set"),
    ({"egress": [{"cidr": "10.0.0.1/8", "port": 5432}]}, "egress[0].cidr", "host bits zero"),
    ({"allowFrom": ["gatewy"]}, "allowFrom[0]", "expected the name of a service in im-platform:services"),
    ({"allowFrom": ["logic", "logic"]}, "allowFrom", "a service is listed twice"),
])
def test_each_bad_value_names_its_key(changes: dict[str, Any], key: str, expected: str) -> None:
    message = error_of(config(with_service(**changes)))
    assert message.startswith(f"config error: im-platform:services.gateway.{key} "), message
    assert expected in message, message


def test_public_port_without_public_is_a_mistake() -> None:
    message = error_of(config(with_service("logic", publicPort=443)))
    assert message.startswith("config error: im-platform:services.logic.publicPort is 443: is only used with public: true")


def test_unknown_keys_suggest_the_close_one() -> None:
    message = error_of(config(with_service(drainSecond=10)))
    assert message.startswith("config error: im-platform:services.gateway.drainSecond is an unknown key")
    assert "did you mean im-platform:services.gateway.drainSeconds?" in message
    assert "did you mean im-platform:services.gateway.replicas.max?" in error_of(config(with_service(replicas={"min": 3, "Max": 5})))


def test_missing_required_keys_and_bad_names() -> None:
    assert error_of(config(with_service(image=None))) == "config error: im-platform:services.gateway.image is not set: required"
    assert "replicas is not set" in error_of(config(with_service(replicas=None)))
    assert "expected a service name: a lowercase DNS label" in error_of(config({"Gateway": SERVICES["gateway"]}))
    assert "expected a map of keys to values" in error_of(config(["gateway"]))


def test_capacity_buffer_errors() -> None:
    def buffer_error(value: Any) -> str:
        return error_of(config(extra={"im-platform:capacityBuffer": value}))
    assert buffer_error({"gatewy": {"pods": 1, "cpu": "1", "memory": "1Gi"}}).startswith(
        'config error: im-platform:capacityBuffer.gatewy is "gatewy": expected the name of a pool')
    assert "did you mean im-platform:capacityBuffer.gateway.pods?" in buffer_error({"gateway": {"pod": 1, "cpu": "1", "memory": "1Gi"}})
    assert "pods is 0: expected a whole number from 1 to 100" in buffer_error({"gateway": {"pods": 0, "cpu": "1", "memory": "1Gi"}})
    assert "cpu is \"9\", but pool gateway has 8 vCPUs" in buffer_error({"gateway": {"pods": 1, "cpu": "9", "memory": "1Gi"}})


def test_capacity_buffer_is_a_known_top_level_key() -> None:
    message = error_of(config(extra={"im-platform:capacityBufer": {}}))
    assert "did you mean im-platform:capacityBuffer?" in message


# -- quantities -----------------------------------------------------------------------------------

@given(st.integers(min_value=1, max_value=256_000))
def test_cpu_quantities_round_trip_in_their_canonical_form(millicores: int) -> None:
    text = cpu_quantity(millicores)
    assert cpu_millicores("x", text) == millicores
    assert re.fullmatch(r"\d+|\d+m", text)


@pytest.mark.parametrize(("value", "millicores"), [("1", 1000), ("0.5", 500), ("250m", 250), (2, 2000), (1.5, 1500)])
def test_cpu_forms(value: Any, millicores: int) -> None:
    assert cpu_millicores("x", value) == millicores


@pytest.mark.parametrize(("value", "size"), [("2Gi", 2 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9),
                                             ("1.5Gi", 3 * 2**29), (64 * 2**20, 64 * 2**20)])
def test_memory_forms(value: Any, size: int) -> None:
    assert memory_bytes("x", value) == size


# -- the README's example -------------------------------------------------------------------------

def test_readme_services_example_is_valid_on_the_contract_cluster() -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "im-platform:services:" in b)
    example = yaml.safe_load(block)
    values = config()
    values.update({k: json.dumps(v) for k, v in example.items()})
    spec = load(values)
    assert [s.name for s in spec.services] == list(example["im-platform:services"])
    assert spec.capacity_buffers


def test_the_docs_show_the_real_error() -> None:
    guide = (ROOT / "docs" / "services.md").read_text()  # "Adding a tier"
    documented = next(line for line in guide.splitlines() if line.startswith("config error: im-platform:services."))
    assert documented == error_of(config(with_service(image="ghcr.io/acme/im-gateway:latest")))


def test_a_liveness_path_that_is_the_readiness_path_is_refused() -> None:
    message = error_of(config(with_service(livenessPath="/healthz")))
    assert message.startswith('config error: im-platform:services.gateway.livenessPath is "/healthz", but healthPath is '
                              "the same: liveness must ask only whether the process is alive"), message
    assert load(config(with_service(livenessPath="/livez"))).services[0].liveness_path == "/livez"
    assert error_of(config(with_service(livenessPath="livez"))).startswith(
        'config error: im-platform:services.gateway.livenessPath is "livez": expected an HTTP path')
