"""Map a machine shape (vCPU, GiB) to each cloud's instance types.

Pure tables, no SDK: the config layer resolves shapes while it validates, so an impossible shape is
a configuration error before anything is declared.
"""

from __future__ import annotations

import re

# AWS: memory per vCPU picks the family; the first family is the primary type and the others are
# equivalent generations/vendors a spot pool can fall back to (more capacity pools, fewer
# interruptions). All of them offer the same sizes below.
_AWS_FAMILIES = {
    2: ("c7i", "c6i", "c6a", "c7a"),
    4: ("m7i", "m6i", "m6a", "m7a"),
    8: ("r7i", "r6i", "r6a", "r7a"),
}
_AWS_SIZES = {2: "large", 4: "xlarge", 8: "2xlarge", 16: "4xlarge", 32: "8xlarge", 48: "12xlarge",
              64: "16xlarge", 96: "24xlarge"}

# Arm (arch: arm64): Graviton 3 first, Graviton 2 as the spot fallback; no 24xlarge in these families.
_AWS_ARM_FAMILIES = {
    2: ("c7g", "c6g"),
    4: ("m7g", "m6g"),
    8: ("r7g", "r6g"),
}
_AWS_ARM_SIZES = {k: v for k, v in _AWS_SIZES.items() if k != 96}
ARCHES = ("x86_64", "arm64")

_GCP_FAMILIES = {1: "n2-highcpu", 4: "n2-standard", 8: "n2-highmem"}
_GCP_SIZES = (2, 4, 8, 16, 32, 48, 64, 80, 96)

# Ampere Altra (Dplsv5, Dpsv5, Epsv5) for arch: arm64.
_AZURE_ARM_SIZES = {
    2: ("Standard_D{n}pls_v5", (2, 4, 8, 16, 32, 48, 64)),
    4: ("Standard_D{n}ps_v5", (2, 4, 8, 16, 32, 48, 64)),
    8: ("Standard_E{n}ps_v5", (2, 4, 8, 16, 20, 32)),
}
_AZURE_SIZES = {
    2: ("Standard_F{n}s_v2", (2, 4, 8, 16, 32, 48, 64, 72)),
    4: ("Standard_D{n}s_v5", (2, 4, 8, 16, 32, 48, 64, 96)),
    8: ("Standard_E{n}s_v5", (2, 4, 8, 16, 20, 32, 48, 64, 96)),
}

INSTANCE_TYPE_PATTERNS = {
    "aws": (re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), "an EC2 instance type such as m7i.2xlarge"),
    "gcp": (re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$"), "a Compute Engine machine type such as n2-standard-8"),
    "azure": (re.compile(r"^Standard_[A-Za-z0-9_]+$"), "an Azure VM size such as Standard_D8s_v5"),
}

# How each cloud names its Arm instance types, from its own naming rules:
# - AWS: "g" after the generation number is AWS Graviton (c7g, m6gd, t4g, x2gd, im4gn; a1 is the first
#   Graviton), https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html.
# - GCP: the Arm series are Tau T2A (Ampere Altra), C4A and N4A (Axion),
#   https://cloud.google.com/compute/docs/instances/arm-on-compute.
# - Azure: a "p" among the lowercase additive features after the vCPU count is an Arm processor
#   (Dpsv5, Dplsv5, Epsv5 on Ampere Altra; Dpsv6 on Cobalt 100),
#   https://learn.microsoft.com/azure/virtual-machines/vm-naming-conventions.
_ARM_TYPE_PATTERNS = {
    "aws": re.compile(r"^(a1|[a-z]+\d+g[a-z-]*)\."),
    "gcp": re.compile(r"^(t2a|c4a|n4a)-"),
    "azure": re.compile(r"^Standard_[A-Z]+\d+(-\d+)?[a-z]*p[a-z]*_v\d+$"),
}


def instance_type_arch(cloud: str, instance_type: str) -> str:
    """The CPU architecture of a cloud's instance type, by the cloud's own naming rule."""
    pattern = _ARM_TYPE_PATTERNS.get(cloud)
    return "arm64" if pattern is not None and pattern.match(instance_type) else "x86_64"


class ShapeError(ValueError):
    """No instance type of the cloud has this shape."""


def _ratio(vcpu: int, memory_gib: int) -> int | None:
    return memory_gib // vcpu if memory_gib % vcpu == 0 else None


