"""`venv/bin/im-platform check --stack NAME [--config-file F] [--json]`: the policy guardrails offline.

Plans the stack under the mock runtime (the very program `pulumi up` runs), then evaluates every
rule of `infra.policy.rules` (the rules the policy pack in `policy/` runs) over the planned resources.
Exit status: 0 clean, 1 violations (one line each: `rule-name: urn: message`), 2 configuration error.

`venv/bin/im-platform stacks [--github-output]` lists the stacks in stacks/ with their cloud,
environment and deployment wave; the CI workflows derive their matrices from it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config import yamlio
from infra.config.errors import ConfigError
from infra.policy.rules import RULES, Context, Resource, Violation, evaluate

ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"
EXIT_OK, EXIT_VIOLATIONS = 0, 1

# Stack-file rule (check only): the engine hands policy packs decrypted configuration, so only the
# file itself shows whether a secret was committed in plain text.
PLAINTEXT_SECRETS = "no-plaintext-secrets"
SECRET_KEY = re.compile(r"(secret|password|passwd|token|credential|private.?key|access.?key|client.?key|"
                        r"connection.?string|sas)", re.IGNORECASE)
# A key that names a secret held elsewhere (a Kubernetes Secret's name: `im-platform:tls.secretName`,
# docs/tls.md; a reference) holds no secret itself.
NAMES_A_SECRET = re.compile(r"(Name|Ref)$")

STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Deployment order on merge: every environment that is neither staging nor prod goes first.
# Traffic stacks deploy last: after every cluster stack, so both gateways of their pair exist.
WAVES = ("dev", "staging", "prod", "traffic")
CLUSTER_WAVES = WAVES[:-1]
# The cloud a traffic stack's DNS provider lives on: its deploy job needs that cloud's credentials.
TRAFFIC_PROVIDER_CLOUD = {"route53": "aws"}
# Where a stack's Pulumi jobs run. A stack whose program declares Kubernetes objects needs its
# cluster's API, which every example stack limits to listed ranges or keeps private: its preview,
# deploy and drift jobs run on its own self-hosted runner, one that can reach that API (docs/ci.md).
# A stack with nothing on a cluster (the cloud layer alone) talks only to cloud APIs: hosted.
SELF_HOSTED_LABELS = ("self-hosted", "im-platform")
HOSTED_RUNNER = "ubuntu-24.04"
# The cloud a resource type belongs to, by its package (the type token's first part; a provider's
# own type is `pulumi:providers:<package>`): what a CI job must sign in to for the stack.
CLOUD_PACKAGES = {"aws": "aws", "gcp": "gcp", "azure-native": "azure"}
# Clouds whose clusters get Kubernetes add-ons from this program even without services
# (components.k8s.cloud_addons.CLOUD_ADDON_MODULES; tests/test_workflows.py holds the two equal).
CLOUDS_WITH_ADDONS = ("aws",)


# ---------------------------------------------------------------------------------------------
# check


def stack_file_violations(path: Path) -> list[Violation]:
    """Configuration values that look like secrets but are not `secure:` (encrypted) values."""
    try:
        doc = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []  # the plan reports an unreadable file as a configuration error
    config = doc.get("config") if isinstance(doc, Mapping) else None
    found: list[Violation] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if set(value) == {"secure"}:
                return
            for k, v in value.items():
                walk(f"{key}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{key}[{i}]", v)
        elif (value not in (None, "") and SECRET_KEY.search(leaf := key.rsplit(".", 1)[-1].split(":")[-1])
              and not NAMES_A_SECRET.search(leaf)):
            found.append(Violation(PLAINTEXT_SECRETS, f"{key} holds a plain-text value; store it with "
                                   f"`pulumi config set --secret {key.split('.')[0]} ...` (or use OIDC, no key at all)",
                                   urn=str(path)))

    for key, value in (config or {}).items():
        walk(str(key), value)
    return found


@dataclass
class CheckResult:
    stack: str
    resources: int
    violations: list[Violation]
    warnings: list[str] = field(default_factory=list)  # the plan's (a valid but transitional state)
    not_judged: list[tuple[str, str]] = field(default_factory=list)  # (rule, why): a price it needs is missing


def check_stack(stack: str | None, config_file: Path | None) -> CheckResult:
    """Plan the stack offline and evaluate every rule; raises ConfigError on a bad configuration."""
    from infra.config.loader import load_spec
    from infra.config.stackfiles import searching_beside
    from infra.cost import rightsize
    from infra.offline.plan import plan_stack, project_name, read_stack_config, stack_file, stack_name_from_file
    from infra.traffic.config import is_traffic, load_traffic

    plan = plan_stack(stack, config_file)
    path = config_file or stack_file(plan.stack)
    project = project_name()
    values, _ = read_stack_config(path, project)
    name = plan.stack or stack_name_from_file(path) or ""
    with searching_beside(config_file):
        if is_traffic(values):
            # No cluster: the rules run over its DNS resources with the pair's environment.
            traffic = load_traffic(values, project=project, stack=name)
            context = Context(stack=name, environment=traffic.environment)
        else:
            spec = load_spec(values, project=project, stack=name)
            context = Context.from_spec(spec)
            # Pools wider than their tiers can ever request: capacity the guardrail and `max` count for
            # nothing (an existing cluster's pools have no maxNodes of the program's).
            plan.warnings.extend(rightsize.warnings(name, [(p.name, p.vcpu, p.memory_gib, p.max_nodes)
                                                           for p in spec.node_pools if p.managed], plan.resources))
    resources = [Resource.from_plan(r) for r in plan.resources]
    not_judged: list[tuple[str, str]] = []
    violations = evaluate(resources, context, not_judged=not_judged) + stack_file_violations(path)
    return CheckResult(plan.stack, len(resources), violations, list(plan.warnings), not_judged)


# A tier's replicas.max that cannot run on its pool at maxNodes: a rule of RULES (the pack runs it too).
TIER_FITS_POOL = "tier-fits-pool"


def cmd_check(args: argparse.Namespace) -> int:
    result = check_stack(args.stack, Path(args.config_file) if args.config_file else None)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for rule, why in result.not_judged:
        print(f"warning: rule {rule} not judged: {why}", file=sys.stderr)
    if args.json:
        json.dump({"stack": result.stack, "resources": result.resources,
                   "rules": [r.name for r in RULES] + [PLAINTEXT_SECRETS],
                   "violations": [{"rule": v.rule, "urn": v.urn, "name": v.name, "message": v.message}
                                  for v in result.violations],
                   "notJudged": [{"rule": rule, "reason": why} for rule, why in result.not_judged]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for v in result.violations:
            print(v.render(result.stack))
        rules = len(RULES) + 1
        unjudged = f", {len(result.not_judged)} not judged ({', '.join(r for r, _ in result.not_judged)})" if result.not_judged else ""
        if result.violations:
            broken = sorted({v.rule for v in result.violations})
            print(f"check {result.stack}: {len(result.violations)} violation(s) of {', '.join(broken)} "
                  f"({rules} rules over {result.resources} resources{unjudged})")
        else:
            print(f"check {result.stack}: {rules - len(result.not_judged)} rules passed over {result.resources} resources{unjudged}")
    return EXIT_VIOLATIONS if result.violations else EXIT_OK


# ---------------------------------------------------------------------------------------------
# stacks (the CI matrix)


def declares_kubernetes_objects(config: Mapping[str, Any], cloud: str) -> bool:
    """Whether the program puts anything on the stack's cluster (components.k8s.needed), read from
    the raw file: a cluster, and services, a capacity buffer or a cloud that needs add-ons."""
    if config.get("im-platform:cluster") is None:
        return False
    return bool(cloud in CLOUDS_WITH_ADDONS or config.get("im-platform:services")
                or config.get("im-platform:capacityBuffer"))


def plan_clouds(resources: Sequence[Mapping[str, Any]]) -> list[str]:
    """The clouds whose APIs a stack's plan declares resources on, sorted: a GKE or AKS stack with
    ACME TLS declares AWS IAM resources too, so its jobs sign in to both."""
    found = set()
    for resource in resources:
        type_ = str(resource["type"])
        package = type_.removeprefix("pulumi:providers:").split(":", 1)[0] if type_.startswith("pulumi:providers:") \
            else type_.split(":", 1)[0]
        if package in CLOUD_PACKAGES:
            found.add(CLOUD_PACKAGES[package])
    return sorted(found)


def stack_clouds(path: Path) -> list[str]:
    """The clouds of the stack file's offline plan (the very program `pulumi up` runs)."""
    from infra.offline.plan import plan_stack

    return plan_clouds(plan_stack(config_file=path).resources)


