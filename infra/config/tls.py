"""Read `im-platform:tls` and the traffic stacks that route to this stack into a `TlsSpec`.

The names a stack's certificate must carry come from two places, so a pair stack needs no key of
its own: every traffic stack whose `im-platform:traffic.stacks` lists this stack adds its public
`name` and this stack's per-stack name `<stack>.<name>` (what its health check and failover
records use), solved in that traffic stack's `zone`; `im-platform:tls.hosts` adds names of the
stack's own (for a stack without a traffic stack), solved in `im-platform:tls.zone`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from components.spec import DEFAULT_TLS_ISSUER, TLS_ISSUERS, ServiceSpec, TlsSpec, TlsZone
from infra.config.errors import MISSING, ConfigError
from infra.config.readers import NS, _did_you_mean, as_list, as_mapping, as_str, check_keys, optional
from infra.config.stackfiles import read_stack_config, search_dirs, stack_name_from_file

TLS_KEY = f"{NS}tls"
TRAFFIC_KEY = f"{NS}traffic"
TLS_KEYS = ("issuer", "email", "hosts", "zone", "secretName", "hostedZoneId", "zoneRole")
# Route 53 hosted zone ids: "Z" and upper-case letters and digits (as the console and API show them).
HOSTED_ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,32}$")
ROLE_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
SECRET_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?$")
# Let's Encrypt accepts at most 100 names on one certificate.
MAX_HOSTS = 100


def _dns_name(path: str, value: Any) -> str:
    text = as_str(path, value, what="a lowercase DNS name such as chat.example.com")
    if not DNS_NAME_RE.match(text.rstrip(".")):
        raise ConfigError(path, value, "expected a lowercase DNS name such as chat.example.com (no wildcard, no IP)")
    return text.rstrip(".")


def routing_traffic_stacks(stack: str, project: str) -> list[tuple[str, str, str]]:
    """(traffic stack, zone, name) of every traffic stack file that lists `stack` in its pair, in
    search order (`infra.config.stackfiles.search_dirs`), each traffic stack once. Read raw: a
    traffic stack's own configuration is checked when it is planned; here a block that is not
    readable as zone and name is passed over."""
    found: dict[str, tuple[str, str, str]] = {}
    for folder in search_dirs():
        for path in sorted(folder.glob("Pulumi.*.y*ml")):
            name = stack_name_from_file(path)
            if name is None or name in found or name == stack:
                continue
            try:
                values, _ = read_stack_config(path, project)
            except ConfigError:
                continue
            raw = values.get(TRAFFIC_KEY)
            if raw is None:
                continue
            try:
                block = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(block, dict) or stack not in (block.get("stacks") or []):
                continue
            zone, public = block.get("zone"), block.get("name")
            if isinstance(zone, str) and isinstance(public, str) and DNS_NAME_RE.match(public.rstrip(".")) \
                    and DNS_NAME_RE.match(zone.rstrip(".")):
                found[name] = (name, zone.rstrip("."), public.rstrip("."))
    return list(found.values())


def _inside(host: str, zone: str) -> bool:
    return host.endswith("." + zone)


def read_tls(value: Any | None, *, stack: str, project: str, services: tuple[ServiceSpec, ...]) -> TlsSpec | None:
    """The stack's TLS, or None when neither `im-platform:tls` nor a traffic stack names a host."""
    traffic = routing_traffic_stacks(stack, project)
    if value is None and not traffic:
        return None
    block: Mapping[str, Any] = as_mapping(TLS_KEY, value) if value is not None else {}
    check_keys(TLS_KEY, block, TLS_KEYS)
    issuer = optional(TLS_KEY, block, "issuer", lambda p, v: v, DEFAULT_TLS_ISSUER)
    if not isinstance(issuer, str) or issuer not in TLS_ISSUERS:
        raise ConfigError(f"{TLS_KEY}.issuer", issuer,
                          f"expected one of {', '.join(TLS_ISSUERS)}{_did_you_mean(str(issuer), tuple(TLS_ISSUERS))}")
    email = optional(TLS_KEY, block, "email",
                     lambda p, v: as_str(p, v, EMAIL_RE, "an email address for the ACME account, such as ops@example.com"), None)
    if email is not None and issuer == "own":
        raise ConfigError(f"{TLS_KEY}.email", email, "is only used with an ACME issuer (letsencrypt, letsencrypt-staging); "
                                                     "remove it with issuer: own")
    secret_name = optional(TLS_KEY, block, "secretName",
                           lambda p, v: as_str(p, v, SECRET_NAME_RE, "a Kubernetes Secret name such as chat-tls"),
                           "im-platform-tls")
    zone = optional(TLS_KEY, block, "zone", _dns_name, None)
    hosts_path = f"{TLS_KEY}.hosts"
    listed: list[Any] = optional(TLS_KEY, block, "hosts", as_list, [])
    own_hosts = [_dns_name(f"{hosts_path}[{i}]", h) for i, h in enumerate(listed)]
    if len(set(own_hosts)) != len(own_hosts):
        raise ConfigError(hosts_path, own_hosts, "a host is listed twice")
    if zone is not None and not own_hosts:
        raise ConfigError(f"{TLS_KEY}.zone", zone, f"but {hosts_path} is empty: the zone is where the hosts' challenges are solved")
    if own_hosts and zone is None and issuer != "own":
        raise ConfigError(f"{TLS_KEY}.zone", MISSING, f"required with {hosts_path} and issuer {issuer}: the Route 53 public "
                                                   "hosted zone the hosts are in, such as example.com")
    if zone is not None:
        for i, host in enumerate(own_hosts):
            if not _inside(host, zone):
                raise ConfigError(f"{hosts_path}[{i}]", host, f"but zone is {zone}: expected a name inside the zone, such as chat.{zone}")

    zones: dict[str, list[str]] = {}
    for _traffic_stack, traffic_zone, public in traffic:
        zones.setdefault(traffic_zone, []).extend([public, f"{stack}.{public}"])
    if zone is not None:
        zones.setdefault(zone, []).extend(own_hosts)
    hosted_zone_id = optional(TLS_KEY, block, "hostedZoneId", lambda p, v: as_str(
        p, v, HOSTED_ZONE_ID_RE, "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"), None)
    zone_role = optional(TLS_KEY, block, "zoneRole", lambda p, v: as_str(
        p, v, ROLE_ARN_RE, "an IAM role ARN such as arn:aws:iam::444455556666:role/acme-dns01"), None)
    if (hosted_zone_id is None) != (zone_role is None):
        given, missing = ("hostedZoneId", "zoneRole") if zone_role is None else ("zoneRole", "hostedZoneId")
        raise ConfigError(f"{TLS_KEY}.{missing}", MISSING,
                          f"required with {given} ({hosted_zone_id or zone_role}): a Route 53 zone in another AWS "
                          "account needs both its hosted zone id and the role to assume there")
    if zone_role is not None:
        if issuer == "own":
            raise ConfigError(f"{TLS_KEY}.zoneRole", zone_role, "is only used with an ACME issuer (letsencrypt, "
                                                              "letsencrypt-staging); remove it with issuer: own")
        if len(zones) > 1:
            raise ConfigError(f"{TLS_KEY}.hostedZoneId", hosted_zone_id,
                              f"names one zone, but the challenges go to {len(zones)}: {', '.join(sorted(zones))}; "
                              "expected every name in the one zone of that account")
    hosts = tuple(dict.fromkeys([h for names in zones.values() for h in names] + own_hosts))
    if not hosts:
        raise ConfigError(hosts_path, MISSING, "required: the names clients connect to (no traffic stack routes to "
                                                     f"{stack}), such as [chat.example.com]")
    if len(hosts) > MAX_HOSTS:
        raise ConfigError(hosts_path, len(hosts), f"expected at most {MAX_HOSTS} names on one certificate")
    if not any(s.public for s in services):
        # Validated all the same, but nothing to serve: no tier is public (a copy of a stack with its
        # public tiers removed, a pair half without a gateway), so no certificate is declared.
        return None
    return TlsSpec(
        issuer=issuer,
        hosts=hosts,
        zones=tuple(TlsZone(z, tuple(dict.fromkeys(names))) for z, names in zones.items()) if issuer != "own" else (),
        email=email,
        secret_name=secret_name,
        traffic_stacks=tuple(t[0] for t in traffic),
        hosted_zone_id=hosted_zone_id,
        zone_role=zone_role,
    )

