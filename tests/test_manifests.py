"""The Kubernetes objects of every stack, rendered from the offline plan, hold up to the API's schemas
(kubernetes-validate, strict, at the stack's own Kubernetes minor) and to checkov's Kubernetes
checks (any failure must be listed, with its reason, in tests/checkov-skips.yaml).

The renderer itself is tested on a hand-built plan: file layout, apiVersion/kind from the type
token, secrets kept as placeholders, unknowns refused. The same synthetic objects go through the
same validator and the same checkov run, with a deliberately bad Deployment, so a check that is
wired wrong (nothing scanned, results not attributed) fails here instead of passing silently.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline.manifests import (
    INDEX,
    ManifestError,
    ManifestUsageError,
    Rendered,
    kubernetes_version,
    render,
    render_stack,
    to_yaml,
    write,
)
from infra.offline.plan import SECRET, UNKNOWN, Plan, cluster_stacks, plan_stack
from tests.cert_manager_schema import SCHEMAS as CERT_MANAGER_SCHEMAS
from tests.conftest import ROOT
from tests.plans import sharing_plans
from tests.test_cli import cli_in_process, copy_stack

SKIPS_FILE = ROOT / "tests" / "checkov-skips.yaml"
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")
SYNTHETIC = "_synthetic"  # top directory of the synthetic objects in the shared checkov run

# ---------------------------------------------------------------------------------------------
# A hand-built plan, shaped like what pulumi-kubernetes registers (inputs carry apiVersion/kind).

PROVIDER_URN = "urn:pulumi:synthetic::im-platform::pulumi:providers:kubernetes::k8s"


def resource(type_: str, name: str, inputs: dict[str, Any], *, custom: bool = True,
             provider: str | None = f"{PROVIDER_URN}::provider-id") -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:synthetic::im-platform::{type_}::{name}", "type": type_, "name": name,
        "parent": None, "custom": custom, "inputs": inputs,
        "options": {"protect": False, "ignoreChanges": [], "dependsOn": [], "deleteBeforeReplace": False,
                    "retainOnDelete": False, "replaceOnChanges": [], "additionalSecretOutputs": [],
                    "provider": provider},
    }


def hardened_pod(image: str) -> dict[str, Any]:
    """A pod template as the workload contract wants it (restricted Pod Security, probes, limits)."""
    return {
        "metadata": {"labels": {"app": "gateway"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "gateway", "image": image, "imagePullPolicy": "Always",
                "ports": [{"name": "ws", "containerPort": 8080}],
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "ws"}},
                "livenessProbe": {"httpGet": {"path": "/live", "port": "ws"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "runAsUser": 10001,
                                    "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}},
            }],
        },
    }


def deployment(name: str, namespace: str, template: dict[str, Any]) -> dict[str, Any]:
    return resource("kubernetes:apps/v1:Deployment", name, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "gateway"}}, "template": template},
    })


def synthetic_plan(*extra: dict[str, Any]) -> Plan:
    resources = [
        resource("pulumi:providers:kubernetes", "k8s", {"kubeconfig": SECRET, "namespace": "im"}, provider=None),
        resource("im-platform:im:Services", "im", {}, custom=False, provider=None),
        resource("aws:eks/cluster:Cluster", "eks", {"version": "1.33"}, provider=None),
        resource("kubernetes:core/v1:Namespace", "im-ns", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "im", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }),
        deployment("gateway", "im", hardened_pod("registry.example.com/im/gateway:1.4.2")),
        resource("kubernetes:scheduling.k8s.io/v1:PriorityClass", "im-critical", {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "im-critical"}, "value": 100000, "description": "connection gateways",
        }),
        # No name, no namespace: Pulumi autonames it; the provider's default namespace applies.
        resource("kubernetes:core/v1:ConfigMap", "gateway-config", {
            "apiVersion": "v1", "kind": "ConfigMap", "data": {"gateway.yaml": "listen: 8080\nmaxConnections: 50000\n"},
        }),
        resource("kubernetes:core/v1:Secret", "push-credentials", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "push-credentials", "namespace": "im"},
            "type": "Opaque", "stringData": SECRET,
        }),
        resource("kubernetes:helm.sh/v3:Release", "metrics-server", {
            "name": "metrics-server", "namespace": "kube-system", "chart": "metrics-server", "version": "3.12.2",
            "repositoryOpts": {"repo": "https://kubernetes-sigs.github.io/metrics-server/"},
            "values": {"replicas": 2}, "compat": "true",
        }),
        *extra,
    ]
    return Plan("im-platform", "synthetic", sorted(resources, key=lambda r: r["urn"]), {})


def bad_deployment() -> dict[str, Any]:
    """What checkov exists to catch: a floating tag, root, privileged, no limits or probes."""
    return deployment("careless", "im", {
        "metadata": {"labels": {"app": "gateway"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:latest",
                                 "securityContext": {"privileged": True}}]},
    })


# ---------------------------------------------------------------------------------------------
# The renderer


def test_files_are_named_by_namespace_kind_and_name() -> None:
    rendered = render(synthetic_plan())
    assert [m.path for m in rendered.objects] == [
        "_cluster/namespace-im.yaml",
        "_cluster/priorityclass-im-critical.yaml",
        "im/configmap-gateway-config.yaml",
        "im/deployment-gateway.yaml",
        "im/secret-push-credentials.yaml",
    ], "providers, components, other clouds' resources and Helm releases are not objects"
    assert [m.path for m in rendered.helm_releases] == ["helm/kube-system/metrics-server.yaml"]


def test_objects_are_what_the_api_server_receives() -> None:
    objects = {m.path: m.body for m in render(synthetic_plan()).objects}
    deployment_ = objects["im/deployment-gateway.yaml"]
    assert list(deployment_)[:3] == ["apiVersion", "kind", "metadata"]
    assert (deployment_["apiVersion"], deployment_["kind"]) == ("apps/v1", "Deployment")
    assert deployment_["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/im/gateway:1.4.2"
    assert (objects["_cluster/namespace-im.yaml"]["apiVersion"], objects["_cluster/namespace-im.yaml"]["kind"]) == ("v1", "Namespace")
    assert objects["_cluster/priorityclass-im-critical.yaml"]["apiVersion"] == "scheduling.k8s.io/v1"
    assert objects["_cluster/priorityclass-im-critical.yaml"]["value"] == 100000
    config = objects["im/configmap-gateway-config.yaml"]
    assert config["metadata"] == {"name": "gateway-config", "namespace": "im"}, \
        "autonamed: the logical name stands in; no namespace: the provider's default namespace applies"
    assert objects["im/secret-push-credentials.yaml"]["stringData"] == SECRET, "secrets stay placeholders"


def test_yaml_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    plan = synthetic_plan()
    write(render(plan), tmp_path / "a")
    reversed_plan = Plan(plan.project, plan.stack, list(reversed(plan.resources)), {})
    write(render(reversed_plan), tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    text = (tmp_path / "a" / "im" / "configmap-gateway-config.yaml").read_text()
    assert text.startswith("# urn:pulumi:synthetic::im-platform::kubernetes:core/v1:ConfigMap::gateway-config\n")
    assert "gateway.yaml: |\n    listen: 8080\n" in text, "config files stay readable as literal blocks"
    for m in render(plan).objects:
        assert yaml.safe_load((tmp_path / "a" / m.path).read_text()) == m.body


def test_helm_release_is_a_summary_not_an_object(tmp_path: Path) -> None:
    write(render(synthetic_plan()), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.index"], "the index goes beside DIR"
    assert not list((tmp_path / "out").rglob("*metrics-server*")), "no summary among the objects"
    text = (tmp_path / "out.index" / "helm" / "kube-system" / "metrics-server.yaml").read_text()
    summary = yaml.safe_load(text)
    assert "not a Kubernetes object" in text and "kind" not in summary and "compat" not in summary
    assert (summary["chart"], summary["version"], summary["values"]) == ("metrics-server", "3.12.2", {"replicas": 2})


def test_unknown_values_are_refused_naming_the_object() -> None:
    broken = deployment("router", "im", hardened_pod(UNKNOWN))
    with pytest.raises(ManifestError) as caught:
        render(synthetic_plan(broken))
    message = str(caught.value)
    assert "kubernetes:apps/v1:Deployment 'router'" in message
    assert "spec.template.spec.containers[0].image is unknown offline" in message


def test_two_objects_for_one_file_are_refused() -> None:
    twin = deployment("gateway-again", "im", hardened_pod("registry.example.com/im/gateway:1.4.2"))
    twin["inputs"]["metadata"]["name"] = "gateway"
    with pytest.raises(ManifestError, match="both be written to im/deployment-gateway.yaml"):
        render(synthetic_plan(twin))


def test_rewriting_a_directory_drops_objects_that_are_gone(tmp_path: Path) -> None:
    gone = deployment("router", "im", hardened_pod("registry.example.com/im/router:2.0.1"))
    out = tmp_path / "out"
    write(render(synthetic_plan(gone)), out)
    assert (out / "im" / "deployment-router.yaml").is_file()
    (out / "NOTES.md").write_text("the user's own file\n")
    write(render(synthetic_plan()), out)
    assert not (out / "im" / "deployment-router.yaml").exists()
    assert (out / "im" / "deployment-gateway.yaml").is_file() and (out / "NOTES.md").is_file()
    assert yaml.safe_load((tmp_path / "out.index" / INDEX).read_text())["stack"] == "synthetic"


def test_a_directory_of_the_earlier_layout_is_cleaned_up(tmp_path: Path) -> None:
    """Runs before the index moved out left it (and the Helm summaries) among the objects."""
    out = tmp_path / "out"
    write(render(synthetic_plan()), out, tmp_path / "old-index")
    (tmp_path / "old-index" / INDEX).rename(out / INDEX)
    (tmp_path / "old-index" / "helm").rename(out / "_helm")
    legacy = yaml.safe_load((out / INDEX).read_text())
    for entry in legacy["helmReleases"]:
        entry["file"] = "_" + entry["file"]
    (out / INDEX).write_text(yaml.safe_dump(legacy))
    write(render(synthetic_plan()), out)
    assert not (out / INDEX).exists() and not (out / "_helm").exists()
    assert (tmp_path / "out.index" / INDEX).is_file()


def test_the_index_may_not_go_inside_the_objects_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="inside"):
        write(render(synthetic_plan()), tmp_path / "out", tmp_path / "out" / ".index")
    assert not (tmp_path / "out").exists()


def test_a_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print('hello')\n")
    with pytest.raises(ManifestError, match="not empty"):
        write(render(synthetic_plan()), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.py"]
    (tmp_path / "out.index").mkdir()
    (tmp_path / "out.index" / "notes.txt").write_text("mine\n")
    with pytest.raises(ManifestError, match="the index directory"):
        write(render(synthetic_plan()), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# The command


def test_command_writes_the_files_and_one_summary_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli_in_process("manifests", "--stack", "dev-aws", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    summary = result.stderr.strip().splitlines()[-1]
    expected = render_stack("dev-aws")
    assert summary.startswith(f"manifests dev-aws: wrote {len(expected.objects)} Kubernetes objects")
    assert f"objects to {out}; the index, {len(expected.helm_releases)} Helm release summaries to {out}.index (Kubernetes " in summary
    index = yaml.safe_load((tmp_path / "out.index" / INDEX).read_text())
    assert [o["file"] for o in index["objects"]] == [m.path for m in expected.objects]
    for m in expected.objects:
        assert (out / m.path).read_text() == to_yaml(m)


def test_command_puts_the_index_where_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from infra.cli import run

    assert run(["manifests", "--stack", "dev-aws", "--out", str(tmp_path / "k8s"), "--index", str(tmp_path / "meta")]) == 0
    assert (tmp_path / "meta" / INDEX).is_file() and (tmp_path / "meta" / "helm").is_dir()
    assert not (tmp_path / "k8s.index").exists()
    releases = len(list((tmp_path / "meta" / "helm").rglob("*.yaml")))
    assert releases >= 3  # the EKS add-ons at least
    assert f"the index, {releases} Helm release summaries to {tmp_path / 'meta'}" in capsys.readouterr().err
    assert run(["manifests", "--stack", "dev-aws", "--out", str(tmp_path / "k8s"), "--index", str(tmp_path / "k8s" / "meta")]) == 2
    assert "is inside" in capsys.readouterr().err


def test_command_config_error_exits_2(tmp_path: Path) -> None:
    path = copy_stack(tmp_path, "bad-aws", lambda c: c["im-platform:cluster"].update(kubernetesVersion="1.3"))
    result = cli_in_process("manifests", "--config-file", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "config error: im-platform:cluster.kubernetesVersion" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Kubernetes schemas (kubernetes-validate, strict)


@functools.cache
def bundled_minors() -> list[str]:
    from kubernetes_validate import utils

    return sorted({utils.major_minor(v) for v in utils.all_versions()}, key=lambda v: tuple(map(int, v.split("."))))


@functools.cache
def _schema(filename: str, minor: str) -> Any:
    """One bundled schema file, read once per session (the schemas are only read, never changed)."""
    from kubernetes_validate import utils

    return utils.schema_contents(filename, minor)


@functools.cache
def _with_definitions(directory: str, minor: str) -> Any:
    """The registry of the shared definitions every kind's schema refers to, built once per minor."""
    from referencing import Registry, Resource

    return Resource.from_contents(_schema(f"{directory}/_definitions.json", minor)) @ Registry()


