"""Read and validate a tier's `scaling` block and `im-platform:monitoring` into the spec.

A tier scales on the load it carries (scaling.md): a Prometheus metric its pods export, a target per
pod, optional schedule windows before a known peak. Every mistake is one `ConfigError` naming the key,
the value and what is expected: the PromQL is parsed by a real PromQL parser (promql-parser, the Rust
crate behind it follows Prometheus's grammar), cron expressions as KEDA's cron scaler reads them
(infra/config/cron.py), time zones against the IANA database (zoneinfo, with `tzdata` as fallback).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from components.spec import (
    DEFAULT_METRICS_PATH,
    DEFAULT_READY_SECONDS,
    DEFAULT_SCRAPE_INTERVAL_SECONDS,
    KEDA_MODES,
    KUBERNETES,
    MonitoringSpec,
    ScalingSpec,
    ScheduleWindow,
    ServiceSpec,
)
from infra.config.cron import CronError, parse_cron
from infra.config.errors import MISSING, ConfigError, HiddenValueError
from infra.config.readers import NS, as_bool, as_int, as_list, as_mapping, as_str, check_keys, optional, required

MONITORING_KEY = f"{NS}monitoring"
SCALING_KEYS = ("metric", "targetPerPod", "metricsPort", "metricsPath", "query", "cpu", "schedule", "peakLoad")
WINDOW_KEYS = ("start", "end", "timezone", "replicas")
MONITORING_KEYS = ("prometheus", "scrapeIntervalSeconds", "keda")
PROMETHEUS_KEYS = ("url",)
MANAGED = "managed"

# Prometheus's data model: metric names match [a-zA-Z_:][a-zA-Z0-9_:]* (colons are for recording rules).
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
METRICS_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
READY_SECONDS_MAX = 3600
SCRAPE_INTERVAL_RANGE = (10, 300)
# Expressions whose result KEDA's prometheus scaler cannot read as one number.
_NOT_INSTANT = {"MatrixSelector": "a range vector", "SubqueryExpr": "a range vector (a subquery)",
                "StringLiteral": "a string"}


def read_positive_number(path: str, value: Any, what: str) -> Decimal:
    """A number > 0 written as a YAML number (a quoted string is refused: it is a typo's usual shape)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(path, value, f"expected {what}: a number > 0")
    amount = Decimal(str(value))
    if amount <= 0:
        raise ConfigError(path, value, f"expected {what}: a number > 0")
    return amount


def read_metric(path: str, value: Any) -> str:
    if not isinstance(value, str) or not METRIC_NAME_RE.match(value):
        raise ConfigError(path, value, "expected a Prometheus metric name: a letter, '_' or ':', then letters, digits, "
                                       "'_' or ':', such as im_gateway_connections")
    return value


def read_query(path: str, value: Any) -> str:
    import promql_parser  # a compiled extension: loaded only by stacks that write a query

    text = as_str(path, value, what="a PromQL expression, such as 'sum(im_gateway_connections)'")
    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        raise ConfigError(path, value, f"expected a PromQL expression that parses: {exc}") from None
    while type(expr).__name__ == "ParenExpr":
        expr = expr.expr  # type: ignore[attr-defined]
    kind = _NOT_INSTANT.get(type(expr).__name__)
    if kind:
        raise ConfigError(path, value, f"but it evaluates to {kind}: expected an expression that evaluates to one number "
                                       "or an instant vector (KEDA reads the first value), such as sum(...)")
    return text


def read_cron(path: str, value: Any) -> str:
    what = 'a cron expression of 5 fields (minute hour day-of-month month day-of-week), such as "0 19 * * *"'
    text = as_str(path, value, what=what)
    try:
        parse_cron(text)
    except CronError as exc:
        raise ConfigError(path, value, f"expected {what}: {exc}") from None
    return text


def read_timezone(path: str, value: Any) -> str:
    what = "an IANA time zone name, such as Asia/Shanghai or UTC"
    text = as_str(path, value, what=what)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(path, value, f"expected {what} (not in the IANA time zone database)") from None
    return text


def read_window(path: str, value: Any, low: int, high: int) -> ScheduleWindow:
    window = as_mapping(path, value)
    check_keys(path, window, WINDOW_KEYS)
    start = required(path, window, "start", read_cron)
    end = required(path, window, "end", read_cron)
    if start.split() == end.split():
        # KEDA's cron scaler refuses it ("start and end can not have exactly same time input").
        raise ConfigError(f"{path}.end", window["end"], "but start is the same: a window must end at another time")
    timezone = required(path, window, "timezone", read_timezone)
    replicas = required(path, window, "replicas", as_int)
    if not low <= replicas <= high:
        raise ConfigError(f"{path}.replicas", replicas, f"expected a whole number from replicas.min {low} to replicas.max {high}")
    return ScheduleWindow(start=start, end=end, timezone=timezone, replicas=replicas)


def read_scaling(path: str, value: Any, *, port: int, min_replicas: int, max_replicas: int,
                 sidecar_ports: tuple[int, ...]) -> ScalingSpec:
    block = as_mapping(path, value)
    check_keys(path, block, SCALING_KEYS)
    metric = required(path, block, "metric", read_metric)
    target = required(path, block, "targetPerPod", lambda p, v: read_positive_number(p, v, "the load one pod is sized to carry"))

    def read_metrics_port(p: str, v: Any) -> int:
        number = as_int(p, v)
        if not 1 <= number <= 65535:
            raise ConfigError(p, v, "expected a port number from 1 to 65535")
        if number in sidecar_ports:
            raise ConfigError(p, v, f"but the TLS sidecar of this public tier takes {' and '.join(map(str, sidecar_ports))}: pick the port "
                                    "the tier's own container serves its metrics on")
        return number

    metrics_port = optional(path, block, "metricsPort", read_metrics_port, port)
    metrics_path = optional(path, block, "metricsPath",
                            lambda p, v: as_str(p, v, METRICS_PATH_RE, "an HTTP path starting with '/', such as /metrics"),
                            DEFAULT_METRICS_PATH)
    query = optional(path, block, "query", read_query, None)
    cpu = optional(path, block, "cpu", as_bool, True)
    listed: list[Any] = optional(path, block, "schedule", as_list, [])
    windows = tuple(read_window(f"{path}.schedule[{i}]", item, min_replicas, max_replicas) for i, item in enumerate(listed))
    peak = optional(path, block, "peakLoad", lambda p, v: read_positive_number(p, v, "the tier's load at the day's peak"), None)
    return ScalingSpec(metric=metric, target_per_pod=target, metrics_port=metrics_port, metrics_path=metrics_path,
                       query=query, cpu=cpu, schedule=windows, peak_load=peak)


def read_ready_seconds(path: str, value: Any) -> int:
    number = as_int(path, value)
    if not 0 <= number <= READY_SECONDS_MAX:
        raise ConfigError(path, value, f"expected a whole number of seconds from 0 to {READY_SECONDS_MAX} (from a pod's "
                                       f"creation to its readiness; default {DEFAULT_READY_SECONDS})")
    return number


def read_prometheus_url(path: str, value: Any) -> str:
    what = "an http(s) URL of the Prometheus query API, such as http://prometheus.monitoring.svc:9090"
    text = as_str(path, value, what=what)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(path, value, f"expected {what}") from None
    if parts.username is not None or parts.password is not None:
        # A credential in a committed stack file: never repeated, never used (KEDA queries without one).
        raise HiddenValueError(path, "a URL with a user name or password in it (its value not shown): expected "
                                     f"{what}, with no credential")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(path, value, f"expected {what}")
    return text.rstrip("/")


def read_monitoring(value: Any, *, cloud: str, services: tuple[ServiceSpec, ...]) -> MonitoringSpec:
    """`im-platform:monitoring` (None: not given), checked against the stack's kind and its tiers."""
    scaled = [s for s in services if s.scaling is not None]
    if value is None:
        _require_url_on_existing_cluster(cloud, scaled)
        return MonitoringSpec()
    block = as_mapping(MONITORING_KEY, value)
    if not services:
        raise ConfigError(MONITORING_KEY, dict(block), f"but the stack has no {NS}services: monitoring serves the tiers "
                                                       "that scale on their load; remove it")
    check_keys(MONITORING_KEY, block, MONITORING_KEYS)
    url = _read_prometheus(block, cloud, scaled)
    low, high = SCRAPE_INTERVAL_RANGE
    interval = optional(MONITORING_KEY, block, "scrapeIntervalSeconds",
                        lambda p, v: _in_range(p, v, low, high, " seconds"), DEFAULT_SCRAPE_INTERVAL_SECONDS)
    keda = optional(MONITORING_KEY, block, "keda", _read_keda_mode, "install")
    return MonitoringSpec(prometheus_url=url, scrape_interval_seconds=interval, keda=keda)


def _read_prometheus(block: Mapping[str, Any], cloud: str, scaled: list[ServiceSpec]) -> str | None:
    path = f"{MONITORING_KEY}.prometheus"
    raw = block.get("prometheus")
    expected = (f"expected {MANAGED} (the cloud's managed Prometheus) or {{url: http(s)://...}} (one you run)"
                if cloud != KUBERNETES else "expected {url: http(s)://...}: the Prometheus that scrapes the cluster")
    if raw is None:
        _require_url_on_existing_cluster(cloud, scaled)
        return None
    if raw == MANAGED:
        if cloud == KUBERNETES:
            raise ConfigError(path, raw, f"but {NS}cloud is {KUBERNETES}: an existing cluster has no managed Prometheus of "
                                         f"the program's; {expected}")
        return None
    if isinstance(raw, Mapping):
        check_keys(path, raw, PROMETHEUS_KEYS)
        return required(path, raw, "url", read_prometheus_url)
    raise ConfigError(path, raw, expected)


def _require_url_on_existing_cluster(cloud: str, scaled: list[ServiceSpec]) -> None:
    if cloud == KUBERNETES and scaled:
        raise ConfigError(f"{MONITORING_KEY}.prometheus", MISSING,
                          f"required on a {KUBERNETES} stack when a tier scales on load ({NS}services.{scaled[0].name}"
                          ".scaling): {url: http(s)://...} of the Prometheus that scrapes the cluster")


def _read_keda_mode(path: str, value: Any) -> str:
    if value not in KEDA_MODES:
        raise ConfigError(path, value, "expected install (the program installs KEDA's Helm chart) or existing (KEDA "
                                       "already runs in the cluster, e.g. the AKS KEDA add-on: only the ScaledObjects "
                                       "and TriggerAuthentications are declared)")
    return str(value)


def _in_range(path: str, value: Any, low: int, high: int, unit: str) -> int:
    number = as_int(path, value)
    if not low <= number <= high:
        raise ConfigError(path, value, f"expected a whole number from {low} to {high}{unit}")
    return number
