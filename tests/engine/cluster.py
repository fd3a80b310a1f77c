"""A real Kubernetes control plane on loopback for the engine tests: etcd, kube-apiserver and
kube-controller-manager built by tools/engine/build.sh, in a temporary directory, on free ports,
with certificates and service-account keys made here (openssl), stopped afterwards.

There are no real nodes. `FakeKubelet` plays the part kubelets and the scheduler play for the
objects the program declares: it keeps one Node, binds every pending pod to it, reports each bound
pod Running and Ready (so Deployments become available and Services get endpoints, which the
Kubernetes provider waits for), and finishes the deletion of terminating pods. Everything else is
the real thing: the API server's validation, defaults and admission (Pod Security `restricted` on
the namespaces that carry its labels, ServiceAccount, PriorityClass, ...), server-side apply, and
the controllers (deployments, replica sets, endpoints, garbage collection, namespaces, HPAs,
service-account tokens).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

NODE = "engine-node"
# Pod and node addresses are only ever written into the API (pods need one for their endpoints);
# nothing connects to them. TEST-NET-1 (RFC 5737) is reserved for exactly this.
NODE_IP = "192.0.2.1"
SERVICE_RANGE = "10.96.0.0/16"  # the API server's own allocation range; no traffic goes there
START_TIMEOUT_S = 120.0
FRONT_PROXY_CLIENT = "front-proxy-client"


class ClusterError(RuntimeError):
    """The control plane did not start or answered an unexpected status."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ClusterError("openssl is not installed (the engine tests make their certificates with it)")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate (system:masters),
    the front proxy's CA and client certificate and the service-account signing key pair, all EC
    P-256 (fast to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
             "-subj", "/CN=engine-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    certs = {
        "server": ("/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                   "extendedKeyUsage=serverAuth\n"),
        "admin": ("/O=system:masters/CN=engine-admin", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subject, extensions) in certs.items():
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=folder)
        (folder / f"{name}.ext").write_text(extensions)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=folder)
    # The aggregation layer's front proxy: its own CA, and the client certificate the API server
    # presents to an aggregated API server (KEDA's metrics server) on behalf of the caller.
    _openssl("req", "-x509", *ec, "-days", "2", "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
             "-subj", "/CN=engine-front-proxy-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", *ec, "-keyout", "front-proxy-client.key", "-out", "front-proxy-client.csr",
             "-subj", f"/CN={FRONT_PROXY_CLIENT}", cwd=folder)
    (folder / "front-proxy-client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "front-proxy-client.csr", "-CA", "front-proxy-ca.crt",
             "-CAkey", "front-proxy-ca.key", "-CAcreateserial", "-days", "2", "-out", "front-proxy-client.crt",
             "-extfile", "front-proxy-client.ext", cwd=folder)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=folder)
    _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


def kubeconfig_text(server: str, pki: Path, context: str) -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "engine-admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                                     "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "engine-admin"}}],
    }
    return json.dumps(doc, indent=2)


