"""TLS for the public names: the configuration (im-platform:tls and the traffic stacks that route to
a stack), what the real offline plan of every stack declares for it, and the failover probe
against local TLS servers with and without a certificate for the public name."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.k8s import tls as tls_parts
from components.spec import TLS_PROXY_PORT, tls_proxy_ports
from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from infra.config.stackfiles import all_stacks, read_stack_config, searching_beside, stack_file
from infra.failover.control import probe
from infra.offline.plan import Plan
from infra.policy.rules import RULES_BY_NAME, Context, Resource, evaluate
from tests.conftest import make_config, spec_plan, stack_plan
from tests.test_services_config import SERVICES

CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TLS = {"hosts": ["chat-test.example.com"], "zone": "example.com"}


def load(cloud: str = "aws", stack: str = "solo-aws", **extra: Any) -> Any:
    return load_spec(make_config(cloud, extra={"im-platform:services": SERVICES, **extra}), project="im-platform", stack=stack)


# -- configuration -------------------------------------------------------------------------------


def test_a_pair_stack_learns_its_names_from_the_traffic_stack_that_routes_to_it() -> None:
    for stack in ("prod-aws", "prod-azure"):
        values, _ = read_stack_config(stack_file(stack), "im-platform")
        assert "im-platform:tls" not in values
        tls = load_spec(values, project="im-platform", stack=stack).tls
        assert tls is not None and tls.issuer == "letsencrypt" and tls.traffic_stacks == ("prod-traffic",)
        assert tls.hosts == ("chat.example.com", f"{stack}.chat.example.com")
        assert [(z.zone, z.hosts) for z in tls.zones] == [("example.com", tls.hosts)]


def test_a_traffic_stack_beside_a_planned_file_counts_too(tmp_path: Path) -> None:
    traffic = {"config": {"aws:region": "us-east-1", "im-platform:traffic": {
        "provider": "route53", "zone": "example.org", "name": "im.example.org", "stacks": ["solo-aws", "other"],
        "active": "solo-aws"}}}
    (tmp_path / "Pulumi.solo-traffic.yaml").write_text(yaml.safe_dump(traffic))
    with searching_beside(tmp_path / "Pulumi.solo-aws.yaml"):
        tls = load(**{"im-platform:tls": TLS}).tls
    assert tls.hosts == ("im.example.org", "solo-aws.im.example.org", "chat-test.example.com")
    assert {z.zone: z.hosts for z in tls.zones} == {"example.org": ("im.example.org", "solo-aws.im.example.org"),
                                                    "example.com": ("chat-test.example.com",)}


def test_a_stack_without_a_traffic_stack_serves_the_hosts_it_names() -> None:
    assert load().tls is None, "no name known: no TLS (the policy reports the plain public tier)"
    tls = load(**{"im-platform:tls": {**TLS, "issuer": "letsencrypt-staging", "email": "ops@example.com"}}).tls
    assert (tls.hosts, tls.email, tls.acme_server) == (
        ("chat-test.example.com",), "ops@example.com", "https://acme-staging-v02.api.letsencrypt.org/directory")
    own = load(**{"im-platform:tls": {"issuer": "own", "hosts": ["chat-test.example.com"], "secretName": "chat-tls"}}).tls
    assert (own.acme, own.zones, own.secret_name) == (False, (), "chat-tls")


@pytest.mark.parametrize("extra, message", [
    ({"im-platform:tls": {**TLS, "issuer": "letsencrypt-prod"}},
     'im-platform:tls.issuer is "letsencrypt-prod": expected one of letsencrypt, letsencrypt-staging, own; did you mean'),
    ({"im-platform:tls": {"hosts": ["chat-test.example.com"]}},
     "im-platform:tls.zone is not set: required with im-platform:tls.hosts and issuer letsencrypt"),
    ({"im-platform:tls": {"zone": "example.com", "hosts": ["chat.example.net"]}},
     'im-platform:tls.hosts[0] is "chat.example.net", but zone is example.com: expected a name inside the zone'),
    ({"im-platform:tls": {"zone": "example.com", "hosts": ["*.example.com"]}},
     'im-platform:tls.hosts[0] is "*.example.com": expected a lowercase DNS name'),
    ({"im-platform:tls": {**TLS, "hostz": []}}, "im-platform:tls.hostz is an unknown key"),
    ({"im-platform:tls": {"issuer": "own"}}, "im-platform:tls.hosts is not set: required"),
    ({"im-platform:tls": {**TLS, "issuer": "own", "email": "ops@example.com"}},
     'im-platform:tls.email is "ops@example.com": is only used with an ACME issuer'),
    ({"im-platform:tls": {**TLS, "email": "ops"}}, 'im-platform:tls.email is "ops": expected an email address'),
    ({"im-platform:services": {**SERVICES, "gateway": {**SERVICES["gateway"], "tls": "passthrough"}}},
     'im-platform:services.gateway.tls is "passthrough": expected proxy'),
    ({"im-platform:services": {**SERVICES, "logic": {**SERVICES["logic"], "tls": "self"}}},
     'im-platform:services.logic.tls is "self": is only used with public: true'),
])
def test_bad_tls_configuration_is_one_line_naming_the_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(**extra)
    assert str(err.value).startswith(f"config error: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_hosts_without_a_public_tier_declare_no_certificate_but_are_still_validated() -> None:
    # A stack whose public tiers were removed (or a pair half without a gateway) serves no name.
    services = {"logic": SERVICES["logic"] | {"allowFrom": []}}
    assert load(**{"im-platform:services": services, "im-platform:tls": TLS}).tls is None
    with pytest.raises(ConfigError, match="im-platform:tls.hostz is an unknown key"):
        load(**{"im-platform:services": services, "im-platform:tls": {**TLS, "hostz": []}})


def test_the_plan_command_stops_on_a_bad_tls_key_with_exit_2(tmp_path: Path) -> None:
    values = yaml.safe_load(stack_file("dev-aws").read_text())
    values["config"]["im-platform:tls"]["issuer"] = "acme"
    path = tmp_path / "Pulumi.dev-tls.yaml"
    path.write_text(yaml.safe_dump(values))
    run = subprocess.run(["venv/bin/python", "-m", "infra.cli", "plan", "--config-file", str(path)],
                         capture_output=True, text=True, timeout=300, check=False, cwd=Path(__file__).parents[1])
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith('config error: im-platform:tls.issuer is "acme"')
    assert "Traceback" not in run.stderr


# -- what every stack's real plan declares ------------------------------------------------------


def tls_stacks() -> list[str]:
    """Stacks with a public tier and a name cert-manager issues (every cluster stack of the examples;
    with `issuer: own`, as on a kubernetes stack, the user provides the Secret and none is declared)."""
    found = []
    for stack in all_stacks():
        values, _ = read_stack_config(stack_file(stack), "im-platform")
        if "im-platform:traffic" in values:
            continue
        try:
            spec = load_spec(values, project="im-platform", stack=stack)
        except ConfigError:
            continue
        if spec.tls is not None and spec.tls.acme and any(s.public for s in spec.services):
            found.append(stack)
    return found


def test_every_example_cluster_stack_with_a_public_tier_has_tls() -> None:
    assert {"prod-aws", "prod-azure", "staging-gcp", "dev-aws"} <= set(tls_stacks())


def pod_of(plan: Plan, name: str) -> dict[str, Any]:
    deployment = next(r for r in plan.of_type(DEPLOYMENT) if r["inputs"]["metadata"]["name"] == name)
    spec: dict[str, Any] = deployment["inputs"]["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("stack", tls_stacks())
def test_the_plan_declares_a_certificate_for_every_name_and_ends_tls_before_the_plain_port(stack: str) -> None:
    plan = stack_plan(stack)
    values, _ = read_stack_config(stack_file(stack), "im-platform")
    spec = load_spec(values, project="im-platform", stack=stack)
    assert spec.tls is not None
    certificates = plan.of_type(CERTIFICATE)
    public = [s for s in spec.services if s.public]
    # One certificate per namespace of public tiers, carrying every name clients use.
    assert {c["inputs"]["metadata"]["namespace"] for c in certificates} == {s.namespace for s in public}
    for certificate in certificates:
        body = certificate["inputs"]["spec"]
        assert body["dnsNames"] == list(spec.tls.hosts)
        assert body["secretName"] == spec.tls.secret_name
        assert body["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": tls_parts.ISSUER_NAME}
        # `pulumi up` never waits on an issuance that may not come.
        assert certificate["inputs"]["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    (issuer,) = plan.of_type(ISSUER)
    solvers = issuer["inputs"]["spec"]["acme"]["solvers"]
    assert sorted(z for s in solvers for z in s["selector"]["dnsZones"]) == sorted(z.zone for z in spec.tls.zones)
    for tier in public:
        service = next(r for r in plan.of_type(SERVICE) if r["inputs"]["metadata"]["name"] == tier.name)
        (port,) = service["inputs"]["spec"]["ports"]
        pod = pod_of(plan, tier.name)
        (sidecar,) = pod["initContainers"]
        assert (port["port"], port["targetPort"]) == (tier.public_port, tls_parts.PROXY_PORT_NAME)
        assert sidecar["restartPolicy"] == "Always" and sidecar["ports"][0]["name"] == port["targetPort"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
        assert volumes["tls-certificate"]["secret"]["secretName"] == spec.tls.secret_name
        assert mounted["tls-certificate"] == tls_parts.PROXY_CERT_DIR
        # The tier itself keeps its plain port, probes and drain; the proxy's requests are counted.
        (main,) = pod["containers"]
        assert main["readinessProbe"]["httpGet"]["port"] == "app" and "scheme" not in main["readinessProbe"]["httpGet"]
        assert sidecar["resources"]["requests"] == {"cpu": tls_parts.PROXY_CPU, "memory": tls_parts.PROXY_MEMORY}
        security = sidecar["securityContext"]
        assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"] and security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"} and security["allowPrivilegeEscalation"] is False
        config = next(r for r in plan.of_type("kubernetes:core/v1:ConfigMap")
                      if r["inputs"]["metadata"]["name"] == f"{tier.name}-{tls_parts.PROXY_NAME}")["inputs"]["data"]
        envoy = json.loads(config["envoy.yaml"])
        cluster = envoy["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        assert cluster["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": tier.port}
        # drainSeconds unchanged: the tier's preStop wait, then shutdown; the sidecar outlives both.
        assert main["lifecycle"]["preStop"]["sleep"]["seconds"] == tier.drain_seconds
        assert pod["terminationGracePeriodSeconds"] == tier.termination_grace_seconds


# Every port the contract gives a tier (stack-config.md: `port`, the container port, 1-65535).
SAMPLED_PORTS = [1, 80, 443, 8080, TLS_PROXY_PORT, 9443, 65535]


def test_the_sidecars_ports_are_a_pure_function_of_the_tiers_port_and_never_take_it() -> None:
    assert tls_proxy_ports(8080) == tls_proxy_ports(8080)
    assert (tls_proxy_ports(8080).tls, tls_proxy_ports(TLS_PROXY_PORT).tls) == (TLS_PROXY_PORT, TLS_PROXY_PORT + 1)
    for port in range(1, 65536):
        ports = tls_proxy_ports(port)
        assert len({port, ports.tls, ports.health}) == 3, port


@pytest.mark.parametrize("port", SAMPLED_PORTS)
def test_a_public_tier_on_any_port_plans_with_a_public_name_and_its_pods_ports_are_distinct(port: int) -> None:
    # A stack file that planned before TLS plans with it: the sidecar takes ports the tier does not
    # use. Kubernetes refuses a pod whose containers (sidecars included) declare one containerPort
    # twice only by name, but two processes cannot bind one port of the pod's network namespace
    # (https://kubernetes.io/docs/concepts/workloads/pods/#pod-networking: "containers within the
    # Pod ... must coordinate how they use the shared network resources (such as ports)").
    services = {**SERVICES, "gateway": {**SERVICES["gateway"], "port": port}}
    plan = spec_plan("aws", stack="tls-ports-aws", extra={"im-platform:services": services, "im-platform:tls": TLS})
    pod = pod_of(plan, "gateway")
    declared = [p["containerPort"] for c in [*pod["containers"], *pod["initContainers"]] for p in c.get("ports", [])]
    names = [p["name"] for c in [*pod["containers"], *pod["initContainers"]] for p in c.get("ports", [])]
    assert port in declared and len(declared) == len(set(declared)) >= 2, declared
    assert len(names) == len(set(names)), names
    # What the sidecar listens on is what it declares, and it forwards to the tier's own port.
    config = next(r for r in plan.of_type("kubernetes:core/v1:ConfigMap")
                  if r["inputs"]["metadata"]["name"] == f"gateway-{tls_parts.PROXY_NAME}")["inputs"]["data"]
    envoy = json.loads(config["envoy.yaml"])
    listening = {lst["address"]["socket_address"]["port_value"] for lst in envoy["static_resources"]["listeners"]}
    (sidecar,) = pod["initContainers"]
    assert listening == {p["containerPort"] for p in sidecar["ports"]} and port not in listening
    upstream = envoy["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert upstream["endpoint"]["address"]["socket_address"]["port_value"] == port
    # The load balancer reaches the sidecar's TLS port, and the network policy lets it in there.
    service = next(r for r in plan.of_type(SERVICE) if r["inputs"]["metadata"]["name"] == "gateway")
    assert service["inputs"]["spec"]["ports"][0]["targetPort"] == tls_parts.PROXY_PORT_NAME
    policy = next(r for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                  if r["inputs"]["metadata"]["name"] == "gateway")["inputs"]["spec"]
    assert {"ports": [{"port": tls_proxy_ports(port).tls, "protocol": "TCP"}]} in policy["ingress"]


@pytest.mark.parametrize("stack", tls_stacks())
def test_no_private_key_and_no_stored_credential_anywhere_in_the_plan(stack: str) -> None:
    plan = stack_plan(stack)
    assert not [r for r in plan.resources if r["type"].startswith("tls:")], "no tls provider resource (no key in state)"
    for secret in plan.of_type("kubernetes:core/v1:Secret"):
        data = {**(secret["inputs"].get("data") or {}), **(secret["inputs"].get("stringData") or {})}
        assert not {"tls.key", "key.pem", "secret-access-key"} & set(data), secret["urn"]
    text = json.dumps(plan.to_json())
    assert "BEGIN" not in text and "PRIVATE KEY" not in text
    found = evaluate([Resource.from_plan(r) for r in plan.resources], Context(stack=stack, environment="x"),
                     [RULES_BY_NAME["issuer-no-stored-credentials"], RULES_BY_NAME["public-tier-tls"]])
    assert found == []


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_route53_access_is_keyless_and_limited_to_the_challenge_records(cloud: str) -> None:
    plan = spec_plan(cloud, stack=f"tls-{cloud}", extra={"im-platform:services": SERVICES, "im-platform:tls": TLS})
    (policy,) = [r for r in plan.of_type(ROLE_POLICY) if r["name"].endswith("-tls-dns")]
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    write = next(s for s in statements if s["Action"] == "route53:ChangeResourceRecordSets")
    assert write["Resource"].startswith("arn:aws:route53:::hostedzone/Z")
    assert write["Condition"] == {"ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.chat-test.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}}
    assert {s["Action"] for s in statements} == {"route53:GetChange", "route53:ListResourceRecordSets",
                                                 "route53:ChangeResourceRecordSets"}
    assert all(s["Resource"] != "*" for s in statements)
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("-tls-dns")]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    (issuer,) = plan.of_type(ISSUER)
    route53 = issuer["inputs"]["spec"]["acme"]["solvers"][0]["dns01"]["route53"]
    if cloud == "aws":
        # EKS Pod Identity for cert-manager's own account: no role or token in the issuer.
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == tls_parts.CERT_MANAGER_ACCOUNT
        (association,) = [r for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                          if r["name"].endswith("-tls-dns")]
        assert association["inputs"]["namespace"] == tls_parts.CERT_MANAGER_NAMESPACE
        assert set(route53) == {"region", "hostedZoneID"}
    else:
        # Web identity: this cluster's issuer, one service account, the STS audience.
        (oidc,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        assert trust["Principal"]["Federated"].endswith(oidc["inputs"]["url"].removeprefix("https://"))
        conditions = trust["Condition"]["StringEquals"]
        assert sorted(conditions.values()) == sorted([
            f"system:serviceaccount:{tls_parts.CERT_MANAGER_NAMESPACE}:{tls_parts.DNS_ACCOUNT}", "sts.amazonaws.com"])
        assert route53["role"].endswith(f":role/{role['inputs']['name']}")
        assert route53["auth"] == {"kubernetes": {"serviceAccountRef": {"name": tls_parts.DNS_ACCOUNT}}}


def test_the_proxy_keeps_websockets_and_idles_longer_than_any_load_balancer() -> None:
    from components.k8s.services import NLB_IDLE_TIMEOUT_SECONDS, PUBLIC_SERVICE_ANNOTATIONS

    azure_minutes = int(PUBLIC_SERVICE_ANNOTATIONS["azure"]["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"])
    assert tls_parts.PROXY_IDLE_TIMEOUT_SECONDS >= max(NLB_IDLE_TIMEOUT_SECONDS, azure_minutes * 60)
    config = tls_parts.proxy_config(8080)
    listener = config["static_resources"]["listeners"][0]
    chain = listener["filter_chains"][0]
    params = chain["transport_socket"]["typed_config"]["common_tls_context"]["tls_params"]
    assert params["tls_minimum_protocol_version"] == "TLSv1_2"
    assert all("GCM" in c or "CHACHA20" in c for c in params["cipher_suites"]) and all("ECDHE" in c for c in params["cipher_suites"])
    manager = chain["filters"][0]["typed_config"]
    assert manager["upgrade_configs"] == [{"upgrade_type": "websocket"}]
    route = manager["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["timeout"] == "0s"
    for timeout in (manager["stream_idle_timeout"], manager["common_http_protocol_options"]["idle_timeout"], route["idle_timeout"]):
        assert int(timeout.removesuffix("s")) >= tls_parts.PROXY_IDLE_TIMEOUT_SECONDS
    sds = tls_parts.sds_config()["resources"][0]["tls_certificate"]
    assert sds["watched_directory"] == {"path": tls_parts.PROXY_CERT_DIR}, "a renewed Secret is re-read without a restart"


def test_a_tier_that_ends_tls_itself_gets_the_certificate_and_https_probes() -> None:
    services = {**SERVICES, "gateway": {**SERVICES["gateway"], "tls": "self"}}
    plan = spec_plan("aws", stack="tls-self-aws", extra={"im-platform:services": services, "im-platform:tls": TLS})
    pod = pod_of(plan, "gateway")
    assert "initContainers" not in pod
    (main,) = pod["containers"]
    assert {m["name"]: m["mountPath"] for m in main["volumeMounts"]}["tls-certificate"] == "/etc/im-platform/tls"
    assert main["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    service = next(r for r in plan.of_type(SERVICE) if r["inputs"]["metadata"]["name"] == "gateway")["inputs"]
    assert service["spec"]["ports"][0]["targetPort"] == "app"
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol"] == "https"


def test_bring_your_own_certificate_mounts_the_named_secret_and_installs_no_issuer() -> None:
    own = {"issuer": "own", "hosts": ["chat-test.example.com"], "secretName": "chat-tls"}
    plan = spec_plan("gcp", stack="tls-own-gcp", extra={"im-platform:services": SERVICES, "im-platform:tls": own})
    assert not plan.of_type(ISSUER) and not plan.of_type(CERTIFICATE)
    assert not plan.of_type("aws:iam/role:Role"), "no Route 53 access without an ACME issuer"
    volumes = {v["name"]: v for v in pod_of(plan, "gateway")["volumes"]}
    assert volumes["tls-certificate"]["secret"]["secretName"] == "chat-tls"


# -- the failover probe against a local TLS server ------------------------------------------------


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        """Silent: the stdlib handler would print every request to stderr."""


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A probe that rejects the certificate hangs up mid-handshake: that is the point of the test."""


