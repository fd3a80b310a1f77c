"""Computed outputs of the GCP resources and invokes the program uses.

Ids follow the shapes the Google provider returns (`projects/<p>/locations/<r>/clusters/<name>`, ...)
so inputs built from them read like the real thing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from infra.offline.mocks.common import FAKE_CA, autoname, config_value, digest

COMPUTE = "https://www.googleapis.com/compute/v1"
CONTAINER = "https://container.googleapis.com/v1"
# The patch and GKE build a "1.<minor>" pin resolves to.
GKE_PATCH = "5-gke.1080000"


def project(args: MockResourceArgs | None = None) -> str:
    given = args.inputs.get("project") if args else None
    return given if isinstance(given, str) and given else config_value("gcp:project", "im-platform-test")


def region(args: MockResourceArgs | None = None) -> str:
    given = args.inputs.get("region") if args else None
    return given if isinstance(given, str) and given else config_value("gcp:region", "asia-east1")


def project_number(project_id: str) -> str:
    return str(int(digest("project-number", project_id, length=12), 16) % 10**12).rjust(12, "1")


def _ip(kind: str, name: str, network: str) -> str:
    net = ipaddress.ip_network(network)
    offset = int(digest(kind, name, length=6), 16) % (net.num_addresses - 2) + 1
    return str(net.network_address + offset)


def _master_version(requested: Any) -> str:
    """What GKE resolves a min_master_version of "1.33" (or an exact version) to."""
    text = str(requested or "1.33")
    return f"{text}.{GKE_PATCH}" if re.fullmatch(r"\d+\.\d+", text) else text


# ---------------------------------------------------------------------------------------------
# Resources.

# Subnet ranges by id, so a cluster's private endpoint lands inside its node subnet as on GKE.
_SUBNET_RANGES: dict[str, str] = {}


def _network(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    rid = f"projects/{project(args)}/global/networks/{name}"
    return rid, {"name": name, "selfLink": f"{COMPUTE}/{rid}", "numericId": str(int(digest("net", name, length=12), 16)),
                 "gatewayIpv4": ""}


def _subnetwork(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    rid = f"projects/{project(args)}/regions/{region(args)}/subnetworks/{name}"
    cidr = str(args.inputs.get("ipCidrRange") or "10.20.0.0/16")
    _SUBNET_RANGES[rid] = cidr
    return rid, {"name": name, "selfLink": f"{COMPUTE}/{rid}", "gatewayAddress": str(ipaddress.ip_network(cidr)[1]),
                 "fingerprint": digest("subnet-fp", name, length=12)}


def _router(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    rid = f"projects/{project(args)}/regions/{region(args)}/routers/{name}"
    return rid, {"name": name, "selfLink": f"{COMPUTE}/{rid}", "creationTimestamp": "2025-01-01T00:00:00.000-08:00"}


def _router_nat(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return f"{project(args)}/{region(args)}/{args.inputs.get('router')}/{name}", {"name": name}


def _key_ring(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return f"projects/{project(args)}/locations/{args.inputs.get('location') or region()}/keyRings/{name}", {"name": name}


def _crypto_key(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    rid = f"{args.inputs.get('keyRing')}/cryptoKeys/{name}"
    return rid, {"name": name, "primaries": [{"name": f"{rid}/cryptoKeyVersions/1", "state": "ENABLED"}]}


def _iam_member(key: str) -> Any:
    def fn(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid = f"{args.inputs.get(key)}/{args.inputs.get('role')}/{args.inputs.get('member')}"
        return rid, {"etag": f"BwY{digest('etag', rid, length=9)}="}
    return fn


def _service_account(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    p = project(args)
    email = f"{args.inputs.get('accountId')}@{p}.iam.gserviceaccount.com"
    rid = f"projects/{p}/serviceAccounts/{email}"
    return rid, {"name": rid, "email": email, "member": f"serviceAccount:{email}",
                 "uniqueId": str(int(digest("sa", email, length=15), 16)).rjust(21, "1")[:21]}


def _cluster(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    location = args.inputs.get("location") or region()
    rid = f"projects/{project(args)}/locations/{location}/clusters/{name}"
    private_config = dict(args.inputs.get("privateClusterConfig") or {})
    subnet_range = _SUBNET_RANGES.get(str(args.inputs.get("subnetwork")), "10.20.0.0/16")
    private_ip = _ip("private-endpoint", name, subnet_range)
    public_ip = _ip("public-endpoint", name, "34.80.0.0/16")
    private_config.update({"privateEndpoint": private_ip, "peeringName": ""})
    if not private_config.get("enablePrivateEndpoint"):
        private_config["publicEndpoint"] = public_ip
    version = _master_version(args.inputs.get("minMasterVersion"))
    return rid, {
        "name": name,
        "selfLink": f"{CONTAINER}/{rid}",
        "endpoint": private_ip if private_config.get("enablePrivateEndpoint") else public_ip,
        "masterVersion": version,
        "nodeVersion": version,
        "masterAuth": {**dict(args.inputs.get("masterAuth") or {}), "clusterCaCertificate": FAKE_CA,
                       "clientCertificate": "", "clientKey": ""},
        "privateClusterConfig": private_config,
        # GKE assigns every cluster a DNS endpoint, whether or not it admits external traffic.
        "controlPlaneEndpointsConfig": _endpoints_config(args, name, location),
        "labelFingerprint": digest("labels", name, length=8),
        "operation": "",
        "servicesIpv4Cidr": "",
        "tpuIpv4CidrBlock": "",
    }


def _endpoints_config(args: MockResourceArgs, name: str, location: str) -> dict[str, Any]:
    config = dict(args.inputs.get("controlPlaneEndpointsConfig") or {})
    dns = dict(config.get("dnsEndpointConfig") or {})
    dns["endpoint"] = f"gke-{digest('dns', project(args), location, name, length=32)}.{location}.gke.goog"
    return {**config, "dnsEndpointConfig": dns}


def _node_pool(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    cluster = str(args.inputs.get("cluster"))
    zones = [f"{region()}-{z}" for z in "abc"]
    groups = [f"{COMPUTE}/projects/{project(args)}/zones/{z}/instanceGroupManagers/gke-{name}-{digest(name, z, length=8)}-grp"
              for z in zones]
    return f"{cluster}/nodePools/{name}", {
        "name": name,
        "nodeLocations": zones,
        "instanceGroupUrls": groups,
        "managedInstanceGroupUrls": groups,
        "operation": "",
    }


def _bucket(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return name, {"name": name, "url": f"gs://{name}", "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
                  "location": str(args.inputs.get("location") or region()).upper(), "projectNumber": project_number(project(args)),
                  "timeCreated": "2026-01-01T00:00:00.000Z", "effectiveLabels": dict(args.inputs.get("labels") or {})}


def _bucket_iam_member(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid = f"b/{args.inputs.get('bucket')}/{args.inputs.get('role')}/{args.inputs.get('member')}"
    return rid, {"etag": f"CAE={digest('etag', rid, length=6)}"}


def _sa_iam_member(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid = f"{args.inputs.get('serviceAccountId')}/{args.inputs.get('role')}/{args.inputs.get('member')}"
    return rid, {"etag": f"BwY{digest('etag', rid, length=9)}="}


def _service(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    return f"{project(args)}/{args.inputs.get('service')}", {}


def _pool(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    pool = str(args.inputs.get("workloadIdentityPoolId"))
    rid = f"projects/{project(args)}/locations/global/workloadIdentityPools/{pool}"
    return rid, {"name": f"projects/{project_number(project(args))}/locations/global/workloadIdentityPools/{pool}",
                 "state": "ACTIVE", "mode": "FEDERATION_ONLY"}


def _pool_provider(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    pool, provider = args.inputs.get("workloadIdentityPoolId"), args.inputs.get("workloadIdentityPoolProviderId")
    path = f"locations/global/workloadIdentityPools/{pool}/providers/{provider}"
    return f"projects/{project(args)}/{path}", {
        "name": f"projects/{project_number(project(args))}/{path}", "state": "ACTIVE"}


RESOURCES = {
    "gcp:storage/bucket:Bucket": _bucket,
    "gcp:storage/bucketIAMMember:BucketIAMMember": _bucket_iam_member,
    "gcp:serviceaccount/iAMMember:IAMMember": _sa_iam_member,
    "gcp:projects/service:Service": _service,
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": _pool,
    "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider": _pool_provider,
    "gcp:compute/network:Network": _network,
    "gcp:compute/subnetwork:Subnetwork": _subnetwork,
    "gcp:compute/router:Router": _router,
    "gcp:compute/routerNat:RouterNat": _router_nat,
    "gcp:kms/keyRing:KeyRing": _key_ring,
    "gcp:kms/cryptoKey:CryptoKey": _crypto_key,
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": _iam_member("cryptoKeyId"),
    "gcp:serviceaccount/account:Account": _service_account,
    "gcp:projects/iAMMember:IAMMember": _iam_member("project"),
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _node_pool,
}


# ---------------------------------------------------------------------------------------------
# Invokes.


def _get_project(args: MockCallArgs) -> dict[str, Any]:
    pid = str(args.args.get("projectId") or project())
    number = project_number(pid)
    return {"id": f"projects/{pid}", "projectId": pid, "name": pid, "number": number,
            "orgId": "123456789012", "folderId": "", "billingAccount": "", "autoCreateNetwork": True,
            "labels": {}, "effectiveLabels": {}, "pulumiLabels": {}, "tags": {}, "deletionPolicy": "PREVENT"}


def _storage_agent(args: MockCallArgs) -> dict[str, Any]:
    pid = str(args.args.get("project") or project())
    email = f"service-{project_number(pid)}@gs-project-accounts.iam.gserviceaccount.com"
    return {"id": email, "emailAddress": email, "member": f"serviceAccount:{email}", "project": pid}


CALLS = {
    "gcp:organizations/getProject:getProject": _get_project,
    "gcp:storage/getProjectServiceAccount:getProjectServiceAccount": _storage_agent,
}
