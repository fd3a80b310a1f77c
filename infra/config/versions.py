"""Kubernetes minor versions by support window, from `kubernetes_versions.yaml` beside this module.

Pure: no Pulumi. `window(cloud, minor, today)` says whether a minor is in standard support, in
extended support (a higher control-plane fee) or past both on a cloud's managed service;
`support_warning` is the one line `plan`, `check` and `cost` print for a version past standard support.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from infra.config import yamlio

VERSIONS_FILE = Path(__file__).resolve().parent / "kubernetes_versions.yaml"
SERVICE = {"aws": "eks", "gcp": "gke", "azure": "aks"}
STANDARD, EXTENDED, ENDED = "standard", "extended", "ended"
# What the extended window costs per cluster-hour, for the warning (the price `cost` uses is the catalog's).
EXTENDED_FEE = {"aws": "$0.60/h instead of $0.10/h", "gcp": "$0.60/h instead of $0.10/h (Extended channel)",
                "azure": "the Premium tier, $0.60/h instead of $0.10/h (long-term support)"}


@dataclass(frozen=True)
class Window:
    service: str
    minor: str
    standard_end: dt.date
    extended_end: dt.date
    source: str
    as_of: dt.date
    extended_tier: str


@lru_cache(maxsize=1)
def _doc() -> Mapping[str, Any]:
    return yamlio.safe_load(VERSIONS_FILE.read_text(encoding="utf-8")) or {}


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def windows(cloud: str) -> dict[str, Window]:
    """Every minor the data lists for this cloud's managed service."""
    service = SERVICE[cloud]
    block = _doc()[service]
    return {minor: Window(service, minor, _date(w["standardEnd"]), _date(w["extendedEnd"]), str(block["source"]),
                          _date(block["as_of"]), str(block.get("extendedTier", EXTENDED)))
            for minor, w in (block.get("minors") or {}).items()}


def data_as_of() -> dt.date:
    return min(_date(_doc()[s]["as_of"]) for s in SERVICE.values())


def window(cloud: str, minor: str, today: dt.date | None = None) -> str | None:
    """STANDARD, EXTENDED or ENDED on `today` (default: the date the data was read); None if not listed."""
    w = windows(cloud).get(minor)
    if w is None:
        return None
    today = today or data_as_of()
    if today <= w.standard_end:
        return STANDARD
    return EXTENDED if today <= w.extended_end else ENDED


def newest_standard_everywhere(today: dt.date | None = None) -> str | None:
    """The newest minor in standard support on all three clouds (the default kubernetesVersion)."""
    common = set(windows("aws")) & set(windows("gcp")) & set(windows("azure"))
    ok = [m for m in common if all(window(c, m, today) == STANDARD for c in SERVICE)]
    return max(ok, key=lambda m: tuple(int(p) for p in m.split("."))) if ok else None


def support_warning(cloud: str, minor: str, stack: str = "", today: dt.date | None = None) -> str | None:
    """One line when `minor` is past standard support on `cloud`, naming the date and the fee."""
    w = windows(cloud).get(minor)
    state = window(cloud, minor, today)
    if w is None or state == STANDARD:
        return None
    who = f"{stack}: " if stack else ""
    if state == EXTENDED:
        return (f"{who}im-platform:cluster.kubernetesVersion {minor} is past standard support on "
                f"{w.service.upper()} since {w.standard_end.isoformat()} (extended support until "
                f"{w.extended_end.isoformat()} costs {EXTENDED_FEE[cloud]}); upgrade to {newest_standard_everywhere(today)} "
                f"(source: {w.source}, as of {w.as_of.isoformat()})")
    return (f"{who}im-platform:cluster.kubernetesVersion {minor} is past extended support on "
            f"{w.service.upper()} since {w.extended_end.isoformat()}: the service upgrades it; upgrade to "
            f"{newest_standard_everywhere(today)} (source: {w.source}, as of {w.as_of.isoformat()})")


def control_plane_tier(cloud: str, minor: str, tier: str, today: dt.date | None = None) -> str:
    """The catalog tier the control plane is billed at: the extended tier past standard support."""
    if window(cloud, minor, today) in (EXTENDED, ENDED):
        return windows(cloud)[minor].extended_tier
    return tier
