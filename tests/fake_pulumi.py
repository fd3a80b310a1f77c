"""A fake `pulumi` executable for the failover Control tests: records each argv (one JSON line in
$FAKE_PULUMI_LOG) and answers from a JSON state file ($FAKE_PULUMI_STATE): config per stack,
outputs per stack, stacks whose `up` fails as a concurrent update, stacks that cannot be selected
(missing: not in the backend; denied: no access) and the version it reports."""

import json
import os
import sys


def main() -> int:
    argv = sys.argv[1:]
    with open(os.environ["FAKE_PULUMI_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    state_path = os.environ["FAKE_PULUMI_STATE"]
    with open(state_path, encoding="utf-8") as f:
        state = json.load(f)
    stack = argv[argv.index("--stack") + 1] if "--stack" in argv else None
    valued = {"--stack", "--message", "--exec-kind", "--page-size", "--page", "--event-log", "--client"}
    value = argv[argv.index("--") + 1] if "--" in argv else None
    head = argv[:argv.index("--")] if "--" in argv else argv
    words = [a for i, a in enumerate(head) if not a.startswith("-") and (i == 0 or head[i - 1] not in valued)]
    if argv[:1] == ["version"]:
        print(state.get("version", "v3.271.0"))
        return 0
    if words[:2] == ["stack", "select"]:
        if stack in state.get("missing", []):
            print(f"error: no stack named '{stack}' found", file=sys.stderr)
            return 255
        if stack in state.get("denied", []):
            print("error: [403] Forbidden: you are not a member of this organization", file=sys.stderr)
            return 255
        return 0
    if words[:2] == ["config", "get"]:
        value = state["config"].get(stack, {}).get(words[2])
        if value is None:
            print(f"error: configuration key '{words[2]}' not found for stack '{stack}'", file=sys.stderr)
            return 255
        print(json.dumps(value) if "--json" not in argv else json.dumps({"value": value, "secret": False}))
        return 0
    if words[:2] == ["config", "set"]:
        state["config"].setdefault(stack, {})[words[2]] = value
        with open(state_path, "w", encoding="utf-8") as f:
            json.dump(state, f)
        return 0
    if words[:1] == ["up"]:
        if stack in state.get("busy", []):
            print("error: [409] Conflict: Another update is currently in progress.", file=sys.stderr)
            return 255
        print(f"Updating ({stack})")
        print("Resources: 3 unchanged")
        return 0
    if words[:2] == ["stack", "history"]:
        print(json.dumps([{"version": 2, "kind": "update", "startTime": "2026-01-01T00:00:00.000Z", "message": "",
                           "environment": {}, "config": {}, "result": "succeeded",
                           "endTime": "2026-01-01T00:00:01.000Z", "resourceChanges": {}}]))
        return 0
    if words[:2] == ["stack", "export"]:
        print(json.dumps(state.get("deployments", {}).get(stack, {"version": 3, "deployment": {"resources": []}})))
        return 0
    if words[:2] == ["stack", "output"]:
        print(json.dumps(state["outputs"].get(stack, {})))
        return 0
    print(f"fake pulumi: unexpected {argv}", file=sys.stderr)
    return 3


sys.exit(main())