def runner_labels(stack: str, kubernetes: bool) -> list[str]:
    """The `runs-on` labels of the stack's Pulumi jobs: its own runner when they reach its cluster."""
    return [*SELF_HOSTED_LABELS, stack] if kubernetes else [HOSTED_RUNNER]


def list_stacks(directory: Path = STACKS_DIR, *, with_clouds: bool = False) -> list[dict[str, Any]]:
    """Every stacks/Pulumi.<name>.yaml with its cloud, environment, wave (dev, staging, prod) and
    the runner labels of its Pulumi jobs; `with_clouds`: also `clouds`, the clouds its offline plan
    declares resources on (what its CI jobs sign in to), which plans every stack.

    Without `with_clouds`, reads only the keys it needs, with PyYAML alone; `check` and `plan`
    validate the whole file in the jobs that follow.
    """
    stacks = []
    for path in sorted(directory.glob("Pulumi.*.yaml")):
        name = path.name[len("Pulumi."):-len(".yaml")]
        # The name becomes job names, artifact names and concurrency groups in CI.
        if not STACK_NAME.match(name):
            raise ConfigError(str(path), name, "expected a stack name of letters, digits, '-', '_' or '.'")
        doc = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
        config = (doc.get("config") if isinstance(doc, Mapping) else None) or {}
        traffic = config.get("im-platform:traffic")
        if isinstance(traffic, Mapping):
            stacks.append(_traffic_entry(name, path, traffic, directory))
            continue
        cloud = config.get("im-platform:cloud", config.get("cloud"))
        environment = config.get("im-platform:environment", config.get("environment"))
        if not isinstance(cloud, str) or not isinstance(environment, str):
            raise ConfigError(f"{path}: im-platform:cloud / im-platform:environment", None,
                              "both are required to place the stack in the CI matrix")
        wave = environment if environment in CLUSTER_WAVES else "dev"
        stacks.append({"stack": name, "cloud": cloud, "environment": environment, "wave": wave,
                       "runner": runner_labels(name, declares_kubernetes_objects(config, cloud))})
    if with_clouds:
        for entry in stacks:
            entry["clouds"] = stack_clouds(directory / f"Pulumi.{entry['stack']}.yaml")
    return stacks


