"""Where each cloud's regions are (`regions.yaml`, the vendors' own region locations) and which region
of another cloud is nearest: the equivalent region `cost --compare` prices a stack in. Pure: no Pulumi."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.config import yamlio

TABLE = Path(__file__).resolve().parent / "regions.yaml"
EARTH_RADIUS_KM = 6371.0


@functools.cache
def table() -> Mapping[str, Any]:
    doc: Mapping[str, Any] = yamlio.safe_load(TABLE.read_text(encoding="utf-8"))
    return doc


def location(cloud: str, region: str) -> tuple[float, float, str] | None:
    """(latitude, longitude, the vendor's name for the place) of a region; None for a region not in the table."""
    row = (table()["regions"].get(cloud) or {}).get(region)
    return (float(row[0]), float(row[1]), str(row[2])) if row else None


def distance_km(a: tuple[float, float, str], b: tuple[float, float, str]) -> float:
    """Great-circle distance (haversine) between two locations."""
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def nearest(cloud: str, region: str, other: str, among: Iterable[str] | None = None) -> tuple[str, float] | None:
    """The region of `other` nearest to `cloud`'s `region` (ties by name), with its distance; None when
    `region` is not in the table."""
    here = location(cloud, region)
    if here is None:
        return None
    candidates = sorted(among if among is not None else (table()["regions"].get(other) or {}))
    best = min(((distance_km(here, loc), r) for r in candidates if (loc := location(other, r)) is not None), default=None)
    return (best[1], best[0]) if best else None
