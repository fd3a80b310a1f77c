"""Route 53: per-stack endpoint records, HTTPS health checks and PRIMARY/SECONDARY failover records.

Route 53's health checkers fail over on their own (no deploy): when the PRIMARY's check fails
`failureThreshold` times in a row, Route 53 answers with the SECONDARY. Both failover records are
CNAMEs (Route 53 refuses a CNAME beside an A record of one name), each to a per-stack record that
holds an A record (IP gateway: GCP, Azure) or a CNAME (hostname gateway: AWS). The PRIMARY record
points at the active stack and the SECONDARY at the other; a switch repoints both, never swaps roles.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.dns import Endpoint, is_ip, record_name
from components.spec import TrafficSpec

TYPE = "im-platform:aws:Route53Traffic"
# Each failover record's role, and its set identifier in lowercase; the first follows `active`.
FAILOVER_ROLES = ("PRIMARY", "SECONDARY")


class Route53Switch(pulumi.ComponentResource):
    def __init__(self, name: str, spec: TrafficSpec, endpoints: list[Endpoint],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zone = aws.route53.get_zone_output(name=spec.zone, private_zone=False, opts=pulumi.InvokeOptions(parent=self))
        records: dict[str, Any] = {}
        checks: dict[str, Any] = {}
        targets: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = {}
        for endpoint in endpoints:
            stack = endpoint.stack
            per_stack = record_name(spec, stack)
            record = aws.route53.Record(
                naming.child_name(name, stack, "endpoint"),
                zone_id=zone.zone_id,
                name=per_stack,
                type=endpoint.address.apply(lambda a: "A" if is_ip(a) else "CNAME"),
                ttl=spec.ttl,
                records=[endpoint.address],
                opts=child,
            )
            hc = spec.health_check
            check = aws.route53.HealthCheck(
                naming.child_name(name, stack, "health"),
                type="HTTPS",
                # The TLS endpoint clients reach, with a name the stack's certificate carries as SNI
                # and Host: an IP gateway is probed at its IP with the public name itself (what
                # clients send); a hostname gateway through its per-stack name, which resolves to
                # this stack's load balancer only (the public name would follow the failover).
                ip_address=endpoint.address.apply(lambda a: a if is_ip(a) else None),
                fqdn=endpoint.address.apply(lambda a, n=per_stack: spec.name if is_ip(a) else n),  # type: ignore[misc]
                enable_sni=True,
                port=endpoint.port,
                resource_path=pulumi.Output.from_input(hc.path) if hc.path else endpoint.health_path,
                request_interval=hc.interval_seconds,
                failure_threshold=hc.failure_threshold,
                tags=naming.tags(spec.environment, spec.stack, {"Name": per_stack}),
                opts=child,
            )
            records[stack] = {"name": per_stack, "type": record.type, "value": endpoint.address,
                              "failover": "PRIMARY" if stack == spec.active else "SECONDARY"}
            targets[stack] = (record.fqdn, check.id)
            checks[stack] = {"id": check.id, "address": endpoint.address, "port": endpoint.port,
                             "path": check.resource_path}
        # The two failover records keep their roles; routing changes what each points at. Route 53
        # holds at most one PRIMARY and one SECONDARY failover record per name and type (its
        # console refuses a second: "RRset for same type with Primary (or Sec) exists", quoted in
        # boto/boto3#1347), and Pulumi updates two records in two ChangeResourceRecordSets calls,
        # in either order. Swapping the roles of per-stack records passes through two PRIMARYs
        # (or two SECONDARYs); repointing fixed PRIMARY and SECONDARY records passes only through
        # states with one of each (for a moment both at one stack, never at none).
        order = [spec.active] + [e.stack for e in endpoints if e.stack != spec.active]
        for role, stack in zip(FAILOVER_ROLES, order, strict=True):
            fqdn, check_id = targets[stack]
            failover = aws.route53.Record(
                naming.child_name(name, role.lower()),
                zone_id=zone.zone_id,
                name=spec.name,
                type="CNAME",
                ttl=spec.ttl,
                records=[fqdn],
                set_identifier=role.lower(),
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
                health_check_id=check_id,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # A record set's identifier cannot change in place; a new one beside the old
                    # would be a second record of its role, which Route 53 refuses: delete first.
                    delete_before_replace=True,
                    # Earlier versions named the records after their stacks (identifier = stack).
                    aliases=[pulumi.Alias(name=naming.child_name(name, stack, "failover"))]),
            )
            records[stack]["failoverRecord"] = failover.fqdn
        self.outputs = {"records": records, "healthChecks": checks, "zoneId": zone.zone_id}
        self.register_outputs(self.outputs)
