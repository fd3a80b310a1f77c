"""The failover's real `Control` (infra/failover/control.py) against the real CLI: selecting local
stacks, writing the role and the route into copies of the example stack files, `pulumi up` and
`stack output`, then a whole failover over it; and what `pulumi stack init` and
`pulumi config set --path` do to those commented files.

A local project cannot run the Python program here (the Python language host's Go module is not
served), so the stacks' project is a Pulumi YAML one whose only output is the `gateway` a pair
stack exports, pointing at a local HTTPS server with a certificate for the public name. What is
under test is the Control's use of the CLI, which is the same whatever the program.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.failover.control import PulumiControl
from infra.failover.orchestrator import failover
from tests.engine.engine import ROOT, cli, command

pytestmark = pytest.mark.engine

PAIR = ("prod-aws", "prod-azure")
TRAFFIC = "prod-traffic"
PUBLIC_NAME = "chat.example.com"


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        """Silent."""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A local HTTPS gateway with a certificate for the public name: (port, CA file)."""
    folder = tmp_path_factory.mktemp("gateway")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={PUBLIC_NAME}",
                    "-addext", f"subjectAltName=DNS:{PUBLIC_NAME}"], check=True, capture_output=True, timeout=60)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def yaml_project(folder: Path, port: int) -> Path:
    """The project: Pulumi.yaml as the repository's (name, stackConfigDir) but a YAML program, and
    the example stack files of the pair and its traffic stack copied byte for byte."""
    settings = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    program = {
        "name": settings["name"], "runtime": "yaml", "stackConfigDir": settings["stackConfigDir"],
        "outputs": {"gateway": {"service": "gateway", "address": "127.0.0.1", "port": port, "healthPath": "/healthz"}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))
    (folder / "stacks").mkdir()
    for stack in (*PAIR, TRAFFIC):
        shutil.copy(ROOT / "stacks" / f"Pulumi.{stack}.yaml", folder / "stacks" / f"Pulumi.{stack}.yaml")
    return folder


@pytest.fixture(scope="module")
def project(tools: Path, env: dict[str, str], gateway: tuple[int, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three stacks initialised and deployed once, as a real pair is before its first failover."""
    folder = yaml_project(tmp_path_factory.mktemp("failover"), gateway[0])
    for stack in (*PAIR, TRAFFIC):
        cli(tools, env, "stack", "init", stack, "--secrets-provider", "passphrase", cwd=folder)
        cli(tools, env, "up", "--yes", "--skip-preview", "--stack", stack, cwd=folder)
    return folder


def stack_text(project: Path, stack: str) -> str:
    return (project / "stacks" / f"Pulumi.{stack}.yaml").read_text()


def without_salt(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("encryptionsalt:"))


def test_stack_init_keeps_the_comments_but_not_their_alignment_and_adds_a_salt(project: Path) -> None:
    """What the CLI does to a commented stack file it writes (`stack init` with a passphrase): it
    appends `encryptionsalt`, keeps every comment, and collapses the space before an end-of-line
    comment to one. The Control never makes the CLI write a stack file (it edits in place)."""
    for stack in (*PAIR, TRAFFIC):
        original = (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()
        written = stack_text(project, stack)
        assert written.count("encryptionsalt:") == 1 and written.rstrip().splitlines()[-1].startswith("encryptionsalt:")
        assert [c.split("#", 1)[1] for c in original.splitlines() if "#" in c] == \
               [c.split("#", 1)[1] for c in written.splitlines() if "#" in c and not c.startswith("encryptionsalt")]
        assert [" ".join(line.split()) for line in original.splitlines()] == \
               [" ".join(line.split()) for line in without_salt(written).splitlines()]


def test_config_set_path_changes_only_the_value_of_a_file_the_cli_wrote(project: Path, tools: Path,
                                                                       env: dict[str, str], tmp_path: Path) -> None:
    """`pulumi config set --path` on a copy: once `stack init` has written the file, a set changes
    that one value and nothing else (comments stay)."""
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    before = stack_text(copy, "prod-azure")
    cli(tools, env, "config", "set", "--path", "im-platform:dr.role", "primary", "--stack", "prod-azure", cwd=copy)
    after = stack_text(copy, "prod-azure")
    assert after == before.replace("role: standby", "role: primary", 1)


def test_control_promote_route_demote_and_outputs_against_the_real_cli(project: Path, tools: Path,
                                                                      env: dict[str, str],
                                                                      gateway: tuple[int, Path]) -> None:
    port, ca = gateway
    lines: list[str] = []
    control = PulumiControl(TRAFFIC, work_dir=project, pulumi_command=command(tools), env_vars=env,
                            on_output=lines.append, ca_file=str(ca))
    assert control.preflight([*PAIR, TRAFFIC]) == []
    assert control.active() == "prod-aws"
    before = {stack: stack_text(project, stack) for stack in (*PAIR, TRAFFIC)}
    report = failover("prod-azure", control=control, journal=project / "failover.json", health_timeout_s=30,
                      drain_s=0, probe_interval_s=0.2, pair=PAIR)
    assert report.ok, (report.failed_step, lines[-20:])
    assert report.serving == "prod-azure"
    # One word changed in each file, every other byte (comments, alignment, the salt) as it was.
    assert stack_text(project, "prod-azure") == before["prod-azure"].replace("role: standby", "role: primary", 1)
    assert stack_text(project, "prod-aws") == before["prod-aws"].replace("role: primary", "role: standby", 1)
    assert stack_text(project, TRAFFIC) == before[TRAFFIC].replace("active: prod-aws", "active: prod-azure", 1)
    # The CLI read the edited files: its own view of each stack's config says so.
    got = cli(tools, env, "config", "get", "--path", "im-platform:dr.role", "--stack", "prod-azure", cwd=project)
    assert got.stdout.strip() == "primary"
    # Each up ran and was recorded with the Control's message; the gateway output came from the state.
    for stack, message in (("prod-azure", "failover: promote prod-azure to primary"),
                           (TRAFFIC, f"failover: route {TRAFFIC} to prod-azure"),
                           ("prod-aws", "failover: demote prod-aws to standby")):
        history = cli(tools, env, "stack", "history", "--json", "--stack", stack, cwd=project)
        assert message in history.stdout, history.stdout[:2000]
    assert control.gateway("prod-azure") == {"service": "gateway", "address": "127.0.0.1", "port": port,
                                             "healthPath": "/healthz"}
    assert any(line.startswith("[prod-azure] ") for line in lines)