def valid_shapes(cloud: str, arch: str = "x86_64") -> list[tuple[int, int]]:
    """Every (vCPU, GiB) the tables map on `cloud` for `arch` (GCP's custom shapes in whole GiB)."""
    found: set[tuple[int, int]] = set()
    if arch == "arm64":
        if cloud == "aws":
            found |= {(n, n * r) for r in _AWS_ARM_FAMILIES for n in _AWS_ARM_SIZES}
        elif cloud == "azure":
            found |= {(n, n * r) for r, (_, sizes) in _AZURE_ARM_SIZES.items() for n in sizes}
        return sorted(found)
    if cloud == "aws":
        found |= {(n, n * r) for r in _AWS_FAMILIES for n in _AWS_SIZES}
    elif cloud == "gcp":
        found |= {(n, n * r) for r in _GCP_FAMILIES for n in _GCP_SIZES}
        found |= {(n, m) for n in range(2, 33, 2) for m in range(max(1, n // 2), n * 8 + 1)}
    elif cloud == "azure":
        found |= {(n, n * r) for r, (_, sizes) in _AZURE_SIZES.items() for n in sizes}
    return sorted(found)


def nearest_shapes(cloud: str, vcpu: int, memory_gib: int, arch: str = "x86_64", count: int = 6) -> list[tuple[int, int]]:
    """The valid shapes closest to the one asked for (relative distance in vCPU and in memory)."""
    def distance(shape: tuple[int, int]) -> tuple[float, int, int]:
        v, m = shape
        return (abs(v - vcpu) / max(vcpu, 1) + abs(m - memory_gib) / max(memory_gib, 1), v, m)

    return sorted(sorted(valid_shapes(cloud, arch), key=distance)[:count])


def _known_shapes(cloud: str, vcpu: int, memory_gib: int, arch: str = "x86_64") -> str:
    return ", ".join(f"{v}/{m}" for v, m in nearest_shapes(cloud, vcpu, memory_gib, arch))


def machine_types(cloud: str, vcpu: int, memory_gib: int, spot: bool, arch: str = "x86_64") -> tuple[str, ...]:
    """Instance types for a pool of this shape: the primary first, spot alternatives after."""
    ratio = _ratio(vcpu, memory_gib)
    if arch == "arm64":
        return _arm_types(cloud, vcpu, memory_gib, spot, ratio)
    if cloud == "aws":
        families = _AWS_FAMILIES.get(ratio or 0)
        size = _AWS_SIZES.get(vcpu)
        if families and size:
            chosen = families if spot else families[:1]
            return tuple(f"{family}.{size}" for family in chosen)
    elif cloud == "gcp":
        family = _GCP_FAMILIES.get(ratio or 0)
        if family and vcpu in _GCP_SIZES:
            return (f"{family}-{vcpu}",)
        # N2 custom shapes cover 0.5-8 GiB per vCPU with an even vCPU count up to 32.
        if vcpu % 2 == 0 and vcpu <= 32 and 0.5 <= memory_gib / vcpu <= 8:
            return (f"n2-custom-{vcpu}-{memory_gib * 1024}",)
    elif cloud == "azure":
        entry = _AZURE_SIZES.get(ratio or 0)
        if entry and vcpu in entry[1]:
            return (entry[0].format(n=vcpu),)
    else:
        raise ShapeError(f"unknown cloud {cloud!r}")
    raise ShapeError(
        f"no {cloud} instance type is known for {vcpu} vCPU and {memory_gib} GiB; "
        f"use a shape such as {_known_shapes(cloud, vcpu, memory_gib)} (vCPU/GiB) or set instanceType"
    )


def _arm_types(cloud: str, vcpu: int, memory_gib: int, spot: bool, ratio: int | None) -> tuple[str, ...]:
    if cloud == "aws":
        families = _AWS_ARM_FAMILIES.get(ratio or 0)
        size = _AWS_ARM_SIZES.get(vcpu)
        if families and size:
            return tuple(f"{family}.{size}" for family in (families if spot else families[:1]))
    elif cloud == "azure":
        entry = _AZURE_ARM_SIZES.get(ratio or 0)
        if entry and vcpu in entry[1]:
            return (entry[0].format(n=vcpu),)
    elif cloud == "gcp":
        raise ShapeError("arm64 pools are mapped on aws (Graviton) and azure (Ampere); GCP's Tau T2A and C4A "
                         "are not in the shape table yet: use arch x86_64 or set instanceType")
    raise ShapeError(f"no arm64 {cloud} instance type is known for {vcpu} vCPU and {memory_gib} GiB; "
                     f"use a shape such as {_known_shapes(cloud, vcpu, memory_gib, 'arm64')} (vCPU/GiB), or set instanceType")
