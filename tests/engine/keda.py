"""KEDA beside the engine tests' control plane, and a Prometheus the tests script.

KEDA's operator and metrics API server (built by tools/engine/build.sh from the Go module
github.com/kedacore/keda/v2) run out of cluster, as KEDA's BUILD.md ("Custom KEDA locally outside
cluster") runs them: a kubeconfig to the local API server, WATCH_NAMESPACE empty (every namespace),
KEDA_CLUSTER_OBJECT_NAMESPACE, and a certificate folder (ca.crt, tls.crt, tls.key) for the mutual
TLS of their gRPC link, made here. The metrics server sits behind the `APIService`
v1beta1.external.metrics.k8s.io, whose Service is of type ExternalName naming 127.0.0.1: the
aggregator resolves such a Service to `externalName:port` (k8s.io/apiserver `ResolveCluster`), so
no kube-proxy is needed. KEDA's CRDs are read from the module in the Go module cache at test time.

`FakePrometheus` answers Prometheus's instant-query API (`/api/v1/query`) on 127.0.0.1 with what a
test scripts: a vector with one value, an HTTP error status, or an empty vector.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import math
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from tests.engine.cluster import Cluster, ClusterError, _openssl, free_port
from tests.engine.engine import ROOT

KEDA_TOOLS = ("keda-operator", "keda-adapter")
KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_NAMESPACE = "keda"
METRICS_SERVICE = "keda-metrics-apiserver"
EXTERNAL_METRICS = "v1beta1.external.metrics.k8s.io"
# The HPA controller's loop in these tests (15 s by default): short, so a test waits seconds.
HPA_SYNC_PERIOD_S = 2
START_TIMEOUT_S = 120.0


def keda_source() -> Path:
    """The folder of the KEDA module tools/engine/keda/go.mod pins, in the Go module cache (fetched
    from the module proxy if the cache lost it)."""
    out = subprocess.run(["go", "mod", "download", "-json", KEDA_MODULE], cwd=ROOT / "tools" / "engine" / "keda",
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"})
    if out.returncode != 0:
        raise ClusterError(f"go mod download {KEDA_MODULE}: {out.stderr or out.stdout}")
    return Path(json.loads(out.stdout)["Dir"])


def crd_documents(source: Path) -> list[dict[str, Any]]:
    """KEDA's CustomResourceDefinitions as its module ships them (config/crd/bases)."""
    docs = []
    for path in sorted((source / "config" / "crd" / "bases").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    if not any(d["metadata"]["name"] == "scaledobjects.keda.sh" for d in docs):
        raise ClusterError(f"no ScaledObject CRD under {source}/config/crd/bases")
    return docs


def apply_crds(cluster: Cluster, docs: Sequence[dict[str, Any]]) -> None:
    """Create the CRDs and wait until the API server serves them."""
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for doc in docs:
        cluster.request("POST", base, doc)
    deadline = time.monotonic() + 60
    for doc in docs:
        while True:
            crd = cluster.get(f"{base}/{doc['metadata']['name']}")
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"CRD {doc['metadata']['name']} not established: {conditions}")
            time.sleep(0.2)


# -- the fake Prometheus ------------------------------------------------------------------------


@dataclass
class Query:
    """One query KEDA sent: when (monotonic), the PromQL, and what was answered."""

    at: float
    promql: str
    answered: str


class FakePrometheus:
    """`GET /api/v1/query` on 127.0.0.1 answering the scripted result: a value (a vector of one
    sample), an HTTP error status, or an empty vector. To every query, or after `script_only(q)`
    to the query `q` alone, the others getting a fixed value (other tiers scaled on load stay put)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: tuple[str, float] = ("value", 0.0)
        self._only: str | None = None
        self._others = 0.0
        self.queries: list[Query] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-prometheus", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_value(self, value: float) -> None:
        with self._lock:
            self._answer = ("value", float(value))

    def answer_status(self, status: int) -> None:
        with self._lock:
            self._answer = ("status", float(status))

    def answer_empty(self) -> None:
        with self._lock:
            self._answer = ("empty", 0.0)

    def script_only(self, promql: str, others: float = 0.0) -> None:
        with self._lock:
            self._only, self._others = promql, float(others)

    def queries_since(self, since: float, promql: str | None = None) -> list[Query]:
        with self._lock:
            return [q for q in self.queries if q.at >= since and promql in (None, q.promql)]

    def _respond(self, promql: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            kind, value = self._answer if self._only in (None, promql) else ("value", self._others)
            if kind == "status":
                self.queries.append(Query(time.monotonic(), promql, f"HTTP {int(value)}"))
                return int(value), {"status": "error", "errorType": "unavailable", "error": "scripted outage"}
            result: list[dict[str, Any]] = []
            if kind == "value":
                # Prometheus writes sample values as strings (its HTTP API docs, "Expression query result formats").
                result = [{"metric": {}, "value": [time.time(), _prom_number(value)]}]
            self.queries.append(Query(time.monotonic(), promql, kind if kind == "empty" else _prom_number(value)))
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        prometheus = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                url = urlparse(self.path)
                if url.path != "/api/v1/query":
                    self._send(404, {"status": "error", "error": f"not served here: {url.path}"})
                    return
                promql = parse_qs(url.query).get("query", [""])[0]
                self._send(*prometheus._respond(promql))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        return Handler


def _prom_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- KEDA ---------------------------------------------------------------------------------------


def make_keda_certs(folder: Path) -> None:
    """ca.crt, tls.crt, tls.key: the operator's gRPC server, the metrics server's gRPC client (both
    mutual TLS, one certificate as KEDA's own cert rotation makes) and the metrics server's serving
    certificate, valid for 127.0.0.1 and for the Service name the aggregator checks."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=engine-keda-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    _openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=keda", cwd=folder)
    (folder / "tls.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{METRICS_SERVICE}.{KEDA_NAMESPACE}.svc,"
        f"DNS:keda-operator.{KEDA_NAMESPACE}.svc\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-out", "tls.crt", "-extfile", "tls.ext", cwd=folder)


