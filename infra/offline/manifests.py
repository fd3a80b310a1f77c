"""`venv/bin/im-platform manifests --stack NAME [--config-file F] --out DIR`: every Kubernetes object of
the offline plan, one YAML file each, for review, diffs and the schema and checkov checks in tests.

Layout (deterministic: same plan, same bytes). DIR holds Kubernetes objects and nothing else, so
`kubeconform -strict DIR`, `kubectl apply --dry-run=server -R -f DIR` and `kubectl diff -R -f DIR`
read only objects (both walk every subdirectory, hidden ones included, and take every .yaml file:
the only place they do not look is outside DIR):

- `DIR/<namespace>/<kind>-<name>.yaml` for namespaced objects, `DIR/_cluster/<kind>-<name>.yaml`
  for cluster-scoped ones (`_` cannot start a namespace name, so the two never collide); `<kind>` is
  lowercase. Each file starts with a comment naming the URN it came from.

Beside it, in the index directory (`--index DIR2`, default the sibling `DIR.index/`):

- `helm/<namespace>/<release>.yaml` per Helm release: NOT a Kubernetes object but the release as
  declared (chart, version, repository, values). Helm renders the chart's objects at deploy time
  from a chart it downloads, so they cannot be known offline; the summary still shows a reviewer
  the part the program controls (a values or chart-version change).
- `manifests-index.yaml`: stack, Kubernetes version, every file written with its URN, and the
  Kubernetes resources not rendered with the reason. A later run with the same directories first
  removes the files the index lists, so a deleted object does not linger in a diff.

Objects are the resource inputs as the engine receives them (camelCase, the Kubernetes wire form):
apiVersion and kind from the type token, then metadata and the rest. Secret values stay the
plan's `"[secret]"` placeholder; a value unknown offline (`"[unknown]"`) makes the object
unrenderable, and the command fails naming it rather than writing a guess.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from infra.offline.plan import UNKNOWN, Plan

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
INDEX = "manifests-index.yaml"
CLUSTER_DIR = "_cluster"
HELM_DIR = "helm"  # inside the index directory
INDEX_SUFFIX = ".index"

# kubernetes:<group>/<version>:<Kind>; the core group is spelled `core` in tokens and omitted in apiVersion.
_TOKEN = re.compile(r"^kubernetes:(?P<group>[a-z0-9][a-z0-9.-]*)/(?P<version>v[0-9a-z]+):(?P<kind>[A-Z][A-Za-z0-9]*)$")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Pulumi's own packaging of many objects (charts, YAML, kustomize): components, not API objects.
_PULUMI_GROUPS = frozenset({"helm.sh", "yaml", "kustomize"})
# Inputs the SDK adds for the provider's own use; never part of the object the API server sees.
_HELM_INTERNAL = frozenset({"compat"})
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# Built-in kinds that live outside any namespace (everything else built in is namespaced).
CLUSTER_SCOPED = frozenset({
    ("core", "Namespace"), ("core", "Node"), ("core", "PersistentVolume"), ("core", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"), ("storage.k8s.io", "VolumeAttributesClass"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("networking.k8s.io", "IngressClass"), ("networking.k8s.io", "IPAddress"), ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"), ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("certificates.k8s.io", "CertificateSigningRequest"), ("certificates.k8s.io", "ClusterTrustBundle"),
    ("resource.k8s.io", "DeviceClass"), ("resource.k8s.io", "ResourceSlice"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
})
_BUILTIN_GROUP = re.compile(r"^(core|apps|batch|autoscaling|policy|[a-z0-9.-]*\.k8s\.io)$")


class ManifestError(Exception):
    """An object of the plan cannot be written faithfully (unknown values, name clash)."""


class ManifestUsageError(ManifestError):
    """The command was asked for something it cannot do (a traffic stack, the index inside the
    output, a folder it cannot use or write): a usage error, exit 2."""


@dataclass(frozen=True)
class Manifest:
    path: str  # relative to the output directory, POSIX separators
    urn: str
    type: str
    body: dict[str, Any]
    notes: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))


@dataclass
class Rendered:
    stack: str
    kubernetes_version: str | None
    objects: list[Manifest]
    helm_releases: list[Manifest]
    not_rendered: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Plan -> objects


def parse_token(type_: str) -> tuple[str, str, str] | None:
    """(group, version, kind) of a `kubernetes:<group>/<version>:<Kind>` token, or None."""
    match = _TOKEN.match(type_)
    return (match["group"], match["version"], match["kind"]) if match else None


def api_version_of(group: str, version: str) -> str:
    return version if group == "core" else f"{group}/{version}"


def unknown_paths(value: Any, path: str = "") -> Iterator[str]:
    """Where a value holds the plan's unknown marker (also inside interpolated strings)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from unknown_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from unknown_paths(item, f"{path}[{i}]")
    elif isinstance(value, str) and UNKNOWN in value:
        yield path or "(the whole value)"


