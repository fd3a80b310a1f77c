"""Both clusters of a DR pair solve DNS-01 for the shared public name, at once when the prod wave
deploys the pair in parallel or their renewals meet: each must be able to write its challenge
without removing the other's.

The rules met here, each from its source:

- cert-manager's Route 53 solver, `pkg/issuer/acme/dns/route53/route53.go` at the pinned chart's tag
  (v1.19.2; since v1.8.0, commit ff6b6274 "use multivalue records instead of simple records to allow
  having multiple txt records for a domain"): `Present` UPSERTs, and `CleanUp` DELETEs, a TXT record
  set of one value built by `newTXTRecordSet` with `MultiValueAnswer: true` and
  `SetIdentifier: <the value>`. A record set is identified by name, type and set identifier, so
  two challenges of one name are two record sets: neither UPSERT replaces the other, and each
  DELETE removes only its own.
- Route 53: a multivalue answer record may not share its name and type with a record of another
  routing policy (a simple record), and answers with up to eight of them.
- RFC 8555 section 8.4: the ACME server queries the TXT records of `_acme-challenge.<name>` and
  checks that one of them holds the expected digest, so a second value beside it does no harm.

The solver's record shape is emulated from that source (no cert-manager code here); the program's
part is what lets it work: each cluster's own ACME account and challenge values, and each
cluster's DNS-01 identity allowed to write TXT records of the shared name.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.k8s import tls as tls_parts
from tests.plans import stack_plan

# The first release whose solver writes one multivalue record set per challenge value.
MULTIVALUE_SINCE = (1, 8, 0)
PAIR = ("prod-aws", "prod-azure")


class RefusedChange(AssertionError):
    """Route 53 would answer InvalidChangeBatch."""


class Zone:
    """TXT record sets keyed by (name, type, set identifier), as Route 53 keys them."""

    def __init__(self) -> None:
        self.sets: dict[tuple[str, str, str], dict[str, Any]] = {}

    def change(self, action: str, record: dict[str, Any]) -> None:
        key = (record["Name"], record["Type"], record.get("SetIdentifier", ""))
        after = dict(self.sets)
        if action == "UPSERT":
            after[key] = record
        elif key in after and after[key] == record:
            del after[key]
        else:
            raise RefusedChange(f"Tried to delete resource record set {key} but it was not found")
        for name, type_ in {(n, t) for n, t, _ in after}:
            group = [r for (n, t, _), r in after.items() if (n, t) == (name, type_)]
            if len({bool(r.get("MultiValueAnswer")) for r in group}) > 1:
                raise RefusedChange(f"{name} {type_}: a multivalue record beside a simple one")
            if not group[0].get("MultiValueAnswer") and len(group) > 1:
                raise RefusedChange(f"{name} {type_}: two simple records")
        self.sets = after

    def txt(self, name: str) -> list[str]:
        return sorted(v["Value"] for (n, t, _), r in self.sets.items() if (n, t) == (name, "TXT")
                      for v in r["ResourceRecords"])


def solver_record(fqdn: str, value: str) -> dict[str, Any]:
    """cert-manager's newTXTRecordSet (route53.go, v1.19.2): TTL 10, one quoted value, multivalue,
    the value as set identifier."""
    quoted = f'"{value}"'
    return {"Name": fqdn, "Type": "TXT", "TTL": 10, "MultiValueAnswer": True, "SetIdentifier": quoted,
            "ResourceRecords": [{"Value": quoted}]}


def acme_validates(zone: Zone, fqdn: str, value: str) -> bool:
    """RFC 8555 section 8.4: one of the TXT records holds the expected value."""
    return f'"{value}"' in zone.txt(fqdn)


def test_the_pinned_cert_manager_writes_one_record_set_per_challenge() -> None:
    found = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tls_parts.CERT_MANAGER_CHART_VERSION)
    assert found, tls_parts.CERT_MANAGER_CHART_VERSION
    assert tuple(int(g) for g in found.groups()) >= MULTIVALUE_SINCE


def test_both_clusters_of_the_pair_solve_the_shared_name_at_once_without_removing_each_other() -> None:
    plans = {stack: stack_plan(stack) for stack in PAIR}
    shared: set[str] = set.intersection(*[set(next(iter(p.of_type("kubernetes:cert-manager.io/v1:Certificate")))
                                               ["inputs"]["spec"]["dnsNames"]) for p in plans.values()])
    assert shared == {"chat.example.com"}
    fqdn = "_acme-challenge.chat.example.com"
    for stack, plan in plans.items():
        # Each cluster's own ACME account (its key generated in that cluster): distinct challenges.
        issuer = next(iter(plan.of_type("kubernetes:cert-manager.io/v1:ClusterIssuer")))["inputs"]["spec"]["acme"]
        assert issuer["privateKeySecretRef"] == {"name": tls_parts.ACCOUNT_KEY_SECRET}
        # Its DNS-01 identity may write TXT records of the shared name.
        policies = [json.loads(r["inputs"]["policy"]) for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
                    if r["name"].endswith("-tls-dns")]
        allowed = [s["Condition"]["ForAllValues:StringEquals"] for p in policies for s in p["Statement"]
                   if s["Action"] == "route53:ChangeResourceRecordSets"]
        assert any(fqdn in c["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
                   and c["route53:ChangeResourceRecordSetsRecordTypes"] == ["TXT"] for c in allowed), stack

    zone = Zone()
    a, b = "digest-of-prod-aws-challenge", "digest-of-prod-azure-challenge"
    zone.change("UPSERT", solver_record(fqdn, a))
    zone.change("UPSERT", solver_record(fqdn, b))  # the other cluster, before the first is validated
    assert acme_validates(zone, fqdn, a) and acme_validates(zone, fqdn, b)
    zone.change("DELETE", solver_record(fqdn, a))  # the first cleans up, the second is still pending
    assert acme_validates(zone, fqdn, b) and not acme_validates(zone, fqdn, a)
    zone.change("DELETE", solver_record(fqdn, b))
    assert zone.txt(fqdn) == []


def test_a_simple_record_per_name_would_lose_a_challenge() -> None:
    """What the pin guards against: one simple record set per name (cert-manager before v1.8.0)."""
    zone = Zone()
    fqdn = "_acme-challenge.chat.example.com"

    def simple(value: str) -> dict[str, Any]:
        return {"Name": fqdn, "Type": "TXT", "TTL": 10, "ResourceRecords": [{"Value": f'"{value}"'}]}

    zone.change("UPSERT", simple("a"))
    zone.change("UPSERT", simple("b"))
    assert not acme_validates(zone, fqdn, "a")
    with pytest.raises(RefusedChange):
        zone.change("DELETE", simple("a"))