@dataclass
class Keda:
    """KEDA's operator and metrics server running against `cluster`."""

    cluster: Cluster
    folder: Path
    grpc_port: int = 0
    adapter_port: int = 0
    started: list[str] = field(default_factory=list)

    def start(self) -> None:
        certs = self.folder / "keda-certs"
        make_keda_certs(certs)
        self.cluster.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": KEDA_NAMESPACE}})
        kubeconfig = str(self.cluster.kubeconfig)
        env = {
            "KUBECONFIG": kubeconfig,
            "WATCH_NAMESPACE": "",  # every namespace
            "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
            "POD_NAMESPACE": KEDA_NAMESPACE,
            "KEDA_HTTP_DEFAULT_TIMEOUT": "2000",
        }
        self.grpc_port, self.adapter_port = free_port(), free_port()
        self.cluster.spawn("keda-operator", [
            f"--kubeconfig={kubeconfig}", f"--cert-dir={certs}", f"--ca-dir={certs}",
            f"--metrics-service-bind-address=127.0.0.1:{self.grpc_port}",
            "--metrics-bind-address=0", "--health-probe-bind-address=0", "--leader-elect=false",
            "--zap-log-level=info", "--zap-encoder=console",
        ], env=env)
        self.started.append("keda-operator")
        self.cluster.spawn("keda-adapter", [
            f"--kubeconfig={kubeconfig}", f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={self.adapter_port}", f"--cert-dir={certs}",
            f"--tls-cert-file={certs / 'tls.crt'}", f"--tls-private-key-file={certs / 'tls.key'}",
            f"--metrics-service-address=127.0.0.1:{self.grpc_port}",
            # Its own /metrics listener (every interface; KEDA offers no host for it).
            f"--port={free_port()}",
            "--zap-log-level=info", "--zap-encoder=console",
        ], env=env)
        self.started.append("keda-adapter")
        self._register_metrics_api(certs)

    def _register_metrics_api(self, certs: Path) -> None:
        self.cluster.request("POST", f"/api/v1/namespaces/{KEDA_NAMESPACE}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": METRICS_SERVICE},
            # ExternalName: the aggregator dials externalName:port (k8s.io/apiserver ResolveCluster).
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}})
        self.cluster.request("POST", "/apis/apiregistration.k8s.io/v1/apiservices", {
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": EXTERNAL_METRICS},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100,
                     "caBundle": base64.b64encode((certs / "ca.crt").read_bytes()).decode(),
                     "service": {"namespace": KEDA_NAMESPACE, "name": METRICS_SERVICE, "port": self.adapter_port}}})
        deadline = time.monotonic() + START_TIMEOUT_S
        conditions: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_running()
            api = self.cluster.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{EXTERNAL_METRICS}")
            conditions = {c["type"]: c for c in (api.get("status") or {}).get("conditions") or []}
            if conditions.get("Available", {}).get("status") == "True":
                return
            time.sleep(0.5)
        raise ClusterError(f"{EXTERNAL_METRICS} not available within {START_TIMEOUT_S:.0f} s: {conditions}\n"
                           f"{self.cluster.log_tail('keda-adapter')}")

    def check_running(self) -> None:
        for tool, proc in self.cluster.processes:
            if tool in self.started and proc.poll() is not None:
                raise ClusterError(f"{tool} exited with {proc.returncode}:\n{self.cluster.log_tail(tool)}")


# -- the scaling rig ----------------------------------------------------------------------------