# KEDA's kinds: held to KEDA's own CRD schema (from its Go module, tests/test_keda.py).
KEDA_CRDS = {("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
             ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentications"}
SCRAPE_KINDS = {("monitoring.googleapis.com/v1", "PodMonitoring"), ("azmonitoring.coreos.com/v1", "PodMonitor")}


def crd_schema_of(api_version: str, kind: str) -> dict[str, Any] | None:
    name = KEDA_CRDS.get((api_version, kind))
    if name is None:
        return None
    from tests.test_keda import crd_schema

    return crd_schema(name)


def schema_errors(body: dict[str, Any], minor: str) -> list[str]:
    """Every strict-schema error of one object at one Kubernetes minor (`[]` when valid).

    kubernetes-validate's `validate` stops at the first error and cannot know that `"[secret]"`
    stands for a value of the right type; this walks all errors with the very schemas and registry
    it uses, and lets a secret placeholder through wherever it stands.
    """
    import jsonschema
    from referencing import Resource

    if minor not in bundled_minors():
        raise AssertionError(f"kubernetes-validate bundles no schemas for Kubernetes {minor} (it has "
                             f"{', '.join(bundled_minors())}); upgrade kubernetes-validate in requirements-dev.txt")
    directory = f"kubernetes-json-schema/v{minor}.0-local-strict"
    custom = CERT_MANAGER_SCHEMAS.get((body["apiVersion"], body["kind"])) or crd_schema_of(body["apiVersion"], body["kind"])
    if (body["apiVersion"], body["kind"]) in SCRAPE_KINDS:
        # The managed stores' scrape objects: their vendors' CRDs are not to be had offline; the
        # shape is held by tests/test_keda.py, the metadata here.
        meta = schema_errors({"apiVersion": "v1", "kind": "ConfigMap", "metadata": body["metadata"]}, minor)
        return [f"metadata of {body['kind']}: {e}" for e in meta]
    if custom is not None:
        # A cert-manager object: its kind's fields, strict; its metadata against the built-in ObjectMeta.
        errors = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                  for e in jsonschema.Draft202012Validator(custom).iter_errors(body)]
        meta = schema_errors({"apiVersion": "v1", "kind": "ConfigMap", "metadata": body["metadata"]}, minor)
        return errors + [f"metadata of {body['kind']}: {e}" for e in meta]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", body["apiVersion"])
    try:
        schema = _schema(f"{directory}/{body['kind'].lower()}-{api}.json", minor)
    except FileNotFoundError:
        return [f"no schema for {body['apiVersion']} {body['kind']} in Kubernetes {minor}"]
    registry = Resource.from_contents(schema) @ _with_definitions(directory, minor)
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
            if e.instance != SECRET]


