"""The traffic switch against Route 53's rule for failover records, through the real plans.

Route 53 keeps, for one name and type, at most one PRIMARY and one SECONDARY failover record, and no
record of another routing policy beside them: the console refuses a second one ("RRset for same
type with Primary (or Sec) exists", boto/boto3#1347), and the Developer Guide's "Failover routing"
describes exactly one primary and one secondary record per name. A `pulumi up` of the traffic stack
changes each record with its own ChangeResourceRecordSets call (the provider's update of one
resource), and Pulumi runs independent updates in any order. So every order of those calls must
leave the zone in a state Route 53 accepts, and the last one must answer with the new target.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.test_traffic_pairs import RECORD, of_type, pairs_dir, planned, shared_pair  # noqa: F401

Key = tuple[str, str, str]  # name, type, set identifier: what identifies a record set in a zone


class RefusedChange(AssertionError):
    """Route 53 would answer InvalidChangeBatch."""


class FakeZone:
    """Record sets keyed as Route 53 keys them; each change batch is checked as Route 53 checks it."""

    def __init__(self) -> None:
        self.sets: dict[Key, dict[str, Any]] = {}

    @staticmethod
    def key(inputs: dict[str, Any]) -> Key:
        return (inputs["name"], inputs["type"], inputs.get("setIdentifier", ""))

    def change(self, action: str, inputs: dict[str, Any]) -> None:
        key = self.key(inputs)
        after = dict(self.sets)
        if action == "CREATE":
            if key in after:
                raise RefusedChange(f"Tried to create resource record set {key} but it already exists")
            after[key] = inputs
        elif action == "UPSERT":
            after[key] = inputs
        else:
            if key not in after:
                raise RefusedChange(f"Tried to delete resource record set {key} but it was not found")
            del after[key]
        self._check(after)
        self.sets = after

    @staticmethod
    def _check(sets: dict[Key, dict[str, Any]]) -> None:
        by_name: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (name, type_, _), inputs in sets.items():
            by_name.setdefault((name, type_), []).append(inputs)
        for (name, type_), group in by_name.items():
            roles = [r["failoverRoutingPolicies"][0]["type"] for r in group if r.get("failoverRoutingPolicies")]
            if roles and len(roles) != len(group):
                raise RefusedChange(f"{name} {type_}: a failover record beside a record of another routing policy")
            for role in ("PRIMARY", "SECONDARY"):
                if roles.count(role) > 1:
                    raise RefusedChange(f"RRset for {name} {type_} with {role} exists: a second {role} failover record")

    def answer(self, name: str) -> str:
        """What a resolver gets for `name` while every health check passes: the PRIMARY's value."""
        primary = [r for (n, _, _), r in self.sets.items()
                   if n == name and r.get("failoverRoutingPolicies", [{}])[0].get("type") == "PRIMARY"]
        assert len(primary) == 1, self.sets
        return str(primary[0]["records"][0])


def calls(before: dict[str, Any] | None, after: dict[str, Any] | None, delete_first: bool) -> list[tuple[str, dict[str, Any]]]:
    """The ChangeResourceRecordSets calls the AWS provider makes for one record's create, update or
    replacement (a new set identifier cannot be updated in place: a replacement, created before the
    old one is deleted unless the resource asks for deleteBeforeReplace)."""
    if before is None:
        return [("CREATE", after)] if after else []
    if after is None:
        return [("DELETE", before)]
    if FakeZone.key(before) == FakeZone.key(after):
        return [] if before == after else [("UPSERT", after)]
    replace = [("DELETE", before), ("CREATE", after)]
    return replace if delete_first else replace[::-1]


def switch(before: dict[str, Any], after: dict[str, Any]) -> list[list[tuple[str, dict[str, Any]]]]:
    """Per record resource (by URN) of the two plans, the calls that take it from one to the other."""
    old = {r["urn"]: r for r in of_type(before, RECORD)}
    new = {r["urn"]: r for r in of_type(after, RECORD)}
    steps = []
    for urn in sorted(old.keys() | new.keys()):
        delete_first = bool((new.get(urn) or old[urn])["options"]["deleteBeforeReplace"])
        found = calls(old[urn]["inputs"] if urn in old else None, new[urn]["inputs"] if urn in new else None,
                      delete_first)
        if found:
            steps.append(found)
    return steps


def zone_of(plan: dict[str, Any]) -> FakeZone:
    zone = FakeZone()
    for record in of_type(plan, RECORD):
        zone.change("CREATE", record["inputs"])
    return zone


def test_every_order_of_a_switch_leaves_route53_a_valid_zone_and_ends_at_the_target(pairs_dir: Path) -> None:  # noqa: F811
    path, a, b = shared_pair(pairs_dir, "aws", "azure")
    before = planned(path)
    switched = path.with_name(f"switched-{path.name}")
    switched.write_text(path.read_text().replace(f"active: {a}", f"active: {b}"))
    after = planned(switched, "--stack", path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
    public = before["outputs"]["traffic"]["name"]
    assert zone_of(before).answer(public) == f"{a}.{public}"

    there, back = switch(before, after), switch(after, before)
    assert there and back, "switching changes the failover records"
    for steps, start, target in ((there, before, b), (back, after, a)):
        for order in itertools.permutations(steps):
            zone = zone_of(start)
            for resource in order:
                for action, inputs in resource:
                    zone.change(action, inputs)  # raises on a state Route 53 refuses
            assert zone.answer(public) == f"{target}.{public}"


def test_the_fake_zone_refuses_what_route53_refuses() -> None:
    """Swapping the roles of two records one call at a time passes through two PRIMARYs."""
    zone = FakeZone()
    record = {"name": "chat.example.com", "type": "CNAME", "records": ["a.chat.example.com"]}
    zone.change("CREATE", {**record, "setIdentifier": "a", "failoverRoutingPolicies": [{"type": "PRIMARY"}]})
    zone.change("CREATE", {**record, "setIdentifier": "b", "failoverRoutingPolicies": [{"type": "SECONDARY"}]})
    with pytest.raises(RefusedChange, match="second PRIMARY"):
        zone.change("UPSERT", {**record, "setIdentifier": "b", "failoverRoutingPolicies": [{"type": "PRIMARY"}]})
    with pytest.raises(RefusedChange, match="another routing policy"):
        zone.change("CREATE", {**record, "setIdentifier": ""})
