"""What the replication job runs, as plain data: the rclone remotes, the process environment and
the projected tokens for each cloud, the schedule, and the peer outputs they are read from.

No Pulumi import: values may be plain strings or Pulumi outputs (the stack's own store), the module
only places them. rclone takes every remote setting from the environment
(`RCLONE_CONFIG_<REMOTE>_<OPTION>`), so the job needs no config file and holds no key:

- S3 (`env_auth`): the AWS SDK's default chain assumes `AWS_ROLE_ARN` with the projected token in
  `AWS_WEB_IDENTITY_TOKEN_FILE` (AssumeRoleWithWebIdentity).
- GCS (`env_auth`): Google's default credentials, either the GKE metadata server (the standby's own
  Workload Identity) or `GOOGLE_APPLICATION_CREDENTIALS` pointing at an `external_account`
  configuration that trades the projected token at Google's STS (workload identity federation).
- Azure Blob (`env_auth`): azidentity's default chain, whose workload identity credential reads
  `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and the projected token in `AZURE_FEDERATED_TOKEN_FILE`.

A pair is on two clouds, so the job has at most one remote per cloud and the per-cloud process
variables never collide (`job_env` refuses if they did).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components import trust
from components.trust import AWS_AUDIENCE

# A well-known copy tool, pinned: a new rclone only arrives through a reviewed change.
IMAGE = "docker.io/rclone/rclone:1.69.1"
NAMESPACE = "im-dr-replication"
SERVICE_ACCOUNT = "replication"
# Remote names: the env keys are RCLONE_CONFIG_PRIMARY_* and RCLONE_CONFIG_STANDBY_*.
SOURCE_REMOTE = "primary"
DEST_REMOTE = "standby"

TOKEN_DIR = "/var/run/secrets/im-platform"
CREDENTIALS_DIR = "/etc/im-platform/gcp"
GCP_CREDENTIALS_FILE = "credentials.json"
# Projected tokens live an hour (the kubelet refreshes them at 80 %); no session outlives it.
TOKEN_SECONDS = 3600

AZURE_AUDIENCE = "api://AzureADTokenExchange"
AZURE_AUTHORITY = "https://login.microsoftonline.com/"
GCP_STS_URL = "https://sts.googleapis.com/v1/token"

# Intervals cron can express exactly: divisors of an hour (minutes), then divisors of a day (hours).
_MINUTE_STEPS = (5, 6, 10, 12, 15, 20, 30)
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12, 24)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def subject(namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT) -> str:
    """The `sub` claim of a Kubernetes service-account token (the job's by default)."""
    return trust.subject(namespace, service_account)


def token_path(cloud: str) -> str:
    return f"{TOKEN_DIR}/{cloud}/token"


def schedule(interval_minutes: int) -> tuple[str, int]:
    """A cron schedule running at least every `interval_minutes`, and the interval it really has.

    Cron steps only divide an hour or a day evenly, so an interval it cannot express is rounded
    down to the next one it can: the job runs more often, never less (the RPO is never longer
    than configured)."""
    if interval_minutes < _MINUTE_STEPS[0]:
        raise ValueError(f"interval {interval_minutes} min is below the shortest schedule ({_MINUTE_STEPS[0]} min)")
    if interval_minutes < 60:
        step = max(s for s in _MINUTE_STEPS if s <= interval_minutes)
        return f"*/{step} * * * *", step
    hours = max(h for h in _HOUR_STEPS if h * 60 <= interval_minutes)
    if hours == 24:
        return "0 0 * * *", 1440
    return ("0 * * * *" if hours == 1 else f"0 */{hours} * * *"), hours * 60


@dataclass(frozen=True)
class Access:
    """How the job reaches one store: an rclone remote, process environment, a projected token."""

    cloud: str
    path: Any  # bucket (S3, GCS) or container (Azure Blob)
    remote: tuple[tuple[str, Any], ...]  # rclone option -> value, e.g. ("type", "s3")
    env: tuple[tuple[str, Any], ...] = ()
    token_audience: str | None = None  # audience of the projected token at token_path(cloud)
    files: tuple[tuple[str, str], ...] = ()  # files for the credentials ConfigMap (GCS federation)
    service_account_annotations: tuple[tuple[str, Any], ...] = ()


def remote_env(remote: str, access: Access) -> list[tuple[str, Any]]:
    return [(f"RCLONE_CONFIG_{remote.upper()}_{option.upper()}", value) for option, value in access.remote]


def job_env(source: Access, dest: Access) -> list[tuple[str, Any]]:
    """Every environment variable of the copy container, sorted by name."""
    if source.cloud == dest.cloud:
        raise ValueError(f"source and destination are both on {source.cloud}: a DR pair spans two clouds")
    merged: dict[str, Any] = {}
    for name, value in [*remote_env(SOURCE_REMOTE, source), *remote_env(DEST_REMOTE, dest),
                        *source.env, *dest.env]:
        if name in merged:
            raise ValueError(f"{name} is set for both stores")
        merged[name] = value
    # rclone looks for a config file it does not need; the root filesystem is read-only.
    merged["RCLONE_CONFIG"] = "/tmp/rclone.conf"
    merged["HOME"] = "/tmp"
    return sorted(merged.items())


SYNC_FLAGS = (
    # No --fast-list: it holds the whole bucket's listing in memory, which a large store would
    # push past the pod's limit; listing prefix by prefix costs requests, not memory.
    "--transfers=8",
    "--checkers=16",
    "--retries=3",
    "--low-level-retries=10",
    # One JSON log line a minute: what ran, how much, how fast, for the cluster's log pipeline.
    "--use-json-log",
    "--stats=60s",
    "--stats-one-line",
    "--log-level=INFO",
)


# -- the two sides of the federation, from the peer's stack outputs --------------------------------


class PeerOutputError(ValueError):
    """A peer output is missing a key or holds a value that cannot be trusted."""


def _need(source: Mapping[str, Any], key: str, what: str) -> str:
    value = source.get(key)
    if not isinstance(value, str) or not value:
        raise PeerOutputError(f"{what} has no {key!r}")
    return value


def peer_subject(replication: Any) -> str:
    """The service account the peer's job runs as, from its `replication` output: exactly one
    `system:serviceaccount:<namespace>:<name>`, never a pattern."""
    if not isinstance(replication, Mapping):
        raise PeerOutputError("the peer's replication output is not a map")
    namespace = _need(replication, "namespace", "the peer's replication output")
    account = _need(replication, "serviceAccount", "the peer's replication output")
    for value in (namespace, account):
        if not _DNS_LABEL.match(value):
            raise PeerOutputError(f"the peer's replication output names {value!r}, not a Kubernetes name")
    return subject(namespace, account)


def peer_issuer(issuer: Any) -> str:
    if not isinstance(issuer, str) or not issuer.startswith("https://") or "*" in issuer:
        raise PeerOutputError(f"the peer's oidcIssuer {issuer!r} is not an https URL")
    return issuer


def gcp_credentials(audience: str, token_file: str) -> str:
    """An `external_account` credential configuration: no secret, only where to trade which token."""
    return json.dumps({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": GCP_STS_URL,
        "credential_source": {"file": token_file, "format": {"type": "text"}},
    }, indent=2, sort_keys=True)


def reader_access(source: Any) -> Access:
    """Read access to the primary's store, from the primary's `replicationSource` output."""
    if not isinstance(source, Mapping):
        raise PeerOutputError("the peer's replicationSource output is not a map")
    cloud = source.get("cloud")
    what = "the peer's replicationSource output"
    if cloud == "aws":
        region = _need(source, "region", what)
        return Access(
            cloud="aws", path=_need(source, "bucket", what),
            remote=(("type", "s3"), ("provider", "AWS"), ("env_auth", "true"), ("region", region)),
            env=(("AWS_ROLE_ARN", _need(source, "roleArn", what)),
                 ("AWS_WEB_IDENTITY_TOKEN_FILE", token_path("aws")),
                 ("AWS_ROLE_SESSION_NAME", "im-platform-replication"),
                 ("AWS_REGION", region),
                 ("AWS_STS_REGIONAL_ENDPOINTS", "regional")),
            token_audience=AWS_AUDIENCE,
        )
    if cloud == "gcp":
        token_audience = _need(source, "tokenAudience", what)
        return Access(
            cloud="gcp", path=_need(source, "bucket", what),
            remote=(("type", "google cloud storage"), ("env_auth", "true"), ("bucket_policy_only", "true")),
            env=(("GOOGLE_APPLICATION_CREDENTIALS", f"{CREDENTIALS_DIR}/{GCP_CREDENTIALS_FILE}"),),
            token_audience=token_audience,
            files=((GCP_CREDENTIALS_FILE, gcp_credentials(_need(source, "audience", what), token_path("gcp"))),),
        )
    if cloud == "azure":
        return Access(
            cloud="azure", path=_need(source, "container", what),
            remote=(("type", "azureblob"), ("account", _need(source, "account", what)), ("env_auth", "true")),
            env=(("AZURE_CLIENT_ID", _need(source, "clientId", what)),
                 ("AZURE_TENANT_ID", _need(source, "tenantId", what)),
                 ("AZURE_FEDERATED_TOKEN_FILE", token_path("azure")),
                 ("AZURE_AUTHORITY_HOST", AZURE_AUTHORITY)),
            token_audience=AZURE_AUDIENCE,
        )
    raise PeerOutputError(f"{what} names cloud {cloud!r}; expected aws, gcp or azure")


def trusted_by_source(source: Mapping[str, Any], issuer: str, subject_: str) -> bool:
    """Whether the primary's trust names this stack's issuer and service account (a recreated
    standby cluster has a new issuer: the primary must deploy again before the job can read)."""
    return source.get("issuer") == issuer and source.get("subject") == subject_
