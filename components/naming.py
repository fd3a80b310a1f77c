"""One rule for names, one for tags.

Logical names derive from the component's name, so two instances never collide. Physical names
are the component name plus a suffix, shortened with a stable hash where a cloud limits length
(never a random string).
"""

from __future__ import annotations

import hashlib
import re

PROJECT = "im-platform"
MANAGED_BY = "im-platform"

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, max_len: int = 63) -> str:
    """Lowercase DNS label made from any text; long ones end in a stable hash."""
    label = _NOT_LABEL.sub("-", text.lower()).strip("-") or "x"
    return shorten(label, max_len)


def shorten(name: str, max_len: int) -> str:
    if len(name) <= max_len:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: max_len - 7].rstrip('-')}-{digest}"


def child_name(component: str, *parts: str) -> str:
    """Logical name of a child resource: the component's name first."""
    return "-".join((component,) + parts)


def physical_name(component: str, *parts: str, max_len: int = 63) -> str:
    return shorten("-".join((component,) + parts), max_len)


def cluster_name(stack: str) -> str:
    """The component (and cluster) name of a stack: `im-<stack>`."""
    return dns_label(f"im-{stack}", 40)


def base_tags(environment: str, stack: str) -> dict[str, str]:
    """Keys valid on every cloud (GCP labels: lowercase, no ':' or '/')."""
    return {"environment": environment, "stack": dns_label(stack), "managed-by": MANAGED_BY}


def tags(environment: str, stack: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Extra tags first, the fixed keys last so nothing overrides them."""
    merged = dict(extra or {})
    merged.update(base_tags(environment, stack))
    return merged


def principal_key(principal: str) -> str:
    """A logical-name part for a principal (ARN, IAM member, object id): readable, and unique
    through a hash of the exact text, since two principals may read the same once lowercased."""
    digest = hashlib.sha256(principal.encode()).hexdigest()[:6]
    tail = principal.rsplit("/", 1)[-1].split("@")[0].split(":")[-1]
    return f"{dns_label(tail)[:24].strip('-') or 'x'}-{digest}"