def test_cert_manager_objects_are_held_to_their_shape_and_can_fail() -> None:
    """The planned ClusterIssuer and Certificate pass the cert-manager shape; a misspelt field fails."""
    objects = {m.body["kind"]: m.body for m in rendered("prod-azure").objects if m.body["apiVersion"] == "cert-manager.io/v1"}
    assert set(objects) == {"ClusterIssuer", "Certificate"}
    for body in objects.values():
        assert schema_errors(body, "1.33") == []
    typo = json.loads(json.dumps(objects["Certificate"]))
    typo["spec"]["dnsName"] = typo["spec"].pop("dnsNames")
    assert any("dnsName" in e for e in schema_errors(typo, "1.33"))
    bad = json.loads(json.dumps(objects["ClusterIssuer"]))
    bad["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["hostedZoneId"] = "Z1"
    bad["metadata"]["labels"] = {"a": ["list"]}
    errors = schema_errors(bad, "1.33")
    assert any("hostedZoneId" in e for e in errors) and any(e.startswith("metadata of ClusterIssuer") for e in errors)


def test_schema_check_agrees_with_kubernetes_validate_and_can_fail() -> None:
    import kubernetes_validate

    objects = {m.path: m.body for m in render(synthetic_plan()).objects}
    clean = objects["im/deployment-gateway.yaml"]
    assert schema_errors(clean, "1.33") == []
    kubernetes_validate.validate(clean, "1.33", strict=True)  # raises if the two disagree
    typo = json.loads(json.dumps(clean))
    typo["spec"]["replica"] = typo["spec"].pop("replicas")  # strict: unknown fields are errors
    typo["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = ["2"]
    errors = schema_errors(typo, "1.33")
    assert len(errors) == 2 and errors[0].startswith("spec: Additional properties are not allowed ('replica'"), errors
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, "1.33", strict=True)
    assert schema_errors(objects["im/secret-push-credentials.yaml"], "1.33") == [], \
        "a secret placeholder stands for a value of the right type"


@pytest.mark.parametrize("minor", ["1.30", "1.33", "1.35"])
def test_synthetic_objects_are_valid_at_every_supported_minor(minor: str) -> None:
    for m in render(synthetic_plan()).objects:
        assert schema_errors(m.body, minor) == [], m.path


_STACKS: dict[str, Rendered] = {}


def rendered(stack: str) -> Rendered:
    if stack not in _STACKS:
        with sharing_plans():
            try:
                _STACKS[stack] = render_stack(stack)
            except ManifestUsageError:
                # A cluster with nothing on it (no tiers, no buffer: a bare GKE or kubernetes stack).
                plan = plan_stack(stack)
                assert not any(r["type"].startswith("kubernetes:") for r in plan.resources), stack
                _STACKS[stack] = render(plan, kubernetes_version(stack, None))
    return _STACKS[stack]


def test_example_stacks_have_objects_to_check() -> None:
    """Guards the checks below against going vacuous: the example stacks all run service tiers."""
    for stack in ("dev-aws", "staging-gcp", "prod-aws", "prod-azure"):
        kinds = {m.kind for m in rendered(stack).objects}
        assert {"Namespace", "Deployment", "Service", "NetworkPolicy"} <= kinds, f"{stack}: {sorted(kinds)}"


@pytest.mark.parametrize("stack", cluster_stacks())
def test_stack_objects_match_the_schemas_of_its_kubernetes_version(stack: str) -> None:
    result = rendered(stack)
    assert result.kubernetes_version
    if not result.objects:
        pytest.skip(f"the plan of {stack} declares no Kubernetes objects (no service tiers on this cloud)")
    problems = [f"{m.path}: {error}" for m in result.objects for error in schema_errors(m.body, result.kubernetes_version)]
    assert not problems, f"{stack} (Kubernetes {result.kubernetes_version}):\n" + "\n".join(problems)


@pytest.mark.parametrize("stack", cluster_stacks())
def test_a_directory_walking_validator_finds_only_valid_objects(stack: str, tmp_path: Path) -> None:
    """What a user runs on the directory (`kubeconform -strict DIR` here is kubernetes-validate
    --strict over every file under it): each file must be a valid object, the index and the Helm
    summaries included if they were there."""
    result = rendered(stack)
    if not result.objects:
        pytest.skip(f"the plan of {stack} declares no Kubernetes objects")
    out = tmp_path / "manifests"
    write(result, out)
    files = sorted(str(p) for p in out.rglob("*") if p.is_file())
    assert len(files) == len(result.objects) > 0
    validator = Path(sys.executable).parent / "kubernetes-validate"
    run = subprocess.run([str(validator), "--strict", "--quiet", "-k", f"{result.kubernetes_version}.0", *files],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    # Only the cert-manager kinds have no bundled schema (the shape check above holds them instead).
    custom = tuple(f"Couldn't find schema for kind {kind} with api version {api} "
                   for api, kind in (*CERT_MANAGER_SCHEMAS, *KEDA_CRDS, *SCRAPE_KINDS))
    other = [line for line in run.stdout.splitlines() if line.strip() and not any(c in line for c in custom)]
    assert other == [], run.stdout
    # The same run over the index directory fails: proof that the validator reads what it is given.
    beside = subprocess.run([str(validator), "--strict", "--quiet", "-k", f"{result.kubernetes_version}.0",
                             str(tmp_path / "manifests.index" / INDEX)], capture_output=True, text=True, timeout=120)
    assert beside.returncode != 0 and INDEX in beside.stdout + beside.stderr


# ---------------------------------------------------------------------------------------------
# checkov: one process over every stack's objects and the synthetic ones


def checkov_executable() -> str | None:
    """$IM_PLATFORM_CHECKOV if set (and only it), else venv-checks/ (what .ci/run installs), else checkov on PATH."""
    chosen = os.environ.get("IM_PLATFORM_CHECKOV")
    if chosen:
        assert os.access(chosen, os.X_OK), f"IM_PLATFORM_CHECKOV={chosen} is not an executable"
        return chosen
    for candidate in (str(ROOT / "venv-checks" / "bin" / "checkov"), shutil.which("checkov")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def read_skips() -> dict[str, str]:
    skips = yaml.safe_load(SKIPS_FILE.read_text(encoding="utf-8")) or {}
    assert isinstance(skips, dict), f"{SKIPS_FILE}: expected a map of CKV_K8S_NN: reason"
    return skips


def failed_checks(report: Any) -> list[dict[str, Any]]:
    """checkov prints one report per framework: a dict, a list of them, or a bare summary when nothing was found."""
    reports = report if isinstance(report, list) else [report]
    failed: list[dict[str, Any]] = []
    for r in reports:
        assert r.get("summary", r).get("parsing_errors", 0) == 0, f"checkov could not parse some files: {r}"
        failed += (r.get("results") or {}).get("failed_checks") or []
    return failed


@pytest.fixture(scope="session")
def checkov_failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str, str]]]:
    """(check id, file, resource) of every failed check, by top directory (a stack, or the synthetic objects)."""
    executable = checkov_executable()
    if executable is None:
        message = ("checkov is not installed: `python3 -m venv venv-checks && venv-checks/bin/pip install "
                   "-r requirements-checkov.txt` (its own venv: it pins packaging<24, pulumi needs >=26), "
                   "or point IM_PLATFORM_CHECKOV at a checkov executable")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("manifests")
    for stack in cluster_stacks():
        write(rendered(stack), root / stack, tmp_path_factory.mktemp("index") / stack)
    plan = synthetic_plan(bad_deployment())
    write(render(plan), root / SYNTHETIC, tmp_path_factory.mktemp("index") / SYNTHETIC)
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    # --skip-download: no policy metadata from the vendor's API (there is no network, and none is needed).
    result = subprocess.run([executable, "-d", str(root), "--framework", "kubernetes", "--output", "json", "--quiet",
                             "--compact", "--skip-download"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 1), f"checkov failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report:\n{result.stdout[:2000]}\n{result.stderr[-2000:]}")
    by_top: dict[str, list[tuple[str, str, str]]] = {}
    for check in failed_checks(report):
        path = check["file_path"].lstrip("/")
        by_top.setdefault(path.split("/", 1)[0], []).append((check["check_id"], path, check["resource"]))
    return by_top


