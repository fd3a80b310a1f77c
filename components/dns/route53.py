"""Route 53: per-stack endpoint records, HTTPS health checks and PRIMARY/SECONDARY failover records.

Route 53's health checkers fail over on their own (no deploy): when the PRIMARY's check fails
`failureThreshold` times in a row, Route 53 answers with the SECONDARY. Both failover records are
CNAMEs (Route 53 refuses a CNAME beside an A record of one name), each to a per-stack record that
holds an A record (IP gateway: GCP, Azure) or a CNAME (hostname gateway: AWS).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.dns import Endpoint, is_ip, record_name
from components.spec import TrafficSpec

TYPE = "im-platform:aws:Route53Traffic"


class Route53Switch(pulumi.ComponentResource):
    def __init__(self, name: str, spec: TrafficSpec, endpoints: list[Endpoint],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zone = aws.route53.get_zone_output(name=spec.zone, private_zone=False, opts=pulumi.InvokeOptions(parent=self))
        records: dict[str, Any] = {}
        checks: dict[str, Any] = {}
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
            role = "PRIMARY" if stack == spec.active else "SECONDARY"
            failover = aws.route53.Record(
                naming.child_name(name, stack, "failover"),
                zone_id=zone.zone_id,
                name=spec.name,
                type="CNAME",
                ttl=spec.ttl,
                records=[record.fqdn],
                set_identifier=stack,
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
                health_check_id=check.id,
                opts=child,
            )
            records[stack] = {"name": per_stack, "type": record.type, "value": endpoint.address,
                              "failover": role, "failoverRecord": failover.fqdn}
            checks[stack] = {"id": check.id, "address": endpoint.address, "port": endpoint.port,
                             "path": check.resource_path}
        self.outputs = {"records": records, "healthChecks": checks, "zoneId": zone.zone_id}
        self.register_outputs(self.outputs)
