"""Map a cloud name to its cluster component, importing only that cloud's SDK."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.base import ClusterComponent

_MODULES = {"aws": ("components.aws", "EksCluster"),
            "gcp": ("components.gcp", "GkeCluster"),
            "azure": ("components.azure", "AksCluster"),
            # An existing cluster: no cloud SDK at all.
            "kubernetes": ("components.kubernetes", "ExistingCluster")}


def cluster_class(cloud: str) -> type[ClusterComponent]:
    try:
        module_name, class_name = _MODULES[cloud]
    except KeyError:
        raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(_MODULES)}") from None
    # Importing a cloud SDK costs seconds and hundreds of MB: only the selected one is loaded.
    return getattr(importlib.import_module(module_name), class_name)