@dataclass
class Cluster:
    """A running control plane: its address, a kubeconfig for it and a small REST client."""

    folder: Path
    bin_dir: Path
    context: str = "engine-test"
    controller_args: tuple[str, ...] = ()  # more kube-controller-manager flags (an HPA sync period)
    server: str = ""
    kubeconfig: Path = field(default_factory=Path)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _ssl: ssl.SSLContext | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        pki = self.folder / "pki"
        make_pki(pki)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.spawn("etcd", [
            "--name", "engine", "--data-dir", str(self.folder / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"engine=http://127.0.0.1:{peer_port}",
            "--log-level", "warn",
        ])
        self.spawn("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--authorization-mode=RBAC",
            # A loopback advertise address cannot back the `kubernetes` Service's endpoints.
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false", "--profiling=false",
            # The aggregation layer, so an APIService (KEDA's external metrics) can be served.
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        ])
        self.server = f"https://127.0.0.1:{api_port}"
        self.kubeconfig = self.folder / "kubeconfig"
        self.kubeconfig.write_text(kubeconfig_text(self.server, pki, self.context))
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self._ssl = context
        self._wait_ready("/readyz")
        self.spawn("kube-controller-manager", [
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            # No kubelet sends heartbeats: the node lifecycle controller would taint the node and
            # evict every pod after 40 s.
            "--controllers=*,-nodelifecycle",
            *self.controller_args,
        ])

    def spawn(self, tool: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start a built tool beside the control plane; `stop` ends it first (last started, first stopped)."""
        binary = self.bin_dir / tool
        if not os.access(binary, os.X_OK):
            raise ClusterError(f"{binary} is missing: run ./setup.sh --engine")
        log = open(self.folder / f"{tool}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(binary), *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=self.folder,
                                env=None if env is None else {**os.environ, **env})
        log.close()
        self.processes.append((tool, proc))

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for tool, proc in self.processes:
                if proc.poll() is not None:
                    raise ClusterError(f"{tool} exited with {proc.returncode}:\n{self.log_tail(tool)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", path, ok=(200, 500))[0] == 200:
                    return
            time.sleep(0.5)
        raise ClusterError(f"the API server was not ready within {START_TIMEOUT_S:.0f} s:\n"
                           f"{self.log_tail('kube-apiserver')}")

    def log_tail(self, tool: str, lines: int = 30) -> str:
        path = self.folder / f"{tool}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for _, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.processes.clear()

    # -- REST -----------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        assert self._ssl is not None and self.server
        host, port = self.server.removeprefix("https://").split(":")
        conn = http.client.HTTPSConnection(host, int(port), context=self._ssl, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": content_type, "Accept": "application/json"}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        parsed: Any = raw.decode(errors="replace")
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw)
        if response.status not in ok:
            raise ClusterError(f"{method} {path}: {response.status} {parsed}")
        return response.status, parsed

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]

    def api_paths(self) -> dict[tuple[str, str], tuple[str, bool]]:
        """(apiVersion, kind) -> (the collection's path prefix, namespaced), over every served API."""
        found: dict[tuple[str, str], tuple[str, bool]] = {}
        groups = [("v1", "/api/v1")]
        for group in self.get("/apis")["groups"]:
            for version in group["versions"]:
                groups.append((version["groupVersion"], f"/apis/{version['groupVersion']}"))
        for group_version, prefix in groups:
            for resource in self.get(prefix)["resources"]:
                if "/" in resource["name"] or "list" not in resource.get("verbs", []):
                    continue
                found[(group_version, resource["kind"])] = (f"{prefix}/{resource['name']}", resource["namespaced"])
        return found

    def object_path(self, api_version: str, kind: str, name: str, namespace: str | None) -> str:
        prefix, namespaced = self.api_paths()[(api_version, kind)]
        if namespaced:
            base, resource = prefix.rsplit("/", 1)
            return f"{base}/namespaces/{quote(namespace or 'default')}/{resource}/{quote(name)}"
        return f"{prefix}/{quote(name)}"

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any | None:
        status, body = self.request("GET", self.object_path(api_version, kind, name, namespace), ok=(200, 404))
        return body if status == 200 else None

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        return self.read(api_version, kind, name, namespace) is not None

    def version(self) -> str:
        return str(self.get("/version")["gitVersion"])


@contextlib.contextmanager
def running_cluster(folder: Path, bin_dir: Path, controller_args: tuple[str, ...] = ()) -> Iterator[Cluster]:
    cluster = Cluster(folder=folder, bin_dir=bin_dir, controller_args=controller_args)
    try:
        cluster.start()
        kubelet = FakeKubelet(cluster)
        kubelet.start()
        try:
            yield cluster
        finally:
            kubelet.stop()
    finally:
        cluster.stop()


class FakeKubelet:
    """One Node, and every pod bound to it, Running and Ready; terminating pods deleted at once."""

    def __init__(self, cluster: Cluster, interval_s: float = 0.3) -> None:
        self.cluster = cluster
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)
        self._next_ip = 2
        self.errors: list[str] = []

    def start(self) -> None:
        self.cluster.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
        })
        now = _now()
        self.cluster.request("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake kubelet",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE}],
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
        }}, content_type="application/merge-patch+json")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except (OSError, http.client.HTTPException, ClusterError) as exc:
                if not self._stop.is_set():
                    self.errors.append(str(exc))
            self._stop.wait(self.interval_s)

    def _sync(self) -> None:
        for pod in self.cluster.get("/api/v1/pods")["items"]:
            meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            if meta.get("deletionTimestamp"):
                self.cluster.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                                      "gracePeriodSeconds": 0}, ok=(200, 202, 404))
            elif not spec.get("nodeName"):
                self.cluster.request("POST", f"{path}/binding", {
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}, ok=(200, 201, 404, 409))
            elif status.get("phase") != "Running":
                self.cluster.request("PATCH", f"{path}/status", self._running(spec),
                                     content_type="application/merge-patch+json", ok=(200, 404))

    def _running(self, spec: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        ip = f"192.0.2.{self._next_ip}"
        self._next_ip = self._next_ip + 1 if self._next_ip < 254 else 2
        conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "started": True,
                       "restartCount": 0, "state": {"running": {"startedAt": now}}}
                      for c in spec.get("containers", [])]
        return {"status": {"phase": "Running", "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}], "podIP": ip,
                           "podIPs": [{"ip": ip}], "startTime": now, "conditions": conditions,
                           "containerStatuses": containers}}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