# What the hardened synthetic Deployment passes and the careless one fails: proof that the run
# scanned the files and that failures are attributed to the right object.
HARDENING = {
    "CKV_K8S_8", "CKV_K8S_9",  # liveness, readiness probes
    "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13",  # CPU/memory requests and limits
    "CKV_K8S_14",  # image tag not latest
    "CKV_K8S_16",  # not privileged
    "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_37", "CKV_K8S_38", "CKV_K8S_40",
}


def test_checkov_sees_what_the_hardening_prevents(checkov_failures: dict[str, list[tuple[str, str, str]]]) -> None:
    by_file: dict[str, set[str]] = {}
    for check_id, path, _ in checkov_failures.get(SYNTHETIC, []):
        by_file.setdefault(path, set()).add(check_id)
    careless = by_file.get(f"{SYNTHETIC}/im/deployment-careless.yaml", set())
    gateway = by_file.get(f"{SYNTHETIC}/im/deployment-gateway.yaml", set())
    assert HARDENING <= careless, f"checkov missed on the careless Deployment: {sorted(HARDENING - careless)}"
    assert not HARDENING & gateway, f"the hardened Deployment fails {sorted(HARDENING & gateway)}"
    assert all(p.endswith(tuple(f"/{m.path}" for m in render(synthetic_plan(bad_deployment())).objects)) for p in by_file)


def test_stacks_fail_no_checkov_check_outside_the_skip_list(checkov_failures: dict[str, list[tuple[str, str, str]]]) -> None:
    skips = read_skips()
    unlisted = sorted(f"{check_id}  {path}  ({resource_})" for stack in cluster_stacks()
                      for check_id, path, resource_ in checkov_failures.get(stack, []) if check_id not in skips)
    assert not unlisted, ("checkov checks failed that tests/checkov-skips.yaml does not list; fix the object, or list "
                          "the check with the reason it does not apply:\n" + "\n".join(unlisted))


def test_skip_list_has_reasons_and_nothing_stale(checkov_failures: dict[str, list[tuple[str, str, str]]]) -> None:
    skips = read_skips()
    for check_id, reason in skips.items():
        assert CHECK_ID.match(str(check_id)), f"{check_id}: expected a checkov Kubernetes id such as CKV_K8S_43"
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason.strip(), f"{check_id}: one-line reason"
    failing = {check_id for stack in cluster_stacks() for check_id, _, _ in checkov_failures.get(stack, [])}
    stale = sorted(set(skips) - failing)
    assert not stale, f"skip-list entries that no stack fails any more; remove them from {SKIPS_FILE.name}: {stale}"
