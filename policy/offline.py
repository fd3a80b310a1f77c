"""Run this pack's analyzer over an offline plan, without the Pulumi CLI:

    venv/bin/im-platform plan --stack prod-aws --json > plan.json          # main environment
    policy/venv/bin/python -m policy.offline --plan plan.json --stack-file stacks/Pulumi.prod-aws.yaml

It drives pulumi-policy's own analyzer service (the object the CLI talks to over gRPC) with the
requests the engine would send: properties as a protobuf Struct (so numbers arrive as doubles),
unknowns as the engine's sentinels, options as AnalyzerResourceOptions. Prints the violations as
JSON, one {"rule", "urn", "message"} per line of the CLI's report. tests/test_policy.py uses it to
prove the pack and `venv/bin/im-platform check` agree on every rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import yaml  # noqa: E402  (pulumi depends on PyYAML)
from google.protobuf import json_format, struct_pb2  # noqa: E402
from pulumi.runtime import proto  # noqa: E402
from pulumi_policy import EnforcementLevel  # noqa: E402
from pulumi_policy.policy import _PolicyAnalyzerServicer  # noqa: E402

from infra.config.loader import load_spec  # noqa: E402
from infra.cost.model import PoolInput  # noqa: E402
from infra.policy.rules import UNKNOWN, Context  # noqa: E402
from infra.traffic.config import is_traffic, load_traffic  # noqa: E402
from policy.pack import PACK_NAME, policies  # noqa: E402

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def wire(value: Any) -> Any:
    """Plan JSON back to what the engine marshals: unknowns as sentinels, secrets wrapped."""
    if value == UNKNOWN:
        return _UNKNOWN_STRING
    if value == "[secret]":
        return {_SIG: _SECRET_SIG, "value": "[secret]"}
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(wire(props), message)
    return message


def options(record: dict[str, Any]) -> Any:
    opts = record.get("options") or {}
    return proto.AnalyzerResourceOptions(protect=bool(opts.get("protect")),
                                         ignoreChanges=list(opts.get("ignoreChanges") or []),
                                         parent=record.get("parent") or "")


def analyze(plan: dict[str, Any], context: Context) -> list[dict[str, Any]]:
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", policies(lambda: context), EnforcementLevel.MANDATORY)
    diagnostics = []
    records = plan["resources"]
    for r in records:
        request = proto.AnalyzeRequest(type=r["type"], urn=r["urn"], name=r["name"],
                                       properties=struct(r.get("inputs") or {}), options=options(r))
        for d in servicer.Analyze(request, None).diagnostics:
            diagnostics.append((d, r["urn"]))
    stack = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r["type"], urn=r["urn"], name=r["name"], properties=struct(r.get("inputs") or {}),
                               options=options(r), parent=r.get("parent") or "")
        for r in records
    ])
    for d in servicer.AnalyzeStack(stack, None).diagnostics:
        diagnostics.append((d, d.urn or None))
    out = []
    for d, urn in diagnostics:
        if d.enforcementLevel != proto.MANDATORY:
            raise RuntimeError(f"{d.policyName}: not evaluated: {d.message}")
        # The SDK prefixes the policy's description to the message it was given.
        message = d.message.split("\n", 1)[1] if "\n" in d.message else ""
        out.append({"rule": d.policyName, "urn": urn, "message": message})
    return out


def context_from_stack_file(path: Path, stack: str) -> Context:
    """The same spec the program builds, from the stack file's config (what PULUMI_CONFIG holds)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = {}
    for key, value in (doc.get("config") or {}).items():
        full = key if ":" in key else f"im-platform:{key}"
        if isinstance(value, bool):
            value = "true" if value else "false"
        config[full] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if is_traffic(config):  # a traffic stack: no cluster, the pair's environment
        return Context(stack=stack, environment=load_traffic(config, project="im-platform", stack=stack).environment)
    return Context.from_spec(load_spec(config, project="im-platform", stack=stack))


def context_from_json(data: dict[str, Any]) -> Context:
    """A Context from JSON; the cost guardrail's fields are optional (no limit when absent)."""
    limit = data.get("maxMonthlyCost")
    return Context(stack=data["stack"], environment=data["environment"],
                   max_nodes_per_pool=data["maxNodesPerPool"], max_nodes_per_cluster=data["maxNodesPerCluster"],
                   max_monthly_cost=Decimal(limit) if limit is not None else None,
                   cloud=data.get("cloud", ""), region=data.get("region", ""),
                   cost_pools=tuple(PoolInput(p["name"], tuple(p["instanceTypes"]), p["spot"], p["minNodes"],
                                              p["maxNodes"]) for p in data.get("costPools") or ()),
                   cost_catalog=data.get("costCatalog"), tls_self=tuple(data.get("tlsSelf") or ()),
                   pool_shapes=tuple((p["name"], p["vcpu"], p["memoryGiB"], p["maxNodes"])
                                     for p in data.get("poolShapes") or ()),
                   dr_standby=bool(data.get("drStandby")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy.offline", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", help="plan JSON (venv/bin/im-platform plan --json); default: stdin")
    parser.add_argument("--stack-file", help="the stack file the plan was made from")
    parser.add_argument("--batch", action="store_true",
                        help='stdin: [{"name", "plan", "context": {stack, environment, maxNodesPerPool, '
                             'maxNodesPerCluster, ...}}]; stdout: {"policies": [...], "results": {name: [...]}}')
    args = parser.parse_args(argv)
    if args.batch:
        items = json.load(sys.stdin)
        out = {
            "policies": [{"name": p.name, "kind": type(p).__name__} for p in policies(lambda: None)],  # type: ignore[arg-type,return-value]
            "results": {item["name"]: analyze(item["plan"], context_from_json(item["context"])) for item in items},
        }
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not args.stack_file:
        parser.error("--stack-file is required (or --batch)")
    plan = json.loads(Path(args.plan).read_text() if args.plan else sys.stdin.read())
    context = context_from_stack_file(Path(args.stack_file), plan["stack"])
    json.dump(analyze(plan, context), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
