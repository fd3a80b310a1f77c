"""Pure tests of a tier's `scaling` block, `readySeconds` and `im-platform:monitoring`: no Pulumi runtime.

Every bad input scaling.md lists is one `config error:` line naming the key, the value and what is
expected; the PromQL goes through the real parser, cron through the rules of KEDA's cron scaler
(robfig/cron v3), time zones through the IANA database.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.spec import TLS_PROXY_PORT, MonitoringSpec
from infra.config.cron import CronError, parse_cron
from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from tests.test_services_config import SERVICES, config

SCALING: dict[str, Any] = {
    "metric": "im_gateway_connections", "targetPerPod": 20000, "metricsPort": 9102,
    "schedule": [{"start": "0 19 * * *", "end": "0 23 * * *", "timezone": "Asia/Shanghai", "replicas": 30}],
}


def services_with(scaling: Any = None, tier: str = "gateway", **tier_keys: Any) -> dict[str, Any]:
    services = copy.deepcopy(SERVICES)
    if scaling is not None:
        services[tier]["scaling"] = scaling
    services[tier].update(tier_keys)
    return services


def scaled(**changes: Any) -> dict[str, Any]:
    block = copy.deepcopy(SCALING)
    for key, value in changes.items():
        if value is None:
            block.pop(key, None)
        else:
            block[key] = value
    return block


def window(**changes: Any) -> dict[str, Any]:
    return {**SCALING["schedule"][0], **changes}


def load(values: dict[str, str], stack: str = "prod-aws"):  # noqa: ANN201
    return load_spec(values, project="im-platform", stack=stack)


def error_of(values: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load(values)
    message = str(info.value)
    assert message.startswith("config error: ") and "\n" not in message
    return message


# -- valid input -----------------------------------------------------------------------------------


def test_a_stack_without_scaling_has_no_scaled_tier_and_managed_monitoring() -> None:
    spec = load(config())
    assert spec.scaled_services == () and all(s.scaling is None for s in spec.services)
    assert spec.monitoring == MonitoringSpec() and spec.monitoring.managed and spec.monitoring.install_keda
    assert all(s.ready_seconds == 30 for s in spec.services)


def test_the_scaling_block_becomes_a_frozen_spec_with_documented_defaults() -> None:
    spec = load(config(services_with(scaled(metricsPort=None, schedule=None), readySeconds=45)))
    gateway = spec.scaled_services[0]
    assert gateway.name == "gateway" and gateway.ready_seconds == 45
    s = gateway.scaling
    assert s is not None
    assert (s.metric, s.target_per_pod, s.metrics_port, s.metrics_path) == ("im_gateway_connections", Decimal(20000), 8080, "/metrics")
    assert (s.query, s.cpu, s.schedule, s.peak_load) == (None, True, (), None)
    # The default load: the gauge summed over the tier's own pods; a counter's per-second rate.
    assert gateway.load_query() == 'sum(im_gateway_connections{namespace="gateway",pod=~"gateway-[a-z0-9]+-[a-z0-9]+"})'
    counter = load(config(services_with(scaled(metric="im_logic_messages_total"), tier="logic"))).scaled_services[0]
    assert counter.load_query(15) == 'sum(rate(im_logic_messages_total{namespace="logic",pod=~"logic-[a-z0-9]+-[a-z0-9]+"}[60s]))'


def test_every_key_is_carried_into_the_spec() -> None:
    block = scaled(query="sum(im_gateway_connections{tenant!=\"test\"})", cpu=False, metricsPath="/stats",
                   peakLoad=1.5e6, targetPerPod=2.5)
    spec = load(config(services_with(block), extra={
        "im-platform:monitoring": {"prometheus": "managed", "scrapeIntervalSeconds": 15, "keda": "existing"}}))
    s = spec.scaled_services[0].scaling
    assert s is not None
    assert (s.query, s.cpu, s.metrics_path, s.peak_load, s.target_per_pod) == (
        block["query"], False, "/stats", Decimal("1500000.0"), Decimal("2.5"))
    assert spec.scaled_services[0].load_query() == block["query"]
    (w,) = s.schedule
    assert (w.start, w.end, w.timezone, w.replicas) == ("0 19 * * *", "0 23 * * *", "Asia/Shanghai", 30)
    assert spec.monitoring == MonitoringSpec(prometheus_url=None, scrape_interval_seconds=15, keda="existing")


def test_a_url_is_kept_and_managed_is_the_default_on_the_clouds() -> None:
    for cloud in ("aws", "gcp", "azure"):
        spec = load(config(services_with(scaled()), cloud=cloud, extra={"im-platform:monitoring": {}}))
        assert spec.monitoring.managed
    spec = load(config(services_with(scaled()), extra={
        "im-platform:monitoring": {"prometheus": {"url": "https://prom.example.com:9090/"}}}))
    assert spec.monitoring.prometheus_url == "https://prom.example.com:9090" and not spec.monitoring.managed


# -- every bad input of scaling.md: one line, key, value, what is expected --------------------------

KEY = "im-platform:services.gateway.scaling"
BAD: list[tuple[dict[str, Any], str, str]] = [
    (scaled(targetPerPod=0), f"{KEY}.targetPerPod is 0", "a number > 0"),
    (scaled(targetPerPod=-5), f"{KEY}.targetPerPod is -5", "a number > 0"),
    (scaled(targetPerPod="20000"), f'{KEY}.targetPerPod is "20000"', "a number > 0"),
    (scaled(targetPerPod=True), f"{KEY}.targetPerPod is true", "a number > 0"),
    (scaled(targetPerPod=float("nan")), f"{KEY}.targetPerPod is NaN", "a number > 0"),
    (scaled(metric="im-gateway-connections"), f'{KEY}.metric is "im-gateway-connections"', "Prometheus metric name"),
    (scaled(metric="9lives"), f'{KEY}.metric is "9lives"', "Prometheus metric name"),
    (scaled(metric=None), f"{KEY}.metric is not set", "required"),
    (scaled(targetPerPod=None), f"{KEY}.targetPerPod is not set", "required"),
    (scaled(query="sum(im_gateway_connections"), f'{KEY}.query is "sum(im_gateway_connections"', "parses"),
    (scaled(query="sum by (pod) im_gateway_connections)"), f"{KEY}.query is", "PromQL"),
    (scaled(query="im_gateway_connections[5m]"), f'{KEY}.query is "im_gateway_connections[5m]"', "range vector"),
    (scaled(schedule=[window(start="0 25 * * *")]), f'{KEY}.schedule[0].start is "0 25 * * *"', "hour 25 is outside 0-23"),
    (scaled(schedule=[window(end="0 0 19 * * *")]), f'{KEY}.schedule[0].end is "0 0 19 * * *"', "it has 6 fields"),
    (scaled(schedule=[window(start="@daily")]), f'{KEY}.schedule[0].start is "@daily"', "descriptors"),
    (scaled(schedule=[window(start="0 19 * * 7")]), f'{KEY}.schedule[0].start is "0 19 * * 7"', "day-of-week 7"),
    (scaled(schedule=[window(start="0 19 L * *")]), f'{KEY}.schedule[0].start is "0 19 L * *"', "not a number"),
    (scaled(schedule=[window(end="0 19 * * *")]), f'{KEY}.schedule[0].end is "0 19 * * *"', "start is the same"),
    (scaled(schedule=[window(timezone="Asia/Beijing")]), f'{KEY}.schedule[0].timezone is "Asia/Beijing"', "IANA"),
    (scaled(schedule=[window(timezone="../../etc/passwd")]), f"{KEY}.schedule[0].timezone is", "IANA"),
    (scaled(schedule=[window(timezone=None)]), f"{KEY}.schedule[0].timezone is not set", "required"),
    (scaled(schedule=[window(replicas=61)]), f"{KEY}.schedule[0].replicas is 61", "from replicas.min 3 to replicas.max 60"),
    (scaled(schedule=[window(replicas=2)]), f"{KEY}.schedule[0].replicas is 2", "from replicas.min 3 to replicas.max 60"),
    (scaled(schedule=[window(), window(replicas="x")]), f'{KEY}.schedule[1].replicas is "x"', "whole number"),
    (scaled(schedule=[window(ends="0 1 * * *")]), f"{KEY}.schedule[0].ends is an unknown key", "did you mean"),
    (scaled(metricsPort=0), f"{KEY}.metricsPort is 0", "1 to 65535"),
    (scaled(metricsPort=65536), f"{KEY}.metricsPort is 65536", "1 to 65535"),
    (scaled(metricsPort=TLS_PROXY_PORT), f"{KEY}.metricsPort is {TLS_PROXY_PORT}", "TLS sidecar"),
    (scaled(metricsPath="metrics"), f'{KEY}.metricsPath is "metrics"', "starting with '/'"),
    (scaled(cpu="yes"), f'{KEY}.cpu is "yes"', "true or false"),
    (scaled(peakLoad=0), f"{KEY}.peakLoad is 0", "a number > 0"),
    (scaled(targetPerPd=5), f"{KEY}.targetPerPd is an unknown key", f"did you mean {KEY}.targetPerPod"),
    ("connections", f'{KEY} is "connections"', "a map"),
]


@pytest.mark.parametrize(("block", "starts", "says"), BAD, ids=[b[1].split(" is")[0].rsplit(".", 1)[-1] + str(i)
                                                                  for i, b in enumerate(BAD)])
def test_bad_scaling_input_is_one_line(block: Any, starts: str, says: str) -> None:
    message = error_of(config(services_with(block)))
    assert message.startswith(f"config error: {starts}"), message
    assert says in message, message


MON = "im-platform:monitoring"
BAD_MONITORING: list[tuple[str, dict[str, Any], str, str]] = [
    ("aws", {"prometheus": "self"}, f'{MON}.prometheus is "self"', "managed"),
    ("aws", {"prometheus": {"url": "ftp://prom:9090"}}, f'{MON}.prometheus.url is "ftp://prom:9090"', "http(s) URL"),
    ("aws", {"prometheus": {"url": "prom:9090"}}, f'{MON}.prometheus.url is "prom:9090"', "http(s) URL"),
    ("aws", {"prometheus": {"url": "http://:9090"}}, f'{MON}.prometheus.url is "http://:9090"', "http(s) URL"),
    ("aws", {"prometheus": {"address": "http://p"}}, f"{MON}.prometheus.address is an unknown key", "url"),
    ("aws", {"scrapeIntervalSeconds": 5}, f"{MON}.scrapeIntervalSeconds is 5", "from 10 to 300"),
    ("aws", {"scrapeIntervalSeconds": 301}, f"{MON}.scrapeIntervalSeconds is 301", "from 10 to 300"),
    ("aws", {"keda": "addon"}, f'{MON}.keda is "addon"', "install"),
    ("aws", {"scrapeInterval": 30}, f"{MON}.scrapeInterval is an unknown key", "scrapeIntervalSeconds"),
    ("kubernetes", {"prometheus": "managed"}, f'{MON}.prometheus is "managed", but im-platform:cloud is kubernetes', "url"),
    ("kubernetes", {}, f"{MON}.prometheus is not set", "required on a kubernetes stack"),
]


def kubernetes_config(services: dict[str, Any], monitoring: Any = None) -> dict[str, str]:
    values = {"im-platform:cloud": "kubernetes", "im-platform:environment": "dev",
              "im-platform:cluster": json.dumps({"nodePools": {"gateway": {"labels": {"im-platform/tier": "gateway"}},
                                                              "worker": {"labels": {"im-platform/tier": "worker"}}}}),
              "im-platform:services": json.dumps(services)}
    if monitoring is not None:
        values[MON] = json.dumps(monitoring)
    return values


def dev_services(scaling: Any) -> dict[str, Any]:
    services = services_with(scaling)
    for svc in services.values():
        svc["replicas"] = {"min": 1, "max": 60}
        svc.pop("public", None)
    return services


@pytest.mark.parametrize(("cloud", "block", "starts", "says"), BAD_MONITORING)
def test_bad_monitoring_input_is_one_line(cloud: str, block: dict[str, Any], starts: str, says: str) -> None:
    if cloud == "kubernetes":
        values = kubernetes_config(dev_services(scaled(schedule=None)), block)
        with pytest.raises(ConfigError) as info:
            load(values, stack="dev-kubernetes")
        message = str(info.value)
    else:
        message = error_of(config(services_with(scaled()), extra={MON: block}))
    assert message.startswith(f"config error: {starts}"), message
    assert says in message, message


def test_a_kubernetes_stack_that_scales_needs_a_url_and_one_without_scaling_does_not() -> None:
    with pytest.raises(ConfigError, match=r"monitoring\.prometheus is not set: required on a kubernetes stack"):
        load(kubernetes_config(dev_services(scaled(schedule=None))), stack="dev-kubernetes")
    assert load(kubernetes_config(dev_services(None)), stack="dev-kubernetes").monitoring.managed
    spec = load(kubernetes_config(dev_services(scaled(schedule=None)), {"prometheus": {"url": "http://prometheus.monitoring.svc:9090"}}),
                stack="dev-kubernetes")
    assert spec.monitoring.prometheus_url == "http://prometheus.monitoring.svc:9090"


def test_a_credential_in_the_url_is_refused_without_repeating_it() -> None:
    message = error_of(config(services_with(scaled()), extra={MON: {"prometheus": {"url": "https://admin:s3cret@prom:9090"}}}))
    assert message.startswith(f"config error: {MON}.prometheus.url is a URL with a user name or password")
    assert "s3cret" not in message and "admin" not in message


def test_monitoring_on_a_stack_with_no_services_is_refused() -> None:
    values = config()
    del values["im-platform:services"]
    values[MON] = json.dumps({"scrapeIntervalSeconds": 30})
    assert error_of(values).startswith(f"config error: {MON} is {{\"scrapeIntervalSeconds\": 30}}, but the stack has no "
                                       "im-platform:services")


@pytest.mark.parametrize(("value", "says"), [(-1, "from 0 to 3600"), (3601, "from 0 to 3600"), ("30s", "whole number")])
def test_bad_ready_seconds(value: Any, says: str) -> None:
    message = error_of(config(services_with(None, readySeconds=value)))
    assert message.startswith(f"config error: im-platform:services.gateway.readySeconds is {json.dumps(value)}")
    assert says in message


# -- properties over the scaling block ---------------------------------------------------------------

_value = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["metric", "targetPerPod", "metricsPort", "metricsPath", "query", "cpu",
                                        "schedule", "peakLoad", "bogus"]), _value, max_size=5))
def test_any_scaling_block_plans_or_is_one_config_error(block: dict[str, Any]) -> None:
    try:
        spec = load(config(services_with(block)))
    except ConfigError as exc:
        assert str(exc).startswith("config error: im-platform:services.gateway.scaling")
        assert "\n" not in str(exc)
    else:
        scaling = spec.scaled_services[0].scaling
        assert scaling is not None and scaling.target_per_pod > 0 and 1 <= scaling.metrics_port <= 65535


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 80), st.integers(0, 100))
def test_window_replicas_are_held_to_the_tiers_bounds(replicas: int, low: int) -> None:
    services = services_with(scaled(schedule=[window(replicas=replicas)]))
    services["gateway"]["replicas"] = {"min": max(2, low), "max": 60}
    try:
        spec = load(config(services))
    except ConfigError as exc:
        assert not max(2, low) <= replicas <= 60
        assert ".schedule[0].replicas" in str(exc) or "replicas.min" in str(exc)
    else:
        assert max(2, low) <= replicas <= 60 and spec.services[0].scaling.schedule[0].replicas == replicas  # type: ignore[union-attr]


# -- the cron reader: KEDA's (robfig/cron v3) rules ----------------------------------------------------


def test_cron_fields_follow_robfig() -> None:
    c = parse_cron("*/15 9-17 * JAN-mar mon-FRI")
    assert c.minutes == {0, 15, 30, 45} and c.hours == set(range(9, 18)) and c.months == {1, 2, 3}
    assert c.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("5/20 0 1,15 * ?").minutes == {5, 25, 45}
    for bad in ("* * * *", "61 * * * *", "* * 0 * *", "* * * 13 *", "*/0 * * * *", "5-1 * * * *", "a * * * *", ",1 * * * *"):
        with pytest.raises(CronError):
            parse_cron(bad)


def test_cron_matches_minutes_in_the_windows_zone() -> None:
    shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
    start = parse_cron("0 19 * * *")
    assert start.matches(dt.datetime(2026, 12, 5, 19, 0, tzinfo=shanghai))
    assert not start.matches(dt.datetime(2026, 12, 5, 19, 1, tzinfo=shanghai))
    # Both day fields restricted: either may match (robfig's dayMatches); one of them '*': both.
    either = parse_cron("0 0 1 * MON")
    assert either.matches(dt.datetime(2026, 12, 7, 0, 0)) and either.matches(dt.datetime(2026, 12, 1, 0, 0))
    both = parse_cron("0 0 * * MON")
    assert both.matches(dt.datetime(2026, 12, 7, 0, 0)) and not both.matches(dt.datetime(2026, 12, 1, 0, 0))