def _traffic_entry(name: str, path: Path, traffic: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """A traffic stack: the last wave, its provider's cloud, its pair's environment (for the
    GitHub environment that gates it)."""
    provider = traffic.get("provider")
    if provider not in TRAFFIC_PROVIDER_CLOUD:
        raise ConfigError(f"{path}: im-platform:traffic.provider", provider,
                          f"expected one of {', '.join(TRAFFIC_PROVIDER_CLOUD)} to place the stack in the CI matrix")
    environment = None
    pair = traffic.get("stacks")
    for other in pair if isinstance(pair, list) else []:
        other_path = directory / f"Pulumi.{other}.yaml"
        if other_path.is_file():
            doc = yamlio.safe_load(other_path.read_text(encoding="utf-8")) or {}
            config = (doc.get("config") if isinstance(doc, Mapping) else None) or {}
            environment = config.get("im-platform:environment")
            break
    if not isinstance(environment, str):
        raise ConfigError(f"{path}: im-platform:traffic.stacks", pair,
                          "expected stack files in the same folder with im-platform:environment (the pair)")
    return {"stack": name, "cloud": TRAFFIC_PROVIDER_CLOUD[provider], "environment": environment,
            "wave": "traffic", "kind": "traffic",
            # DNS and health checks only: cloud APIs, no cluster to reach.
            "runner": runner_labels(name, False)}


def github_outputs(stacks: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """`key=value` lines for $GITHUB_OUTPUT: every stack, and the stacks of each wave."""
    compact = {"separators": (",", ":")}
    out = {"all": json.dumps(list(stacks), **compact)}  # type: ignore[arg-type]
    for wave in WAVES:
        out[wave] = json.dumps([s for s in stacks if s["wave"] == wave], **compact)  # type: ignore[arg-type]
    return out


def render_stacks(stacks: Sequence[Mapping[str, Any]]) -> str:
    """The stacks as a table for people: one line each, columns aligned."""
    header = ("stack", "cloud", "environment", "wave", "runner")
    rows = [header] + [(str(s["stack"]), str(s["cloud"]), str(s["environment"]), str(s["wave"]),
                        ", ".join(s["runner"])) for s in stacks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in rows)


def cmd_stacks(args: argparse.Namespace) -> int:
    stacks = list_stacks(with_clouds=args.github_output or args.json)
    if args.github_output:
        for key, value in github_outputs(stacks).items():
            print(f"{key}={value}")
    elif args.json:
        json.dump(stacks, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_stacks(stacks) if stacks else "no stacks in stacks/")
    return EXIT_OK


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="evaluate the policy guardrails over the offline plan")
    check.add_argument("--stack", help="stack name: reads stacks/Pulumi.<NAME>.yaml")
    check.add_argument("--config-file", help="read this stack file instead (name taken from Pulumi.<name>.yaml)")
    check.add_argument("--json", action="store_true", help="violations as one JSON document on stdout")
    check.set_defaults(func=cmd_check)
    stacks = subparsers.add_parser("stacks", help="list stacks/ with cloud, environment and deployment wave")
    formats = stacks.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="one JSON document on stdout: a list of stacks")
    formats.add_argument("--github-output", action="store_true",
                         help="key=value lines for $GITHUB_OUTPUT (each value a JSON list of stacks)")
    stacks.set_defaults(func=cmd_stacks)
