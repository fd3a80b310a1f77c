"""What only the GKE cluster has, read from the registrations of the offline plan."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.spec import SPOT_LABEL_KEY, SPOT_LABEL_VALUE
from infra.offline.mocks.common import FAKE_CA
from infra.offline.plan import Plan
from tests.conftest import CLUSTER, PROVIDER, cluster, spec_plan
from tests.contract import unknown_paths

COMPONENT = "im-platform:gcp:GkeCluster"
CLUSTER_TYPE = "gcp:container/cluster:Cluster"
POOL_TYPE = "gcp:container/nodePool:NodePool"
PROJECT = PROVIDER["gcp"]["gcp:project"]
REGION = PROVIDER["gcp"]["gcp:region"]
SPEC_POOLS = CLUSTER["nodePools"]
SPOT_POOLS = {name: pool.get("spot", False) for name, pool in SPEC_POOLS.items()}
# Logs, metrics, metadata and image pulls: all a node needs, nothing like Editor.
NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer",
              "roles/stackdriver.resourceMetadata.writer", "roles/artifactregistry.reader")


@pytest.fixture(scope="module")
def prod() -> Plan:
    """The shared spec in prod: the API is public, restricted to apiAllowedCidrs."""
    return spec_plan("gcp")


@pytest.fixture(scope="module")
def dev_private() -> Plan:
    """A dev stack with no apiAllowedCidrs: the API endpoint is private only."""
    return spec_plan("gcp", environment="dev", cluster_value=cluster(apiAllowedCidrs=[]))


def gke(plan: Plan) -> dict[str, Any]:
    inputs: dict[str, Any] = plan.one(CLUSTER_TYPE)["inputs"]
    return inputs


def pools(plan: Plan) -> dict[str, dict[str, Any]]:
    """Node pools by spec pool name (the logical name ends in it)."""
    found = {r["name"].rsplit("-", 1)[-1]: r for r in plan.of_type(POOL_TYPE)}
    assert sorted(found) == sorted(SPEC_POOLS), "one NodePool per spec pool, the system pool included"
    return found


# ---------------------------------------------------------------------------------------------
# Cluster.


def test_cluster_is_regional_so_control_plane_and_pools_span_three_zones(prod: Plan) -> None:
    inputs = gke(prod)
    assert inputs["location"] == REGION
    assert "nodeLocations" not in inputs, "pinning zones would undo GKE's three-zone spread"
    assert all(p["inputs"]["location"] == REGION for p in pools(prod).values())


def test_default_pool_is_removed_and_versions_are_pinned_to_the_spec_minor(prod: Plan) -> None:
    inputs = gke(prod)
    assert inputs["removeDefaultNodePool"] is True and inputs["initialNodeCount"] == 1
    assert inputs["minMasterVersion"] == CLUSTER["kubernetesVersion"]
    assert inputs["releaseChannel"]["channel"] in ("RAPID", "REGULAR", "STABLE")
    for pool in pools(prod).values():
        assert pool["inputs"]["version"].startswith(CLUSTER["kubernetesVersion"] + "."), pool["name"]
        assert pool["inputs"]["management"] == {"autoRepair": True, "autoUpgrade": True}


def test_nodes_are_private_and_api_is_limited_to_allowed_cidrs(prod: Plan) -> None:
    inputs = gke(prod)
    assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert inputs["privateClusterConfig"]["enablePrivateEndpoint"] is False
    networks = inputs["masterAuthorizedNetworksConfig"]
    assert [b["cidrBlock"] for b in networks["cidrBlocks"]] == CLUSTER["apiAllowedCidrs"]
    assert networks["gcpPublicCidrsAccessEnabled"] is False
    assert prod.outputs["endpoint"].startswith("https://")


def test_api_endpoint_is_private_when_no_cidr_is_allowed(dev_private: Plan) -> None:
    inputs = gke(dev_private)
    assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True
    assert not (inputs.get("masterAuthorizedNetworksConfig") or {}).get("cidrBlocks")


def test_several_allowed_cidrs_are_authorized_exactly() -> None:
    allowed = ["203.0.113.0/24", "198.51.100.7/32"]
    inputs = gke(spec_plan("gcp", cluster_value=cluster(apiAllowedCidrs=allowed)))
    assert [b["cidrBlock"] for b in inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == allowed
    assert inputs["privateClusterConfig"]["enablePrivateEndpoint"] is False


def test_workload_identity_and_hardening(prod: Plan) -> None:
    inputs = gke(prod)
    assert inputs["workloadIdentityConfig"]["workloadPool"] == f"{PROJECT}.svc.id.goog"
    assert inputs["datapathProvider"] == "ADVANCED_DATAPATH"  # Dataplane V2 enforces NetworkPolicy
    assert inputs["enableShieldedNodes"] is True
    assert inputs["enableLegacyAbac"] is False
    assert inputs["masterAuth"]["clientCertificateConfig"]["issueClientCertificate"] is False
    assert "APISERVER" in inputs["loggingConfig"]["enableComponents"]
    assert inputs["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    assert inputs["resourceLabels"] == {"environment": "prod", "stack": "prod-gcp", "managed-by": "im-platform"}


def test_secrets_are_encrypted_with_the_key_after_gke_may_use_it(prod: Plan) -> None:
    ring = prod.one("gcp:kms/keyRing:KeyRing")["inputs"]
    key = prod.one("gcp:kms/cryptoKey:CryptoKey")["inputs"]
    assert ring["location"] == REGION
    assert int(key["rotationPeriod"].rstrip("s")) <= 90 * 24 * 3600
    key_id = f"projects/{PROJECT}/locations/{REGION}/keyRings/{ring['name']}/cryptoKeys/{key['name']}"
    encryption = gke(prod)["databaseEncryption"]
    assert encryption == {"state": "ENCRYPTED", "keyName": key_id}

    grant = prod.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert grant["inputs"]["cryptoKeyId"] == key_id
    assert grant["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert re.fullmatch(r"serviceAccount:service-\d+@container-engine-robot\.iam\.gserviceaccount\.com",
                        grant["inputs"]["member"])
    assert grant["urn"] in prod.one(CLUSTER_TYPE)["options"]["dependsOn"]


def test_nodes_run_as_a_dedicated_service_account_with_minimal_roles(prod: Plan) -> None:
    account = prod.one("gcp:serviceaccount/account:Account")["inputs"]
    email = f"{account['accountId']}@{PROJECT}.iam.gserviceaccount.com"
    members = prod.of_type("gcp:projects/iAMMember:IAMMember")
    assert sorted(m["inputs"]["role"] for m in members) == sorted(NODE_ROLES)
    assert {m["inputs"]["member"] for m in members} == {f"serviceAccount:{email}"}
    assert {m["inputs"]["project"] for m in members} == {PROJECT}
    assert gke(prod)["nodeConfig"]["serviceAccount"] == email  # even the throwaway default pool
    for pool in pools(prod).values():
        assert pool["inputs"]["nodeConfig"]["serviceAccount"] == email
        assert set(pool["options"]["dependsOn"]) >= {m["urn"] for m in members}


def test_network_is_custom_mode_with_pod_and_service_ranges_and_nat(prod: Plan) -> None:
    assert prod.one("gcp:compute/network:Network")["inputs"]["autoCreateSubnetworks"] is False
    subnet = prod.one("gcp:compute/subnetwork:Subnetwork")["inputs"]
    assert subnet["ipCidrRange"] == CLUSTER["network"]["cidr"]
    assert {r["rangeName"]: r["ipCidrRange"] for r in subnet["secondaryIpRanges"]} == {
        "pods": "100.64.0.0/14", "services": "172.20.0.0/20"}
    assert subnet["privateIpGoogleAccess"] is True
    assert subnet["logConfig"]["flowSampling"] > 0
    nat = prod.one("gcp:compute/routerNat:RouterNat")["inputs"]
    assert nat["router"] == prod.one("gcp:compute/router:Router")["inputs"]["name"]
    assert [s["name"] for s in nat["subnetworks"]] == [gke(prod)["subnetwork"]]


# ---------------------------------------------------------------------------------------------
# Node pools.


def test_pools_autoscale_on_totals_and_ignore_only_the_node_count(prod: Plan) -> None:
    for name, pool in pools(prod).items():
        scaling = pool["inputs"]["autoscaling"]
        assert scaling["totalMinNodeCount"] == SPEC_POOLS[name]["minNodes"], name
        assert scaling["totalMaxNodeCount"] == SPEC_POOLS[name]["maxNodes"], name
        assert "minNodeCount" not in scaling and "maxNodeCount" not in scaling, "per-zone limits would triple the spec"
        assert scaling["locationPolicy"] == ("ANY" if SPEC_POOLS[name].get("spot") else "BALANCED")
        assert sorted(pool["options"]["ignoreChanges"]) == ["initialNodeCount", "nodeCount"], name
        # Created at (at least) the minimum in every zone, never beyond the maximum.
        initial = pool["inputs"]["initialNodeCount"]
        assert initial * 3 <= SPEC_POOLS[name]["maxNodes"]
        assert initial * 3 >= SPEC_POOLS[name]["minNodes"], name


def test_min_max_edits_reach_the_pool_without_replacing_it_or_the_kubeconfig(prod: Plan) -> None:
    changed = cluster()
    changed["nodePools"]["gateway"].update(minNodes=6, maxNodes=60)
    plan = spec_plan("gcp", cluster_value=changed)
    gateway = pools(plan)["gateway"]
    scaling = gateway["inputs"]["autoscaling"]
    assert (scaling["totalMinNodeCount"], scaling["totalMaxNodeCount"]) == (6, 60)
    assert gateway["inputs"]["namePrefix"] == "gateway-", "a rename would replace the pool"
    # initialNodeCount forces a replacement when it changes (pitfall 5): the engine must ignore it.
    assert "initialNodeCount" in gateway["options"]["ignoreChanges"]
    # A changed kubeconfig replaces the Kubernetes provider and everything it deployed (pitfall 7).
    assert plan.revealed_outputs["kubeconfig"] == prod.revealed_outputs["kubeconfig"]


def test_pool_replacement_is_create_before_delete_with_a_fresh_name(prod: Plan) -> None:
    for name, pool in pools(prod).items():
        assert pool["inputs"]["namePrefix"] == f"{name}-"
        assert "name" not in pool["inputs"], "a fixed name would collide with the pool it replaces"
        assert pool["options"]["deleteBeforeReplace"] is False


def test_upgrades_surge_one_node_and_never_take_capacity_away(prod: Plan) -> None:
    for pool in pools(prod).values():
        settings = pool["inputs"]["upgradeSettings"]
        assert (settings["maxSurge"], settings["maxUnavailable"]) == (1, 0)
        assert settings.get("strategy", "SURGE") == "SURGE"


def test_nodes_are_shielded_and_hide_node_credentials_from_pods(prod: Plan) -> None:
    for pool in pools(prod).values():
        config = pool["inputs"]["nodeConfig"]
        assert config["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
        assert config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert config["metadata"]["disable-legacy-endpoints"] == "true"
        assert config["resourceLabels"]["managed-by"] == "im-platform"


def test_machine_types_labels_and_taints_follow_the_spec(prod: Plan) -> None:
    by_name = pools(prod)
    assert by_name["system"]["inputs"]["nodeConfig"]["machineType"] == "n2-standard-4"
    gateway = by_name["gateway"]["inputs"]["nodeConfig"]
    assert gateway["labels"]["im-platform/tier"] == "gateway"
    assert gateway["taints"] == [{"key": "im-platform/tier", "value": "gateway", "effect": "NO_SCHEDULE"}]


def test_spot_pool_carries_the_common_spot_label_and_taint(prod: Plan) -> None:
    spot_taint = {"key": SPOT_LABEL_KEY, "value": SPOT_LABEL_VALUE, "effect": "NO_SCHEDULE"}
    for name, pool in pools(prod).items():
        config = pool["inputs"]["nodeConfig"]
        spot = bool(SPOT_POOLS.get(name))
        assert config["spot"] is spot, name
        assert (config["labels"].get(SPOT_LABEL_KEY) == SPOT_LABEL_VALUE) is spot, name
        assert (spot_taint in config.get("taints", [])) is spot, name


# ---------------------------------------------------------------------------------------------
# Environments, names, structure, outputs.


def test_prod_protects_cluster_and_key_and_dev_does_not(prod: Plan, dev_private: Plan) -> None:
    stateful = (CLUSTER_TYPE, "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKey:CryptoKey")
    for type_ in stateful:
        assert prod.one(type_)["options"]["protect"] is True, type_
        assert dev_private.one(type_)["options"]["protect"] is False, type_
    assert gke(prod)["deletionProtection"] is True
    assert gke(dev_private)["deletionProtection"] is False
    # Pools are replaced create-before-delete; protecting them would block that.
    assert not any(p["options"]["protect"] for p in prod.of_type(POOL_TYPE))


@pytest.mark.parametrize("stack", ["prod-gcp", "prod-gcp-" + "a-very-long-stack-name" * 3])
def test_physical_names_fit_gcp_limits(stack: str) -> None:
    plan = spec_plan("gcp", stack=stack)
    name = gke(plan)["name"]
    assert len(name) <= 40 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    account = plan.one("gcp:serviceaccount/account:Account")["inputs"]["accountId"]
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account), account
    for type_ in ("gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork", "gcp:compute/router:Router",
                  "gcp:compute/routerNat:RouterNat", "gcp:kms/keyRing:KeyRing"):
        physical = plan.one(type_)["inputs"]["name"]
        assert len(physical) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", physical), (type_, physical)
    assert plan.outputs["clusterName"] == name


def test_no_input_or_output_is_unknown(prod: Plan, dev_private: Plan) -> None:
    for plan in (prod, dev_private):
        assert len(plan.resources) >= 15
        found = [p for r in plan.resources for p in unknown_paths(r["inputs"], r["name"])]
        found += unknown_paths(plan.outputs, "outputs")
        assert found == []


def test_every_child_descends_from_the_component(prod: Plan) -> None:
    component = prod.one(COMPONENT)
    parents = {r["urn"]: r["parent"] for r in prod.resources}
    children = [r for r in prod.resources if r["type"].startswith("gcp:")]
    assert len(children) == len(prod.resources) - 1 >= 15
    for r in children:
        urn, seen = r["parent"], set()
        while urn and urn != component["urn"] and urn not in seen:
            seen.add(urn)
            urn = parents.get(urn)
        assert urn == component["urn"], f"{r['name']} does not descend from {component['name']}"


def test_outputs_name_the_cluster_and_its_issuer(prod: Plan) -> None:
    name = gke(prod)["name"]
    assert prod.outputs["clusterName"] == name
    assert prod.outputs["oidcIssuer"] == (
        f"https://container.googleapis.com/v1/projects/{PROJECT}/locations/{REGION}/clusters/{name}")
    assert prod.outputs["kubeconfig"] == "[secret]"


def test_kubeconfig_reaches_the_endpoint_through_the_gke_auth_plugin(prod: Plan) -> None:
    config = json.loads(prod.revealed_outputs["kubeconfig"])
    name = gke(prod)["name"]
    assert config["current-context"] == f"gke_{PROJECT}_{REGION}_{name}"
    # The DNS endpoint's certificate is publicly trusted: the cluster CA would fail verification.
    assert config["clusters"][0]["cluster"] == {"server": prod.outputs["endpoint"]}
    assert FAKE_CA not in prod.revealed_outputs["kubeconfig"]
    user = config["users"][0]["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert "token" not in user and "client-key-data" not in user


def test_built_in_autoscaler_is_tuned_for_utilisation(prod: Plan) -> None:
    assert gke(prod)["clusterAutoscaling"] == {"enabled": False, "autoscalingProfile": "OPTIMIZE_UTILIZATION"}


def test_required_apis_are_enabled_first_and_never_disabled(prod: Plan) -> None:
    apis = {r["inputs"]["service"]: r for r in prod.of_type("gcp:projects/service:Service")}
    assert {"container.googleapis.com", "compute.googleapis.com", "cloudkms.googleapis.com"} <= set(apis)
    assert all(r["inputs"]["disableOnDestroy"] is False for r in apis.values())
    api_urns = {r["urn"] for r in apis.values()}
    for token in ("gcp:compute/network:Network", "gcp:kms/keyRing:KeyRing", "gcp:serviceaccount/account:Account"):
        assert api_urns <= set(prod.one(token)["options"]["dependsOn"]), token


def test_the_default_pools_node_config_never_replaces_the_cluster(prod: Plan, dev_private: Plan) -> None:
    """node_config only shapes the throwaway default pool; GKE reports the removed pool's config
    differently from what was sent, and any diff on it forces a replacement of the whole cluster."""
    for plan in (prod, dev_private):
        options = plan.one(CLUSTER_TYPE)["options"]
        assert "nodeConfig" in options["ignoreChanges"]
        assert gke(plan)["removeDefaultNodePool"] is True


def test_the_api_is_reached_through_the_iam_gated_dns_endpoint(prod: Plan, dev_private: Plan) -> None:
    """Private or CIDR-limited, the API answers on its DNS endpoint to IAM-authenticated callers
    from anywhere: CI runners and `pulumi up` need no route into the VPC. The IP endpoint keeps
    following apiAllowedCidrs."""
    for plan in (prod, dev_private):
        config = gke(plan)["controlPlaneEndpointsConfig"]
        assert config["dnsEndpointConfig"]["allowExternalTraffic"] is True
        assert "enableK8sTokensViaDns" not in config["dnsEndpointConfig"], "IAM tokens only"
        assert re.fullmatch(rf"https://gke-[0-9a-f]+\.{REGION}\.gke\.goog", plan.outputs["endpoint"])
        server = json.loads(plan.revealed_outputs["kubeconfig"])["clusters"][0]["cluster"]["server"]
        assert server == plan.outputs["endpoint"]
    assert gke(dev_private)["privateClusterConfig"]["enablePrivateEndpoint"] is True


def test_pods_and_services_take_the_subnets_secondary_ranges(prod: Plan) -> None:
    """VPC-native (alias IPs): pods get addresses from the `pods` range, routable in the VPC and
    through Cloud NAT; a routes-based cluster would ignore the ranges."""
    inputs = gke(prod)
    assert inputs["networkingMode"] == "VPC_NATIVE"
    assert inputs["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    subnet = prod.one("gcp:compute/subnetwork:Subnetwork")["inputs"]
    assert {r["rangeName"] for r in subnet["secondaryIpRanges"]} == {"pods", "services"}