@dataclass
class ScalingRig:
    """A control plane whose HPA controller syncs every HPA_SYNC_PERIOD_S, KEDA, and the fake Prometheus."""

    cluster: Cluster
    keda: Keda
    prometheus: FakePrometheus
    sync_period_s: float = HPA_SYNC_PERIOD_S

    def scaled_object(self, name: str, namespace: str) -> dict[str, Any] | None:
        return self.cluster.read("keda.sh/v1alpha1", "ScaledObject", name, namespace)

    def hpa_of(self, name: str, namespace: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The HPA KEDA made for ScaledObject `name` (its status names it), once it exists."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.keda.check_running()
            so = self.scaled_object(name, namespace) or {}
            hpa_name = so.get("status", {}).get("hpaName")
            if hpa_name:
                hpa = self.cluster.read("autoscaling/v2", "HorizontalPodAutoscaler", hpa_name, namespace)
                if hpa is not None:
                    return dict(hpa)
            if time.monotonic() > deadline:
                raise ClusterError(f"KEDA made no HPA for ScaledObject {namespace}/{name} within {timeout_s:.0f} s: "
                                   f"{so.get('status')}\n{self.cluster.log_tail('keda-operator')}")
            time.sleep(0.5)

    def replicas(self, deployment: str, namespace: str) -> int:
        """The Deployment's desired replicas: what the HPA controller wrote through the scale subresource."""
        scale = self.cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale")
        return int(scale["spec"].get("replicas", 0))

    def wait_replicas(self, deployment: str, namespace: str, expected: int, timeout_s: float) -> float:
        """Seconds until the Deployment's replicas equal `expected`; fails with the HPA's conditions."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            self.keda.check_running()
            if self.replicas(deployment, namespace) == expected:
                return time.monotonic() - started
            time.sleep(0.5)
        hpas = self.cluster.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers")["items"]
        raise AssertionError(f"{namespace}/{deployment} at {self.replicas(deployment, namespace)} replicas, not "
                             f"{expected}, after {timeout_s:.0f} s; HPAs: "
                             f"{[(h['metadata']['name'], h.get('status')) for h in hpas]}")

    def replay(self, deployment: str, namespace: str, script: Sequence[tuple[float, float]],
               until_s: float | None = None, sample_s: float = 0.5) -> ReplicaSeries:
        """Serve a scripted load and record the Deployment's replicas over time.

        `script` is [(seconds, value), ...]: from `seconds` after the start (the first at 0) the fake
        Prometheus answers `value` (the tier's total load, what the ScaledObject's query returns)
        until the next step. The run lasts until `until_s` (default: the last step plus 10 sync
        periods) and samples the replicas every `sample_s`."""
        steps = sorted((float(t), float(v)) for t, v in script)
        if not steps or steps[0][0] != 0:
            raise ValueError("a load script starts at 0 s: [(0, value), (seconds, value), ...]")
        end = until_s if until_s is not None else steps[-1][0] + 10 * self.sync_period_s
        series = ReplicaSeries(sync_period_s=self.sync_period_s)
        started = time.monotonic()
        step = -1
        while (now := time.monotonic() - started) <= end:
            while step + 1 < len(steps) and steps[step + 1][0] <= now:
                step += 1
                self.prometheus.answer_value(steps[step][1])
            self.keda.check_running()
            series.samples.append(Sample(round(now, 2), steps[step][1], self.replicas(deployment, namespace)))
            time.sleep(sample_s)
        return series


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the replay started
    load: float  # what Prometheus answered from then on
    replicas: int  # the Deployment's desired replicas (its scale subresource)


@dataclass
class ReplicaSeries:
    """The replicas a replay recorded, over time."""

    sync_period_s: float
    samples: list[Sample] = field(default_factory=list)

    def changes(self) -> list[Sample]:
        """The samples where the replicas differ from the sample before (the first sample included)."""
        return [s for i, s in enumerate(self.samples) if i == 0 or s.replicas != self.samples[i - 1].replicas]

    def at(self, seconds: float) -> int:
        """The replicas last recorded at or before `seconds`."""
        found = [s for s in self.samples if s.seconds <= seconds]
        if not found:
            raise ValueError(f"nothing recorded by {seconds} s")
        return found[-1].replicas

    def ceil_target(self, target_per_pod: float, seconds: float) -> int:
        """ceil(load / target) at `seconds`: what the HPA aims for on an AverageValue target."""
        load = [s for s in self.samples if s.seconds <= seconds][-1].load
        return math.ceil(load / target_per_pod)


@contextlib.contextmanager
def running_scaling_rig(cluster: Cluster, folder: Path) -> Iterator[ScalingRig]:
    """KEDA (its CRDs from the module) and a fake Prometheus on a running control plane."""
    apply_crds(cluster, crd_documents(keda_source()))
    prometheus = FakePrometheus()
    prometheus.start()
    try:
        keda = Keda(cluster, folder)
        keda.start()
        yield ScalingRig(cluster, keda, prometheus)
    finally:
        prometheus.stop()
