"""Waiting for Azure RBAC before the first Kubernetes call on AKS.

The deployer's "Azure Kubernetes Service RBAC Cluster Admin" assignment exists as soon as ARM
accepts it, but AKS's authorization webhook may deny the deployer for a while: Microsoft documents
that new role assignments can take up to five minutes to propagate to the cluster's authorization
server (learn.microsoft.com/azure/aks/manage-azure-rbac, "Before you begin"). A first `pulumi up`
would then fail with 403 on its first Kubernetes object.

So the Kubernetes provider's kubeconfig is released only once the API server answers a
SelfSubjectAccessReview with "allowed" for the deployer (the same identity and exec plugin the
provider uses), polling every 15 s for at most ten minutes (twice the documented delay); on later
runs the first answer is already "allowed", one request. Under the mock runtime (offline plan,
tests) nothing is called.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import pulumi

ACCESS_REVIEW = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SelfSubjectAccessReview",
    # What the program does first: create namespaces, cluster-wide.
    "spec": {"resourceAttributes": {"verb": "create", "resource": "namespaces"}},
}
TIMEOUT_SECONDS = 600
INTERVAL_SECONDS = 15


class AccessNotGranted(Exception):
    """The deployer's role assignment did not take effect in time."""


def exec_token(kubeconfig: dict[str, Any]) -> str:
    """A bearer token from the kubeconfig's own exec plugin (kubelogin), as kubectl would get it."""
    spec = kubeconfig["users"][0]["user"]["exec"]
    out = subprocess.run([spec["command"], *spec.get("args", [])], capture_output=True, text=True, check=True,
                         timeout=120)
    return str(json.loads(out.stdout)["status"]["token"])


def access_allowed(kubeconfig: dict[str, Any], token: str) -> bool:
    """Whether the API server lets this identity create namespaces (a 403 on the review itself: no)."""
    cluster = kubeconfig["clusters"][0]["cluster"]
    context = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
            ca.write(base64.b64decode(cluster["certificate-authority-data"]).decode())
            ca.flush()
            context = ssl.create_default_context(cafile=ca.name)
    request = urllib.request.Request(
        f"{cluster['server']}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        data=json.dumps(ACCESS_REVIEW).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310 - https only
            return bool(json.load(response).get("status", {}).get("allowed"))
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return False
        raise


async def wait_until_allowed(probe: Callable[[], bool], timeout: float = TIMEOUT_SECONDS,
                             interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic,
                             sleep: Callable[[float], Any] = asyncio.sleep) -> int:
    """Poll `probe` (in a thread: it blocks on the network) until it says yes; the attempts it took."""
    deadline = clock() + timeout
    attempts = 0
    while True:
        attempts += 1
        if await asyncio.to_thread(probe):
            return attempts
        if clock() >= deadline:
            raise AccessNotGranted(
                f"the deployer's AKS RBAC Cluster Admin assignment gave no access within {int(timeout)} s "
                "(Azure documents up to 5 minutes); run `pulumi up` again")
        await sleep(interval)


def under_mocks() -> bool:
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockMonitor
    return isinstance(settings.get_monitor(), MockMonitor)


def kubeconfig_once_allowed(kubeconfig: str) -> Coroutine[Any, Any, str]:
    """`kubeconfig`, returned once the identity it signs in as may use the cluster (an awaitable
    for Output.apply, so the wait never blocks the rest of the program)."""
    return _once_allowed(kubeconfig)


async def _once_allowed(kubeconfig: str) -> str:
    # A preview writes nothing (and runs as the read-only identity, which this review would deny).
    if not under_mocks() and not pulumi.runtime.is_dry_run():
        doc = json.loads(kubeconfig)
        await wait_until_allowed(lambda: access_allowed(doc, exec_token(doc)))
    return kubeconfig
