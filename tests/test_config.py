"""Pure tests of configuration parsing: no Pulumi runtime runs here."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.spec import DEFAULT_KUBERNETES_VERSION, SPOT_LABEL_KEY, SPOT_TAINT, Taint
from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from tests.conftest import CLUSTER, PROVIDER, cluster


def config(cloud: str = "aws", cluster_value: Any = None, **extra: Any) -> dict[str, str]:
    values: dict[str, str] = dict(PROVIDER[cloud])
    values["im-platform:cloud"] = cloud
    values["im-platform:environment"] = "prod"
    values["im-platform:cluster"] = json.dumps(CLUSTER if cluster_value is None else cluster_value)
    values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return values


def load(values: dict[str, str]):  # noqa: ANN201 - returns ClusterSpec
    return load_spec(values, project="im-platform", stack="prod-aws")


def error_of(values: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load(values)
    return str(info.value)


def with_pool(name: str, **changes: Any) -> dict[str, Any]:
    value = cluster()
    pool = value["nodePools"].setdefault(name, {"vcpu": 4, "memoryGiB": 16, "minNodes": 1, "maxNodes": 2})
    for key, val in changes.items():
        if val is None:
            pool.pop(key, None)
        else:
            pool[key] = val
    return value


# -- a valid stack -------------------------------------------------------------------------------

def test_valid_configuration_becomes_a_frozen_spec() -> None:
    spec = load(config())
    assert spec.cloud == "aws" and spec.region == "eu-west-1" and spec.is_prod
    assert [p.name for p in spec.node_pools] == ["system", "gateway", "worker"]
    gateway = spec.node_pools[1]
    assert (gateway.min_nodes, gateway.max_nodes, gateway.machine_type) == (3, 40, "c7i.2xlarge")
    assert gateway.taints == (Taint("im-platform/tier", "gateway", "NoSchedule"),)
    worker = spec.node_pools[2]
    assert worker.spot and len(worker.machine_types) > 1, "AWS spot pools are diversified"
    assert worker.node_labels[SPOT_LABEL_KEY] == "spot" and SPOT_TAINT in worker.node_taints
    with pytest.raises(AttributeError):
        spec.environment = "dev"  # type: ignore[misc]


def test_defaults_are_secure_and_documented() -> None:
    value = cluster()
    del value["apiAllowedCidrs"], value["network"], value["kubernetesVersion"]
    spec = load(config(cluster_value=value))
    assert spec.api_allowed_cidrs == () and not spec.api_public, "no apiAllowedCidrs means a private endpoint"
    assert spec.network_cidr == "10.20.0.0/16"
    assert spec.kubernetes_version == DEFAULT_KUBERNETES_VERSION == "1.35", "the newest minor in standard support everywhere"
    assert spec.guardrails.max_nodes_per_pool == 200 and spec.guardrails.max_nodes_per_cluster == 500


def test_instance_type_overrides_the_shape_lookup() -> None:
    spec = load(config(cluster_value=with_pool("worker", instanceType="m7i.4xlarge")))
    assert spec.node_pools[2].machine_types == ("m7i.4xlarge",)


def test_each_cloud_maps_the_same_shape_to_its_own_type() -> None:
    types = {cloud: load(config(cloud)).node_pools[0].machine_type for cloud in ("aws", "gcp", "azure")}
    assert types == {"aws": "m7i.xlarge", "gcp": "n2-standard-4", "azure": "Standard_D4s_v5"}


def test_guardrails_are_read() -> None:
    spec = load(config(**{"im-platform:guardrails": {"maxNodesPerPool": 50, "maxNodesPerCluster": 120}}))
    assert (spec.guardrails.max_nodes_per_pool, spec.guardrails.max_nodes_per_cluster) == (50, 120)


# -- errors: one message naming key, value and expectation -----------------------------------------

def test_min_above_max_is_the_documented_message() -> None:
    value = with_pool("gateway", minNodes=50, maxNodes=40)
    assert error_of(config(cluster_value=value)) == (
        "config error: im-platform:cluster.nodePools.gateway.minNodes is 50, but maxNodes is 40: "
        "minNodes must be <= maxNodes")


@pytest.mark.parametrize(("value", "key", "expected"), [
    (with_pool("gateway", minNode=3), "im-platform:cluster.nodePools.gateway.minNode",
     "did you mean im-platform:cluster.nodePools.gateway.minNodes?"),
    (with_pool("gateway", vcpu=1), "im-platform:cluster.nodePools.gateway.vcpu", ">= 2"),
    (with_pool("gateway", vcpu="8"), "im-platform:cluster.nodePools.gateway.vcpu", "whole number"),
    (with_pool("gateway", vcpu=True), "im-platform:cluster.nodePools.gateway.vcpu", "whole number"),
    (with_pool("gateway", maxNodes=None), "im-platform:cluster.nodePools.gateway.maxNodes", "not set"),
    (with_pool("system", minNodes=0), "im-platform:cluster.nodePools.system.minNodes", ">= 1"),
    (with_pool("system", spot=True), "im-platform:cluster.nodePools.system.spot", "never spot"),
    (with_pool("worker", spot="yes"), "im-platform:cluster.nodePools.worker.spot", "true or false"),
    (with_pool("gateway", vcpu=6, memoryGiB=7), "im-platform:cluster.nodePools.gateway.memoryGiB", "set instanceType"),
    (with_pool("gateway", instanceType="D8s"), "im-platform:cluster.nodePools.gateway.instanceType", "EC2 instance type"),
    (with_pool("gateway", taints=["tier=gateway:NoScheduled"]), "im-platform:cluster.nodePools.gateway.taints[0]", "NoSchedule"),
    (with_pool("gateway", taints=["tier:NoSchedule"]), "im-platform:cluster.nodePools.gateway.taints[0]", "key=value:Effect"),
    (with_pool("gateway", labels={"im-platform/pool": "x"}),
     "im-platform:cluster.nodePools.gateway.labels.im-platform/pool", "set by im-platform"),
    (with_pool("gateway", labels={"node.kubernetes.io/x": "y"}),
     "im-platform:cluster.nodePools.gateway.labels.node.kubernetes.io/x", "reserved"),
    (with_pool("gateway", labels={"tier": 3}), "im-platform:cluster.nodePools.gateway.labels.tier", "label value"),
    (with_pool("Gateway"), "im-platform:cluster.nodePools.Gateway", "lowercase letter"),
    (with_pool("gatewaypool123"), "im-platform:cluster.nodePools.gatewaypool123", "at most 12"),
    (cluster(kubernetesVersion=1.3), "im-platform:cluster.kubernetesVersion", "quoted"),
    (cluster(kubernetesVersion="1.20"), "im-platform:cluster.kubernetesVersion", "supported version"),
    (cluster(network={"cidr": "8.8.0.0/16"}), "im-platform:cluster.network.cidr", "RFC 1918"),
    (cluster(network={"cidr": "10.20.0.1/16"}), "im-platform:cluster.network.cidr", "host bits zero"),
    (cluster(network={"cidr": "10.20.0.0/24"}), "im-platform:cluster.network.cidr", "/8 to /20"),
    (cluster(network={"cidr": "172.20.0.0/16"}), "im-platform:cluster.network.serviceCidr", "must not overlap"),
    (cluster(network={"cird": "10.0.0.0/16"}), "im-platform:cluster.network.cird", "did you mean im-platform:cluster.network.cidr?"),
    (cluster(apiAllowedCidrs=["203.0.113.0/33"]), "im-platform:cluster.apiAllowedCidrs[0]", "IPv4 CIDR"),
    (cluster(apiAllowedCidrs="203.0.113.0/24"), "im-platform:cluster.apiAllowedCidrs", "a list"),
    (cluster(nodePools={"gateway": CLUSTER["nodePools"]["gateway"]}), "im-platform:cluster.nodePools", "'system' is required"),
    (cluster(nodePool={}), "im-platform:cluster.nodePool", "did you mean im-platform:cluster.nodePools?"),
])
def test_bad_cluster_values_name_key_value_and_expectation(value: dict[str, Any], key: str, expected: str) -> None:
    message = error_of(config(cluster_value=value))
    assert message.startswith(f"config error: {key} "), message
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(("change", "key", "expected"), [
    ({"im-platform:cloud": "aw"}, "im-platform:cloud", "did you mean 'aws'"),
    ({"im-platform:environment": "Prod"}, "im-platform:environment", "DNS label"),
    ({"im-platform:clustr": "{}"}, "im-platform:clustr", "did you mean im-platform:cluster?"),
    ({"aws:region": "Ireland"}, "aws:region", "AWS region"),
    ({"gcp:region": "asia-east1"}, "gcp:region", "but im-platform:cloud is aws"),
    ({"im-platform:cluster": "nodePools"}, "im-platform:cluster", "structured"),
    ({"im-platform:guardrails": {"maxNodesPerPool": 0}}, "im-platform:guardrails.maxNodesPerPool", ">= 1"),
])
def test_bad_top_level_values(change: dict[str, Any], key: str, expected: str) -> None:
    values = config()
    values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in change.items()})
    message = error_of(values)
    assert message.startswith(f"config error: {key} "), message
    assert expected in message


@pytest.mark.parametrize("missing", ["im-platform:cloud", "im-platform:environment", "im-platform:cluster", "aws:region"])
def test_missing_required_keys(missing: str) -> None:
    values = config()
    del values[missing]
    assert error_of(values).startswith(f"config error: {missing} is not set")


def test_gcp_needs_its_project() -> None:
    values = config("gcp")
    del values["gcp:project"]
    assert "gcp:project is not set" in error_of(values)


# -- properties ------------------------------------------------------------------------------------

pool_counts = st.tuples(st.integers(0, 500), st.integers(0, 500))


@settings(max_examples=150, deadline=None)
@given(counts=pool_counts, spot=st.booleans())
def test_min_max_rule_holds_for_any_counts(counts: tuple[int, int], spot: bool) -> None:
    low, high = counts
    value = copy.deepcopy(CLUSTER)
    value["nodePools"]["worker"].update({"minNodes": low, "maxNodes": high, "spot": spot})
    values = config(cluster_value=value)
    if high >= 1 and low <= high:
        pool = load(values).node_pools[2]
        assert (pool.min_nodes, pool.max_nodes, pool.spot) == (low, high, spot)
    else:
        message = error_of(values)
        assert "im-platform:cluster.nodePools.worker." in message


@settings(max_examples=150, deadline=None)
@given(name=st.text(alphabet="abcdefghijklmnopqrstuvwxyzA0-_9", min_size=1, max_size=16))
def test_pool_name_rule(name: str) -> None:
    value = copy.deepcopy(CLUSTER)
    value["nodePools"][name] = {"vcpu": 4, "memoryGiB": 16, "minNodes": 0, "maxNodes": 2}
    valid = name[0].islower() and name.isalnum() and name.lower() == name and len(name) <= 12 and name.isascii()
    if name in CLUSTER["nodePools"]:
        return
    if valid:
        assert name in [p.name for p in load(config(cluster_value=value)).node_pools]
    else:
        assert f"nodePools.{name}" in error_of(config(cluster_value=value))


@settings(max_examples=100, deadline=None)
@given(vcpu=st.sampled_from([2, 4, 8, 16, 32, 48, 64]), ratio=st.sampled_from([2, 4, 8]), spot=st.booleans())
def test_every_listed_shape_maps_on_aws_and_azure(vcpu: int, ratio: int, spot: bool) -> None:
    for cloud in ("aws", "azure"):
        value = copy.deepcopy(CLUSTER)
        value["nodePools"]["worker"].update({"vcpu": vcpu, "memoryGiB": vcpu * ratio, "spot": spot})
        pool = load(config(cloud, cluster_value=value)).node_pools[2]
        assert pool.machine_types, cloud
        assert (len(pool.machine_types) > 1) == (spot and cloud == "aws")


@settings(max_examples=100, deadline=None)
@given(octets=st.tuples(st.integers(0, 255), st.integers(0, 255)), prefix=st.integers(8, 24))
def test_network_cidr_must_be_rfc1918_and_sized(octets: tuple[int, int], prefix: int) -> None:
    import ipaddress
    net = ipaddress.ip_network(f"{octets[0]}.{octets[1]}.0.0/{prefix}", strict=False)
    value = cluster(network={"cidr": str(net)})
    private = any(net.subnet_of(ipaddress.ip_network(r)) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    overlaps = net.overlaps(ipaddress.ip_network("172.20.0.0/20")) or net.overlaps(ipaddress.ip_network("100.64.0.0/14"))
    if private and 8 <= prefix <= 20 and not overlaps:
        assert load(config(cluster_value=value)).network_cidr == str(net)
    else:
        assert error_of(config(cluster_value=value)).startswith("config error: im-platform:cluster.network.")


@pytest.mark.parametrize("cloud, instance_type, arch, type_arch", [
    ("aws", "c7g.xlarge", "x86_64", "arm64"), ("aws", "m7i.xlarge", "arm64", "x86_64"),
    ("gcp", "t2a-standard-8", "x86_64", "arm64"), ("gcp", "n2-standard-8", "arm64", "x86_64"),
    ("azure", "Standard_D8ps_v5", "x86_64", "arm64"), ("azure", "Standard_D8s_v5", "arm64", "x86_64"),
])
def test_an_instance_type_of_another_architecture_than_the_pools_is_a_config_error(
        cloud: str, instance_type: str, arch: str, type_arch: str) -> None:
    # Each cloud's naming rule (components/shapes.py, instance_type_arch, with its sources).
    pool = with_pool("worker", instanceType=instance_type, arch=arch)
    message = error_of(config(cloud, cluster_value=pool))
    assert message.startswith(f'config error: im-platform:cluster.nodePools.worker.instanceType is "{instance_type}", '
                              f"but the pool's arch is {arch}: {instance_type} is an {type_arch} type"), message
    same = with_pool("worker", instanceType=instance_type, arch=type_arch)
    assert load(config(cloud, cluster_value=same)).pool("worker").machine_types == (instance_type,)