def _sorted(value: Any) -> Any:
    """Mappings with sorted keys, recursively; list order is meaningful and kept."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _describe(resource: Mapping[str, Any]) -> str:
    return f"{resource['type']} {resource['name']!r} ({resource['urn']})"


def _refuse_unknowns(resource: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    paths = sorted(set(unknown_paths(body)))
    if paths:
        raise ManifestError(
            f"{_describe(resource)}: {', '.join(paths)} {'is' if len(paths) == 1 else 'are'} unknown offline "
            f"({UNKNOWN!r}); refusing to write a guess. Build the value from known inputs, or give the offline "
            "plan's mocks (infra/offline/mocks/) a realistic output for the resource it comes from.")


def _provider_namespaces(plan: Plan) -> dict[str, str]:
    """Explicit Kubernetes providers' default namespace, by provider URN."""
    return {r["urn"]: str(r["inputs"]["namespace"]) for r in plan.resources
            if r["type"] == "pulumi:providers:kubernetes" and isinstance(r["inputs"].get("namespace"), str)}


def _crd_scopes(plan: Plan) -> dict[tuple[str, str], str]:
    """(group, kind) -> Namespaced|Cluster for the CustomResourceDefinitions the plan itself declares."""
    scopes = {}
    for r in plan.resources:
        if parse_token(r["type"]) == ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"):
            spec = r["inputs"].get("spec") or {}
            names = spec.get("names") or {}
            if isinstance(spec.get("group"), str) and isinstance(names.get("kind"), str):
                scopes[(spec["group"], names["kind"])] = str(spec.get("scope", "Namespaced"))
    return scopes


def _namespace_dir(plan_info: tuple[dict[str, str], dict[tuple[str, str], str]], resource: Mapping[str, Any],
                   group: str, kind: str, metadata: dict[str, Any], notes: list[str]) -> str:
    providers, crds = plan_info
    namespace = metadata.get("namespace")
    if (group, kind) in CLUSTER_SCOPED or crds.get((group, kind)) == "Cluster":
        return CLUSTER_DIR
    if namespace:
        return str(namespace)
    if not _BUILTIN_GROUP.match(group) and (group, kind) not in crds:
        # A custom resource whose CRD is not in the plan (a chart installs it): without a namespace
        # it can only be cluster-scoped (a namespaced one would land in the provider's namespace).
        return CLUSTER_DIR
    provider = (resource.get("options") or {}).get("provider") or ""
    default = providers.get(provider.rsplit("::", 1)[0], "default")
    # What the API server ends up with: the provider puts an object without a namespace into its own
    # default namespace. Written out so a reader (and checkov) sees the real one.
    metadata["namespace"] = default
    notes.append(f"metadata.namespace: not set by the program; the provider's default namespace {default!r} applies")
    return default


