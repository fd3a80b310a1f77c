"""The real failover Control without a cloud: the Automation API drives a fake `pulumi` written by
the test (it records every argv), and the health probe talks to a local HTTPS server whose
throwaway certificate is issued for the public name, not for 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from infra.failover.control import PulumiControl, StackBusy, probe
from infra.failover.orchestrator import failover
from tests.conftest import ROOT

TRAFFIC = """config:
  aws:region: us-east-1
  im-platform:traffic:
    provider: route53
    zone: example.com
    name: chat.example.com
    stacks: [prod-aws, prod-azure]
    active: prod-aws
    ttl: 30
    healthCheck: {path: /healthz, intervalSeconds: 10, failureThreshold: 3}
"""


def pair_stack(cloud: str, peer: str, role: str) -> str:
    return (f"config:\n  im-platform:cloud: {cloud}\n  im-platform:environment: prod\n"
            f"  im-platform:dr:\n    peer: {peer}\n    role: {role}\n")


def write_fixture(folder: Path) -> Path:
    """A repository-shaped folder: Pulumi.yaml and stacks/ with a pair and its traffic stack."""
    stacks = folder / "stacks"
    stacks.mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    (stacks / "Pulumi.prod-traffic.yaml").write_text(TRAFFIC)
    (stacks / "Pulumi.prod-aws.yaml").write_text(pair_stack("aws", "prod-azure", "primary"))
    (stacks / "Pulumi.prod-azure.yaml").write_text(pair_stack("azure", "prod-aws", "standby"))
    return stacks


class FakePulumi:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any]) -> None:
        (root / "bin").mkdir(parents=True)
        exe = root / "bin" / "pulumi"
        exe.write_text(f"#!{sys.executable}\n" + (ROOT / "tests" / "fake_pulumi.py").read_text())
        exe.chmod(0o755)
        self.log = root / "argv.jsonl"
        self.state = root / "state.json"
        self.log.write_text("")
        self.state.write_text(json.dumps({"config": {}, "outputs": outputs, "busy": []}))
        monkeypatch.setenv("FAKE_PULUMI_LOG", str(self.log))
        monkeypatch.setenv("FAKE_PULUMI_STATE", str(self.state))
        self.command = auto.PulumiCommand(root=str(root), skip_version_check=True)

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def mutating(self) -> list[tuple[str, ...]]:
        """config set and up, reduced to (verb, stack, key=value | message)."""
        out: list[tuple[str, ...]] = []
        for argv in self.calls():
            if argv == ["version"]:
                continue
            stack = argv[argv.index("--stack") + 1]
            if argv[:2] == ["config", "set"]:
                out.append(("config set", stack, f"{argv[argv.index('--path') + 1]}={argv[-1]}"))
                assert "--path" in argv and "--plaintext" in argv and argv[-2] == "--"
            elif "up" in argv:
                assert "--yes" in argv and "--skip-preview" in argv
                out.append(("up", stack, argv[argv.index("--message") + 1]))
            assert "cancel" not in argv, "never cancels an update"
        return out

    def set_busy(self, *stacks: str) -> None:
        state = json.loads(self.state.read_text())
        state["busy"] = list(stacks)
        self.state.write_text(json.dumps(state))


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    gateway = {"service": "gateway", "address": "127.0.0.1", "port": 1, "healthPath": "/healthz"}
    return FakePulumi(tmp_path / "pulumi", monkeypatch, {"prod-azure": {"gateway": gateway}})


def control(tmp_path: Path, fake: FakePulumi, lines: list[str]) -> PulumiControl:
    stacks = write_fixture(tmp_path / "repo")
    return PulumiControl("prod-traffic", work_dir=stacks.parent, pulumi_command=fake.command, on_output=lines.append)


def test_promote_route_and_demote_write_the_stack_file_then_up_on_the_right_stack(tmp_path: Path, fake: FakePulumi) -> None:
    lines: list[str] = []
    c = control(tmp_path, fake, lines)
    files = {name: c.stack_path(name) for name in ("prod-aws", "prod-azure", "prod-traffic")}
    before = {name: path.read_text() for name, path in files.items()}
    assert c.active() == "prod-aws"
    c.promote("prod-azure")
    c.route("prod-azure")
    c.demote("prod-aws")
    assert fake.mutating() == [
        ("up", "prod-azure", "failover: promote prod-azure to primary"),
        ("up", "prod-traffic", "failover: route prod-traffic to prod-azure"),
        ("up", "prod-aws", "failover: demote prod-aws to standby"),
    ]
    assert not [a for a in fake.calls() if a[:2] == ["config", "set"]], "the file is the one source of the value"
    # One word changed in each file, everything else (comments included) byte for byte.
    assert files["prod-azure"].read_text() == before["prod-azure"].replace("role: standby", "role: primary")
    assert files["prod-aws"].read_text() == before["prod-aws"].replace("role: primary", "role: standby")
    assert files["prod-traffic"].read_text() == before["prod-traffic"].replace("active: prod-aws", "active: prod-azure")
    assert c.active() == "prod-azure"
    selects = [a[a.index("--stack") + 1] for a in fake.calls() if "select" in a]
    assert selects == ["prod-azure", "prod-traffic", "prod-aws"], "each stack is selected once"
    # The update's own output is streamed, each line naming its stack.
    assert "[prod-azure] Updating (prod-azure)" in lines and "[prod-traffic] Updating (prod-traffic)" in lines


def test_another_update_in_progress_is_reported_and_left_alone(tmp_path: Path, fake: FakePulumi) -> None:
    c = control(tmp_path, fake, [])
    fake.set_busy("prod-aws")
    with pytest.raises(StackBusy, match="prod-aws has another update in progress; it was not cancelled"):
        c.demote("prod-aws")
    assert not any("cancel" in argv for argv in fake.calls())


def test_healthy_reads_the_gateway_output_once(tmp_path: Path, fake: FakePulumi) -> None:
    c = control(tmp_path, fake, [])
    assert c.gateway("prod-azure")["address"] == "127.0.0.1"
    outputs = [a for a in fake.calls() if "output" in a]
    assert outputs and all(a[a.index("--stack") + 1] == "prod-azure" for a in outputs)
    assert c.healthy("prod-azure") is False  # port 1: nothing listens
    assert c.healthy("prod-azure") is False
    assert [a for a in fake.calls() if "output" in a] == outputs, "probes do not re-read the stack outputs"
    assert c.public_name() == "chat.example.com"


def test_the_failover_over_the_real_control_stops_at_the_gate(tmp_path: Path, fake: FakePulumi) -> None:
    """Nothing listens on the gateway: promote runs, the gate times out, nothing is routed."""
    c = control(tmp_path, fake, [])
    report = failover("prod-azure", control=c, journal=tmp_path / "j.json", health_timeout_s=0,
                      sleep=lambda s: None, clock=time.monotonic)
    assert report.failed_step == "health" and report.serving == "prod-aws"
    assert [m[:2] for m in fake.mutating()] == [("up", "prod-azure")]


# ---------------------------------------------------------------------------------------------
# The probe against a local HTTPS server.


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=chat.example.com",
                    "-addext", "subjectAltName=DNS:chat.example.com"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Handler(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        Handler.hosts.append(self.headers.get("Host", ""))
        if self.path == "/slow":
            time.sleep(2)
        status = 200 if self.path in ("/healthz", "/slow") else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        """Silent: the stdlib handler would print every request to stderr."""


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # The timeout test's probe hangs up before /slow answers: that is the point, not an error to print.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server(certificate: tuple[Path, Path]) -> Iterator[int]:
    httpd = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_the_probe_passes_on_2xx_with_the_public_names_certificate(server: int, certificate: tuple[Path, Path]) -> None:
    Handler.hosts.clear()
    assert probe("127.0.0.1", server, "/healthz", "chat.example.com", ca_file=str(certificate[0])) is True
    assert Handler.hosts == ["chat.example.com"], "the Host header is the public name"


def test_the_probe_fails_on_an_error_status(server: int, certificate: tuple[Path, Path]) -> None:
    assert probe("127.0.0.1", server, "/down", "chat.example.com", ca_file=str(certificate[0])) is False


def test_the_probe_fails_on_a_certificate_for_another_name_or_an_untrusted_one(server: int,
                                                                               certificate: tuple[Path, Path]) -> None:
    assert probe("127.0.0.1", server, "/healthz", "other.example.com", ca_file=str(certificate[0])) is False
    assert probe("127.0.0.1", server, "/healthz", "chat.example.com") is False, "the system store does not trust it"


def test_the_probe_times_out(server: int, certificate: tuple[Path, Path]) -> None:
    started = time.monotonic()
    assert probe("127.0.0.1", server, "/slow", "chat.example.com", timeout_s=0.3, ca_file=str(certificate[0])) is False
    assert time.monotonic() - started < 1.9