def serve(cert: tuple[Path, Path] | None) -> Iterator[int]:
    httpd = QuietServer(("127.0.0.1", 0), Healthy)
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    return {name: self_signed(folder, name) for name in ("chat.example.com", "lb-123.elb.eu-west-1.amazonaws.com")}


@pytest.fixture(scope="module")
def trusted(certificates: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Both certificates trusted: only the name can make the probe fail."""
    bundle = tmp_path_factory.mktemp("ca") / "bundle.pem"
    bundle.write_text("".join(c.read_text() for c, _ in certificates.values()))
    return str(bundle)


@pytest.fixture(scope="module")
def with_name(certificates: dict[str, tuple[Path, Path]]) -> Iterator[int]:
    yield from serve(certificates["chat.example.com"])


@pytest.fixture(scope="module")
def without_name(certificates: dict[str, tuple[Path, Path]]) -> Iterator[int]:
    yield from serve(certificates["lb-123.elb.eu-west-1.amazonaws.com"])


@pytest.fixture(scope="module")
def plain() -> Iterator[int]:
    yield from serve(None)


def test_the_probe_passes_on_a_tls_endpoint_with_a_certificate_for_the_public_name(with_name: int, trusted: str) -> None:
    assert probe("127.0.0.1", with_name, "/healthz", "chat.example.com", ca_file=trusted) is True


def test_the_probe_fails_on_a_certificate_without_the_public_name(without_name: int, trusted: str) -> None:
    assert probe("127.0.0.1", without_name, "/healthz", "chat.example.com", ca_file=trusted) is False
    # The same server answers a probe for the name its certificate does carry: the name is what fails.
    assert probe("127.0.0.1", without_name, "/healthz", "lb-123.elb.eu-west-1.amazonaws.com", ca_file=trusted) is True


def test_the_probe_fails_on_a_plain_endpoint(plain: int, trusted: str) -> None:
    with socket.create_connection(("127.0.0.1", plain), timeout=5):
        pass  # it is listening: only the missing TLS can fail the probe
    assert probe("127.0.0.1", plain, "/healthz", "chat.example.com", ca_file=trusted, timeout_s=2) is False


@pytest.mark.parametrize("stack", tls_stacks())
def test_envoy_starts_only_once_the_certificate_is_mounted_and_then_watches_it(stack: str) -> None:
    # Envoy does not pick up file-based SDS certificate files that were missing when it started
    # (envoyproxy/envoy#26312; #21239: loadFiles() throws before the watch callback is set; fixed in
    # #42652, after the pinned release), so it would serve nothing until restarted. A required
    # Secret volume keeps the kubelet from starting the pod's containers until the Secret exists
    # (https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod),
    # and envoy then re-reads the files on each renewal through the watched directory.
    plan = stack_plan(stack)
    values, _ = read_stack_config(stack_file(stack), "im-platform")
    spec = load_spec(values, project="im-platform", stack=stack)
    for tier in (s for s in spec.services if s.public and s.tls == "proxy"):
        pod = pod_of(plan, tier.name)
        volume = next(v for v in pod["volumes"] if v["name"] == "tls-certificate")
        assert volume["secret"].get("optional") is False, "an optional volume lets envoy start without the files"
        (sidecar,) = pod["initContainers"]
        mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "tls-certificate")
        config = next(r for r in plan.of_type("kubernetes:core/v1:ConfigMap")
                      if r["inputs"]["metadata"]["name"] == f"{tier.name}-{tls_parts.PROXY_NAME}")["inputs"]["data"]
        secret = json.loads(config["sds.yaml"])["resources"][0]["tls_certificate"]
        assert secret["watched_directory"]["path"] == mount["mountPath"]
        assert secret["certificate_chain"]["filename"] == f"{mount['mountPath']}/tls.crt"
        # Ready only while its TLS listener accepts (bound once the certificate is loaded).
        assert sidecar["readinessProbe"]["tcpSocket"]["port"] == tls_parts.PROXY_PORT_NAME