def _object(resource: Mapping[str, Any], plan_info: tuple[dict[str, str], dict[tuple[str, str], str]]) -> Manifest:
    parsed = parse_token(resource["type"])
    assert parsed is not None
    group, version, kind = parsed
    inputs: dict[str, Any] = dict(resource["inputs"])
    api_version = api_version_of(group, version)
    for key, expected in (("apiVersion", api_version), ("kind", kind)):
        given = inputs.pop(key, expected)
        if given != expected:
            raise ManifestError(f"{_describe(resource)}: input {key} is {given!r} but the type token says {expected!r}")
    # SDK-internal inputs (`__defaults` and the like) are not fields of the object.
    inputs = {k: v for k, v in inputs.items() if not k.startswith("__")}
    _refuse_unknowns(resource, inputs)
    notes: list[str] = []
    metadata = dict(inputs.pop("metadata", None) or {})
    if not metadata.get("name"):
        # Pulumi autonames it `<logical name>-<random suffix>` at deploy time; the suffix is not known offline.
        metadata["name"] = resource["name"]
        notes.append(f"metadata.name: autonamed by Pulumi at deploy time ({resource['name']}-<random suffix>); "
                     "the logical name stands in")
    name = str(metadata["name"])
    directory = _namespace_dir(plan_info, resource, group, kind, metadata, notes)
    for part, what in ((name, "metadata.name"), (directory, "metadata.namespace")):
        if part != CLUSTER_DIR and not _NAME.match(part):
            raise ManifestError(f"{_describe(resource)}: {what} {part!r} is not a Kubernetes name "
                                "(lowercase letters, digits, '-' and '.')")
    body = {"apiVersion": api_version, "kind": kind, "metadata": _sorted(metadata)}
    body.update(_sorted(inputs))
    path = str(PurePosixPath(directory, f"{kind.lower()}-{name}.yaml"))
    return Manifest(path, resource["urn"], resource["type"], body, tuple(notes))


def _helm_summary(resource: Mapping[str, Any]) -> Manifest:
    inputs = {k: v for k, v in resource["inputs"].items() if k not in _HELM_INTERNAL and not k.startswith("__")}
    _refuse_unknowns(resource, inputs)
    name = str(inputs.get("name") or resource["name"])
    namespace = str(inputs.get("namespace") or "default")
    for part in (name, namespace):
        if not _NAME.match(part):
            raise ManifestError(f"{_describe(resource)}: {part!r} is not a Kubernetes name")
    path = str(PurePosixPath(HELM_DIR, namespace, f"{name}.yaml"))
    return Manifest(path, resource["urn"], resource["type"], _sorted(inputs))


def render(plan: Plan, kubernetes_version: str | None = None) -> Rendered:
    """Every Kubernetes object the plan declares, plus a summary per Helm release, sorted by path.

    Raises ManifestError when an object holds a value unknown offline, or two objects would share a file.
    """
    plan_info = (_provider_namespaces(plan), _crd_scopes(plan))
    objects: list[Manifest] = []
    helm: list[Manifest] = []
    skipped: list[dict[str, str]] = []
    for resource in plan.resources:
        parsed = parse_token(resource["type"])
        if parsed is None or not resource["custom"]:
            continue  # providers (pulumi:providers:kubernetes), components, other clouds' resources
        if resource["type"] == HELM_RELEASE:
            helm.append(_helm_summary(resource))
        elif parsed[0] in _PULUMI_GROUPS:
            skipped.append({"urn": resource["urn"], "reason": "Pulumi packaging of objects rendered at deploy time"})
        elif parsed[2].endswith("Patch"):
            skipped.append({"urn": resource["urn"],
                            "reason": "a server-side-apply patch of an object the program does not own: not a whole object"})
        else:
            objects.append(_object(resource, plan_info))
    for kind_of, items in (("object", objects), ("Helm release", helm)):
        seen: dict[str, str] = {}
        for m in items:
            if m.path in seen:
                raise ManifestError(f"two {kind_of}s would both be written to {m.path}: {seen[m.path]} and {m.urn}")
            seen[m.path] = m.urn
    return Rendered(plan.stack, kubernetes_version, sorted(objects, key=lambda m: m.path),
                    sorted(helm, key=lambda m: m.path), sorted(skipped, key=lambda s: s["urn"]))


# ---------------------------------------------------------------------------------------------
# YAML


