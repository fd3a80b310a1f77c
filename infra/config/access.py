"""Who may use the cluster: `im-platform:cluster.admins` and `im-platform:cluster.viewers`.

Each list names principals in the form the stack's cloud grants access to: IAM role or user ARNs
on AWS (EKS access entries), `user:`/`group:`/`serviceAccount:` members on GCP (IAM), Entra object
ids on Azure (role assignments; a bare id is a group, `user:`/`servicePrincipal:` say otherwise).
Every bad entry is one `ConfigError` naming its key path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from infra.config.errors import ConfigError

ACCESS_KEYS = ("admins", "viewers")

# IAM role and user ARNs: arn:<partition>:iam::<account>:(role|user)/<path/>name.
_IAM_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?P<kind>role|user)/(?P<name>[\w+=,.@/-]+)$")
_ANY_ARN = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):[^:]*:(?P<account>[^:]*):(?P<resource>.+)$")
_GCP_MEMBER = re.compile(r"^(user|group|serviceAccount):[^@\s:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_AWS_EXAMPLE = "arn:aws:iam::123456789012:role/platform-admins"


def aws_partition(region: str) -> str:
    """The partition an AWS region belongs to (principals must be in the cluster's partition)."""
    if region.startswith("cn-"):
        return "aws-cn"
    # us-gov-west-1, us-iso-east-1, us-isob-east-1, eu-isoe-west-1, us-isof-south-1
    second = region.split("-")[1] if "-" in region else ""
    return {"gov": "aws-us-gov", "iso": "aws-iso", "isob": "aws-iso-b", "isoe": "aws-iso-e",
            "isof": "aws-iso-f"}.get(second, "aws")


def _aws_principal(path: str, value: str, region: str) -> str:
    partition = aws_partition(region)
    example = _AWS_EXAMPLE.replace("arn:aws:", f"arn:{partition}:")
    if "*" in value or "?" in value:
        raise ConfigError(path, value, f"wildcards are not allowed: name one IAM role or user, e.g. {example}")
    whole = _ANY_ARN.match(value)
    if whole and whole["service"] == "sts" and whole["resource"].startswith("assumed-role/"):
        role = whole["resource"].split("/")[1] if whole["resource"].count("/") >= 1 else "<role>"
        raise ConfigError(path, value, "an assumed-role session ARN names one sign-in, not the role, and EKS rejects it: "
                                       f"use the role's own ARN, arn:{whole['partition']}:iam::{whole['account']}:role/{role} "
                                       "(with the role's path, if it has one: `aws iam get-role --role-name "
                                       f"{role} --query Role.Arn`)")
    match = _IAM_ARN.match(value)
    if not match:
        if whole and whole["service"] == "iam" and whole["resource"].startswith("group/"):
            raise ConfigError(path, value, "an IAM group cannot be given cluster access: "
                                           f"list the role its members assume, e.g. {example}")
        if whole and whole["service"] == "iam" and whole["resource"] == "root":
            raise ConfigError(path, value, "the account root stands for every principal of the account: "
                                           f"name one IAM role or user, e.g. {example}")
        raise ConfigError(path, value, f"expected the ARN of an IAM role or user, e.g. {example}")
    if match["partition"] != partition:
        raise ConfigError(path, value, f"but aws:region is {region}, in partition {partition}: expected arn:{partition}:iam::...")
    return value


def _gcp_principal(path: str, value: str) -> str:
    if not _GCP_MEMBER.match(value):
        raise ConfigError(path, value, 'expected "user:", "group:" or "serviceAccount:" followed by an email, '
                                       "e.g. group:platform-admins@example.com")
    return value


AZURE_PRINCIPAL_KINDS = ("user", "group", "servicePrincipal")


def _azure_principal(path: str, value: str) -> str:
    """`[user:|group:|servicePrincipal:]<object id>`, normalised to `<type>:<object id>`. A bare
    object id is a group: access goes to teams, and a role assignment must state the type (Azure
    rejects one whose type does not match the directory's)."""
    kind, sep, guid = value.partition(":")
    if not sep:
        kind, guid = "group", value
    if kind not in AZURE_PRINCIPAL_KINDS or not _GUID.match(guid):
        raise ConfigError(path, value, "expected the Entra object id (a GUID) of a group, or of a user or service principal "
                                       "as user:<id> or servicePrincipal:<id>, e.g. from "
                                       "`az ad group show --group NAME --query id -o tsv`")
    return f"{kind}:{guid.lower()}"


def _identity(cloud: str, principal: str) -> str:
    """What makes two entries the same principal: emails and object ids ignore case, ARNs do not."""
    if cloud == "gcp":
        kind, _, email = principal.partition(":")
        return f"{kind}:{email.lower()}"
    return principal.partition(":")[2] if cloud == "azure" else principal


def read_principals(path: str, value: Any, cloud: str, region: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(path, value, "expected a list of principals")
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(item_path, item, "expected a principal as a string")
        if cloud == "aws":
            principal = _aws_principal(item_path, item, region)
        elif cloud == "gcp":
            principal = _gcp_principal(item_path, item)
        else:
            principal = _azure_principal(item_path, item)
        key = _identity(cloud, principal)
        if key in seen:
            raise ConfigError(item_path, item, f"but [{seen[key]}] names the same principal: list each principal once")
        seen[key] = i
        out.append(principal)
    return tuple(out)


def read_access(path: str, cluster: Mapping[str, Any], cloud: str, region: str) -> dict[str, tuple[str, ...]]:
    """`admins` and `viewers` of the cluster map at `path`; a principal in both is an error."""
    admins = read_principals(f"{path}.admins", cluster["admins"], cloud, region) if cluster.get("admins") is not None else ()
    viewers = read_principals(f"{path}.viewers", cluster["viewers"], cloud, region) if cluster.get("viewers") is not None else ()
    admin_keys = {_identity(cloud, a): i for i, a in enumerate(admins)}
    for i, viewer in enumerate(viewers):
        if _identity(cloud, viewer) in admin_keys:
            raise ConfigError(f"{path}.viewers[{i}]", viewer,
                              f"but admins[{admin_keys[_identity(cloud, viewer)]}] names the same principal: "
                              "an admin can already read everything; list it in one of the two")
    return {"admins": admins, "viewers": viewers}