class _Dumper(yaml.SafeDumper):
    """SafeDumper with our string style, without changing SafeDumper for everyone else."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Config files in ConfigMaps stay readable (and diffable line by line) as literal blocks.
    style = "|" if "\n" in value and not value.startswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(manifest: Manifest, *, helm: bool = False) -> str:
    header = [f"# {manifest.urn}"]
    if helm:
        header.append("# A Helm release as declared; not a Kubernetes object. Helm renders the chart's objects at")
        header.append("# deploy time, so they are not in this directory and not checked offline.")
    header += [f"# {note}" for note in manifest.notes]
    text = yaml.dump(manifest.body, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=4096)
    return "\n".join(header) + "\n" + text


def _index(rendered: Rendered) -> dict[str, Any]:
    return {
        "stack": rendered.stack,
        "kubernetesVersion": rendered.kubernetes_version,
        "objects": [{"file": m.path, "urn": m.urn} for m in rendered.objects],
        "helmReleases": [{"file": m.path, "urn": m.urn} for m in rendered.helm_releases],
        "notRendered": rendered.not_rendered,
    }


def index_dir_for(out: Path) -> Path:
    """The default index directory: `DIR.index`, beside DIR (never inside it)."""
    resolved = out.resolve()
    if resolved == resolved.parent:
        raise ManifestUsageError(f"{out} is a filesystem root: choose a directory for the objects")
    return resolved.parent / f"{resolved.name}{INDEX_SUFFIX}"


def _remove_listed(root: Path, files: list[Any]) -> None:
    """Remove the listed .yaml files under `root` and the directories they leave empty."""
    base = root.resolve()
    for entry in files:
        path = (root / str(entry.get("file", "") if isinstance(entry, Mapping) else "")).resolve()
        if base in path.parents and path.suffix == ".yaml":
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == base or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()


def _read_index(index: Path) -> Mapping[str, Any]:
    try:
        previous = yaml.safe_load(index.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ManifestUsageError(f"{index} is not valid YAML ({exc}); remove it and run again") from None
    return previous if isinstance(previous, Mapping) else {}


def _clear_previous(out: Path, index_dir: Path) -> None:
    """Remove what the previous run listed in its index; refuse a non-empty directory without one.

    An index left inside DIR by an earlier layout (`DIR/manifests-index.yaml`, `DIR/_helm/`) is
    honoured the same way, so upgrading needs no manual clean-up.
    """
    index = index_dir / INDEX
    legacy = out / INDEX
    if not index.is_file() and not legacy.is_file():
        for directory, what in ((out, "objects"), (index_dir, "index")):
            if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
                raise ManifestUsageError(f"{directory} (the {what} directory) is not empty and holds no {INDEX} from an "
                                    "earlier run; choose an empty or new directory (nothing was written)")
        return
    if index.is_file():
        previous = _read_index(index)
        _remove_listed(out, list(previous.get("objects") or []))
        _remove_listed(index_dir, list(previous.get("helmReleases") or []))
        index.unlink()
    if legacy.is_file():
        previous = _read_index(legacy)
        _remove_listed(out, list(previous.get("objects") or []) + list(previous.get("helmReleases") or []))
        legacy.unlink()


def check_dirs(out: Path, index_dir: Path | None) -> Path:
    """The index directory (default `DIR.index`), refused inside `out`; said before any planning."""
    index_dir = index_dir if index_dir is not None else index_dir_for(out)
    if out.resolve() == index_dir.resolve() or out.resolve() in index_dir.resolve().parents:
        raise ManifestUsageError(f"the index directory {index_dir} is inside {out}: tools that walk {out} would "
                                 "read it; choose a directory outside it")
    for directory in (out, index_dir):
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ManifestUsageError(f"cannot write to {directory}: {existing} is a file, not a directory")
    return index_dir


def write(rendered: Rendered, out: Path, index_dir: Path | None = None) -> list[Path]:
    """Write every object under `out`, the index and Helm summaries under `index_dir` (default
    `DIR.index`); returns the object files written, sorted."""
    index_dir = check_dirs(out, index_dir)
    _clear_previous(out, index_dir)
    out.mkdir(parents=True, exist_ok=True)
    index_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest, helm in [(m, False) for m in rendered.objects] + [(m, True) for m in rendered.helm_releases]:
        path = (index_dir if helm else out) / manifest.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_yaml(manifest, helm=helm), encoding="utf-8")
        if not helm:
            written.append(path)
    (index_dir / INDEX).write_text(
        f"# Written by `venv/bin/im-platform manifests`: the objects are in {out.resolve()}; the next run\n"
        "# with the same directories removes the files listed here first.\n"
        + yaml.safe_dump(_index(rendered), sort_keys=False), encoding="utf-8")
    return written


# ---------------------------------------------------------------------------------------------
# Stacks and the command


def kubernetes_version(stack: str | None, config_file: Path | None = None) -> str:
    """The stack's Kubernetes minor ("1.33") from its validated spec; raises ConfigError."""
    from infra.config.loader import load_spec
    from infra.config.stackfiles import searching_beside
    from infra.offline.plan import project_name, read_stack_config, stack_file, stack_name_from_file

    path = config_file or stack_file(str(stack))
    project = project_name()
    values, _ = read_stack_config(path, project)
    with searching_beside(config_file):
        spec = load_spec(values, project=project, stack=stack or stack_name_from_file(path) or "", env=os.environ)
    return spec.kubernetes_version


def refuse_traffic_stack(stack: str | None, config_file: Path | None) -> None:
    """A traffic stack has no cluster: said from its file, before planning."""
    from infra.config.stackfiles import resolve_stack
    from infra.offline.plan import project_name, read_stack_config

    name, path = resolve_stack(stack, config_file)
    if "im-platform:traffic" in read_stack_config(path, project_name())[0]:
        raise ManifestUsageError(f"{name} is a traffic stack: it declares DNS records and health checks, no "
                                 "cluster and no Kubernetes objects; name a cluster stack")


def render_stack(stack: str | None, config_file: Path | None = None) -> Rendered:
    """Plan one stack offline and render its Kubernetes objects; raises ConfigError or ManifestError."""
    from infra.offline.plan import plan_stack

    refuse_traffic_stack(stack, config_file)
    plan = plan_stack(stack, config_file)
    if not any(r["type"].startswith("kubernetes:") for r in plan.resources):
        # A traffic stack was refused above: this is a cluster with nothing on it (no tiers, no buffer).
        raise ManifestUsageError(f"{plan.stack} declares no Kubernetes objects (no im-platform:services or "
                                 "im-platform:capacityBuffer on its cluster)")
    return render(plan, kubernetes_version(plan.stack, config_file))


def cmd_manifests(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config_file = Path(args.config_file) if args.config_file else None
    label = args.stack or args.config_file
    out = Path(args.out)
    try:
        index_dir = check_dirs(out, Path(args.index) if args.index else None)
        refuse_traffic_stack(args.stack, config_file)
        print(f"Planning {label} offline (mock runtime, no cloud calls)...", file=sys.stderr, flush=True)
        rendered = render_stack(args.stack, config_file)
        write(rendered, out, index_dir)
    except ManifestUsageError as exc:
        print(f"manifests {label}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ManifestError as exc:
        print(f"manifests {label}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # a folder that cannot be made or written: the user's to choose another
        where = exc.filename or out
        print(f"manifests {label}: cannot write to {where}: {exc.strerror or exc}; choose a folder you can write",
              file=sys.stderr)
        return EXIT_USAGE
    helm = f", {len(rendered.helm_releases)} Helm release summaries" if rendered.helm_releases else ""
    print(f"manifests {rendered.stack}: wrote {len(rendered.objects)} Kubernetes objects to {out}; the index{helm} "
          f"to {index_dir} (Kubernetes {rendered.kubernetes_version}, {time.monotonic() - started:.1f}s)", file=sys.stderr)
    return EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("manifests", help="write every Kubernetes object of the offline plan as YAML")
    parser.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    parser.add_argument("--config-file", help="read this stack file instead (name taken from Pulumi.<name>.yaml)")
    parser.add_argument("--out", required=True,
                        help="directory for the objects, and nothing else (created; a previous run's files are replaced)")
    parser.add_argument("--index", help="directory for the index and the Helm release summaries, outside --out "
                                        "(default: DIR.index beside DIR)")
    parser.set_defaults(func=cmd_manifests)
