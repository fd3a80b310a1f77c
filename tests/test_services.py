"""The IM service tiers, the cluster add-ons and the Kubernetes provider on all three clouds, read
from what the program registered under the offline plan (inputs and resource options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.spec import SPOT_TAINT
from infra.offline.plan import Plan
from tests.conftest import ROOT, plan_config, spec_plan, stack_plan
from tests.contract import COMPONENT_TYPE, ancestors, pools
from tests.test_cli import cli_in_process, copy_stack
from tests.test_services_config import SERVICES

PROVIDER_TYPE = "pulumi:providers:kubernetes"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
RELEASE = "kubernetes:helm.sh/v3:Release"
BUFFER = {"gateway": {"pods": 2, "cpu": "3", "memory": "6Gi"}}
# The idle-timeout annotation each cloud's layer-4 load balancer needs for long-lived WebSockets.
IDLE_TIMEOUT = {"aws": ("service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-443", "tcp.idle_timeout.seconds=3600"),
                "azure": ("service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout", "60"),
                "gcp": ("cloud.google.com/l4-rbs", "enabled")}

_PLANS: dict[str, Plan] = {}
# The same public name on every cloud (prod-aws and prod-azure also get the traffic stack's names).
TLS = {"hosts": ["chat-test.example.com"], "zone": "example.com"}


def services_plan(cloud: str) -> Plan:
    """The contract cluster with three tiers and a capacity buffer, planned once per cloud."""
    if cloud not in _PLANS:
        _PLANS[cloud] = spec_plan(cloud, extra={"im-platform:services": SERVICES, "im-platform:capacityBuffer": BUFFER,
                                                "im-platform:tls": TLS})
    return _PLANS[cloud]


@pytest.fixture
def plan(cloud: str) -> Plan:
    return services_plan(cloud)


def kube(plan: Plan) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"].startswith("kubernetes:")]


def named(plan: Plan, type_: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = [r for r in plan.of_type(type_) if r["inputs"]["metadata"]["name"] == name
             and (namespace is None or r["inputs"]["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"expected one {type_} {name}, found {len(found)}"
    return found[0]


def pod_spec(plan: Plan, name: str) -> dict[str, Any]:
    return named(plan, DEPLOYMENT, name)["inputs"]["spec"]["template"]["spec"]


def container(plan: Plan, name: str) -> dict[str, Any]:
    containers = pod_spec(plan, name)["containers"]
    assert len(containers) == 1
    return containers[0]


def tolerated(spec: dict[str, Any]) -> set[str]:
    out = set()
    for t in spec.get("tolerations") or []:
        assert t["operator"] == "Equal", "a toleration names the exact taint, never a wildcard"
        out.add(f"{t['key']}={t['value']}:{t['effect']}")
    return out


# -- item 1: one explicit provider, built from the cluster ----------------------------------------

def test_one_provider_from_the_cluster_kubeconfig_with_stable_identity(plan: Plan, cloud: str) -> None:
    provider = plan.one(PROVIDER_TYPE)
    component = plan.one(COMPONENT_TYPE[cloud])
    assert provider["parent"] == component["urn"]
    inputs = provider["inputs"]
    assert inputs["kubeconfig"] == "[secret]", "the exec-auth kubeconfig stays secret in state"
    assert inputs["clusterIdentifier"] == plan.outputs["clusterName"], "replaced only with the cluster (pitfall 7)"
    assert inputs["enableServerSideApply"] in (True, "true")
    assert "context" not in inputs and "cluster" not in inputs, "nothing that picks from an ambient kubeconfig"


def test_every_kubernetes_object_names_the_explicit_provider(plan: Plan) -> None:
    provider = plan.one(PROVIDER_TYPE)
    objects = kube(plan)
    assert len(objects) >= 30
    for r in objects:
        assert r["options"]["provider"], f"{r['urn']} would fall back to the ambient kubeconfig"
        assert r["options"]["provider"].split("::")[:-1] == provider["urn"].split("::"), r["urn"]


def test_everything_hangs_under_the_cluster_component_and_nothing_is_unknown(plan: Plan, cloud: str) -> None:
    assert "[unknown]" not in json.dumps(plan.to_json())
    for r in kube(plan) + plan.of_type(PROVIDER_TYPE):
        assert COMPONENT_TYPE[cloud] in ancestors(plan, r), r["urn"]
    tiers = plan.of_type("im-platform:k8s:ServiceTier")
    assert sorted(t["name"] for t in tiers) == [f"im-prod-{cloud}-svc-{n}" for n in sorted(SERVICES)]
    for r in kube(plan):
        assert r["name"].startswith(f"im-prod-{cloud}-"), "logical names derive from the component name"


def test_every_object_carries_the_platform_labels(plan: Plan) -> None:
    for r in kube(plan):
        if r["type"] == RELEASE:
            continue
        labels = r["inputs"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "im-platform", r["urn"]
        assert labels["app.kubernetes.io/managed-by"] == "im-platform", r["urn"]
        assert labels["app.kubernetes.io/name"], r["urn"]


# -- item 2: the tiers ----------------------------------------------------------------------------

def test_namespaces_enforce_restricted_pod_security_and_deny_by_default(plan: Plan) -> None:
    namespaces = {r["inputs"]["metadata"]["name"]: r["inputs"]["metadata"]["labels"] for r in plan.of_type(NAMESPACE)}
    # cert-manager's namespace is there when a traffic stack routes to the stack (prod-aws, prod-azure).
    assert set(namespaces) - {"cert-manager"} == {"gateway", "logic", "push", "im-capacity-buffer"}
    for name, labels in namespaces.items():
        if name == "cert-manager":
            # Restricted too, but no default deny: cert-manager talks to the API server, the ACME
            # directory and Route 53, whose addresses no policy can list.
            for mode in ("enforce", "audit", "warn"):
                assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            continue
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", name
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.33", name
        deny = named(plan, NETWORK_POLICY, "default-deny", name)["inputs"]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, name
        dns = named(plan, NETWORK_POLICY, "allow-dns", name)["inputs"]["spec"]["egress"][0]
        assert {p["port"] for p in dns["ports"]} == {53}


def test_workloads_are_never_in_the_default_namespace(plan: Plan) -> None:
    for r in kube(plan):
        namespace = r["inputs"].get("metadata", {}).get("namespace") or r["inputs"].get("namespace")
        assert namespace != "default", r["urn"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_deployment_takes_requests_and_limits_from_config(plan: Plan, name: str) -> None:
    resources = container(plan, name)["resources"]
    svc = SERVICES[name]
    assert resources["requests"] == {"cpu": svc["cpu"], "memory": svc["memory"]}
    assert resources["limits"]["memory"] == svc["memory"], "memory limit = request"
    assert resources["limits"]["cpu"], "a CPU limit (twice the request by default)"
    assert container(plan, name)["image"] == svc["image"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_probes_and_restricted_security_context(plan: Plan, name: str) -> None:
    c, spec = container(plan, name), pod_spec(plan, name)
    # Readiness asks healthPath; liveness and startup only that the process holds its port.
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "app"}
    for probe in ("livenessProbe", "startupProbe"):
        assert c[probe] | {"tcpSocket": {"port": "app"}} == c[probe] and "httpGet" not in c[probe], probe
    port = SERVICES[name]["port"]
    assert c["ports"] == [{"name": "app", "containerPort": port, "protocol": "TCP"}]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], "the one writable place"
    assert spec["volumes"][0]["emptyDir"]["sizeLimit"]
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(forbidden)
    # Tag-pinned images are checked against the registry on every start; digests cannot change.
    assert c["imagePullPolicy"] == ("IfNotPresent" if "@sha256:" in SERVICES[name]["image"] else "Always")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_own_service_account_without_a_token(plan: Plan, name: str) -> None:
    spec = pod_spec(plan, name)
    assert spec["serviceAccountName"] == name
    assert spec["automountServiceAccountToken"] is False
    account = named(plan, SERVICE_ACCOUNT, name, name)
    assert account["inputs"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_spread_over_zones(plan: Plan, name: str) -> None:
    constraints = {c["topologyKey"]: c for c in pod_spec(plan, name)["topologySpreadConstraints"]}
    zone = constraints["topology.kubernetes.io/zone"]
    assert zone["maxSkew"] == 1
    assert zone["labelSelector"]["matchLabels"] == named(plan, DEPLOYMENT, name)["inputs"]["spec"]["selector"]["matchLabels"]


def test_each_tier_is_scheduled_onto_its_pool_and_tolerates_exactly_its_taints(plan: Plan, cloud: str) -> None:
    declared = pools(plan, cloud)  # the taints each cloud really put on the nodes
    gateway = pod_spec(plan, "gateway")
    assert gateway["nodeSelector"] == {"im-platform/pool": "gateway"}
    assert tolerated(gateway) == declared["gateway"].taints
    push = pod_spec(plan, "push")
    assert push["nodeSelector"] == {"im-platform/pool": "worker"}
    assert tolerated(push) == declared["worker"].taints, "every taint of the spot pool, the cloud's own included"
    assert SPOT_TAINT.render() in tolerated(push)
    logic = pod_spec(plan, "logic")
    assert "nodeSelector" not in logic, "no pool: any node without a taint"
    assert not any("spot" in t for t in tolerated(logic) | tolerated(gateway)), "spot only where the tier allows it"


def test_rollouts_never_take_a_pod_away_first_and_the_hpa_owns_replicas(plan: Plan) -> None:
    for name in SERVICES:
        spec = named(plan, DEPLOYMENT, name)["inputs"]["spec"]
        assert spec["strategy"]["type"] == "RollingUpdate"
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert "replicas" not in spec, "a pulumi up must not reset the count the HPA chose"
    assert named(plan, DEPLOYMENT, "gateway")["inputs"]["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "10%"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_pods_drain_before_they_stop(plan: Plan, name: str) -> None:
    drain = SERVICES[name].get("drainSeconds", 30)
    spec = pod_spec(plan, name)
    assert spec["terminationGracePeriodSeconds"] > drain
    assert container(plan, name)["lifecycle"]["preStop"] == {"sleep": {"seconds": drain}}, "no shell needed"


def test_no_drain_means_no_prestop_and_a_shared_namespace_is_declared_once() -> None:
    services = json.loads(json.dumps(SERVICES))
    services["logic"].update(drainSeconds=0, replicas={"min": 1, "max": 3})
    for svc in services.values():
        svc["namespace"] = "im"
    plan = plan_config("gcp", environment="dev", extra={"im-platform:services": services})
    logic = pod_spec(plan, "logic")
    assert "lifecycle" not in logic["containers"][0] and logic["terminationGracePeriodSeconds"] == 30
    assert [r["inputs"]["metadata"]["name"] for r in plan.of_type(NAMESPACE)] == ["im"]
    assert len(plan.of_type("im-platform:k8s:Namespace")) == 1
    assert {r["inputs"]["metadata"]["namespace"] for r in plan.of_type(DEPLOYMENT)} == {"im"}
    assert named(plan, HPA, "logic")["inputs"]["spec"]["minReplicas"] == 1, "one replica is fine outside prod"


def test_tiers_are_deployed_after_their_namespace_denies_and_their_priority_exists(plan: Plan) -> None:
    for name in SERVICES:
        deployment = named(plan, DEPLOYMENT, name)
        depends = deployment["options"]["dependsOn"]
        assert any(d.endswith(f"-ns-{name}-default-deny") for d in depends), depends
        assert any(d.endswith("-addons-tier-priority") for d in depends), depends
        assert pod_spec(plan, name)["priorityClassName"] == "im-platform-tier"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_hpa_scales_on_cpu_between_min_and_max(plan: Plan, name: str) -> None:
    spec = named(plan, HPA, name)["inputs"]["spec"]
    svc = SERVICES[name]
    assert named(plan, HPA, name)["inputs"]["apiVersion"] == "autoscaling/v2"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (svc["replicas"]["min"], svc["replicas"]["max"])
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": svc.get("targetCpuPercent", 70)}
    up = spec["behavior"]["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0, "a login burst is met at once"


def test_gateways_scale_down_slowly_and_in_steps(plan: Plan) -> None:
    gateway = named(plan, HPA, "gateway")["inputs"]["spec"]["behavior"]["scaleDown"]
    logic = named(plan, HPA, "logic")["inputs"]["spec"]["behavior"]["scaleDown"]
    assert gateway["stabilizationWindowSeconds"] >= 600 > logic["stabilizationWindowSeconds"]
    steps = {p["type"]: p for p in gateway["policies"]}
    assert steps["Pods"]["value"] == 1 and steps["Percent"]["value"] <= 10
    assert all(p["periodSeconds"] >= 120 for p in gateway["policies"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_disruption_budget_protects_capacity_but_lets_a_node_drain(plan: Plan, name: str) -> None:
    spec = named(plan, PDB, name)["inputs"]["spec"]
    assert "minAvailable" not in spec
    assert spec["maxUnavailable"] not in (0, "0", "0%"), "zero would block every node drain"
    assert spec["selector"]["matchLabels"] == named(plan, DEPLOYMENT, name)["inputs"]["spec"]["selector"]["matchLabels"]
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    if name == "gateway":
        assert spec["maxUnavailable"] == 1, "one connection pod drains at a time"


def test_public_tier_gets_a_layer4_load_balancer_with_long_idle_timeouts(plan: Plan, cloud: str) -> None:
    gateway = named(plan, SERVICE, "gateway")["inputs"]
    assert gateway["spec"]["type"] == "LoadBalancer"
    assert gateway["spec"]["externalTrafficPolicy"] == "Local"
    # 443 reaches the TLS sidecar, never the plain port.
    assert gateway["spec"]["ports"] == [{"name": "app", "protocol": "TCP", "port": 443, "targetPort": "tls"}]
    key, value = IDLE_TIMEOUT[cloud]
    assert gateway["metadata"]["annotations"][key] == value
    if cloud == "aws":
        assert "deregistration_delay.timeout_seconds=300" in gateway["metadata"]["annotations"][
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
    for name in ("logic", "push"):
        internal = named(plan, SERVICE, name)["inputs"]
        assert internal["spec"]["type"] == "ClusterIP" and not internal["metadata"].get("annotations")
    public = plan.outputs["services"]["gateway"]["publicAddress"]
    assert public.endswith(":443") and len(public) > 10
    assert plan.outputs["services"]["logic"] == {"namespace": "logic", "address": "logic.logic.svc.cluster.local:9090"}
    assert plan.outputs["services"]["gateway"]["address"] == "gateway.gateway.svc.cluster.local:443"


def test_network_policies_allow_exactly_what_each_tier_needs(plan: Plan) -> None:
    def policy(name: str) -> dict[str, Any]:
        return named(plan, NETWORK_POLICY, name, name)["inputs"]["spec"]

    def peers(rule: dict[str, Any], key: str) -> set[tuple[str, str]]:
        return {(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                 p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]) for p in rule.get(key, [])}

    gateway, logic, push = policy("gateway"), policy("logic"), policy("push")
    for spec in (gateway, logic, push):
        assert spec["policyTypes"] == ["Ingress", "Egress"]
    # The gateway: from anywhere to its TLS sidecar only; its plain port from the node network only
    # (the load balancer's health checks); out to logic.
    assert gateway["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}]},
                                  {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 8080}]}]
    assert [peers(r, "to") for r in gateway["egress"]] == [{("logic", "logic")}]
    # Logic: only from gateway pods, out to push.
    (ingress,) = logic["ingress"]
    assert peers(ingress, "from") == {("gateway", "gateway")} and ingress["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert [peers(r, "to") for r in logic["egress"]] == [{("push", "push")}]
    # Push: only from logic, out to the internet on 443 (APNs, FCM).
    assert peers(push["ingress"][0], "from") == {("logic", "logic")}
    assert push["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]


# -- item 3: add-ons and the capacity buffer -------------------------------------------------------

def test_capacity_buffer_holds_warm_room_below_every_tier(plan: Plan, cloud: str) -> None:
    classes = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in plan.of_type(PRIORITY_CLASS)}
    tier, buffer = classes["im-platform-tier"], classes["im-platform-capacity-buffer"]
    assert buffer["value"] < 0 < tier["value"], "any real pod preempts a placeholder"
    assert buffer["value"] >= -10, "above the autoscaler's expendable cutoff, or no node is added for it"
    assert buffer["preemptionPolicy"] == "Never" and not buffer["globalDefault"] and not tier["globalDefault"]
    placeholder = named(plan, DEPLOYMENT, "buffer-gateway", "im-capacity-buffer")["inputs"]["spec"]
    assert placeholder["replicas"] == BUFFER["gateway"]["pods"]
    pod = placeholder["template"]["spec"]
    assert pod["priorityClassName"] == "im-platform-capacity-buffer"
    assert pod["nodeSelector"] == {"im-platform/pool": "gateway"}
    assert tolerated(pod) == pools(plan, cloud)["gateway"].taints
    (c,) = pod["containers"]
    assert "@sha256:" in c["image"] and c["image"].startswith("registry.k8s.io/pause:")
    request = {"cpu": BUFFER["gateway"]["cpu"], "memory": BUFFER["gateway"]["memory"]}
    assert c["resources"] == {"requests": request, "limits": request}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["automountServiceAccountToken"] is False


def test_eks_runs_a_pinned_cluster_autoscaler_with_its_own_scoped_role() -> None:
    plan = services_plan("aws")
    releases = {r["inputs"]["name"]: r for r in plan.of_type(RELEASE)}
    assert set(releases) == {"cluster-autoscaler", "metrics-server", "aws-load-balancer-controller", "cert-manager"}
    ca = releases["cluster-autoscaler"]["inputs"]
    assert ca["chart"] == "cluster-autoscaler" and ca["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert ca["version"].count(".") == 2 and ca["version"][0].isdigit(), "a pinned chart version"
    assert ca["namespace"] == "kube-system"
    values = ca["values"]
    assert values["autoDiscovery"]["clusterName"] == plan.outputs["clusterName"]
    assert values["image"]["tag"].startswith("v1.33."), "the autoscaler's minor matches the cluster's"
    assert values["nodeSelector"] == {"im-platform/pool": "system"}
    args = values["extraArgs"]
    assert args["max-graceful-termination-sec"] >= 300 + 30, "scale-down waits for the slowest drain"
    assert args["skip-nodes-with-local-storage"] is False and args["expendable-pods-priority-cutoff"] == -10

    role = next(r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("addons-cluster-autoscaler"))
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == values["rbac"]["serviceAccount"]["name"]
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-name"] == plan.outputs["clusterName"]
    policy = json.loads(next(r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
                             if r["name"].endswith("addons-cluster-autoscaler"))["inputs"]["policy"])
    scaling = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in scaling["Action"]
    assert scaling["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{plan.outputs['clusterName']}": "owned"}
    assert not any("SetDesiredCapacity" in s["Action"] and "Condition" not in s for s in policy["Statement"])

    association = next(r for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                       if r["name"].endswith("addons-cluster-autoscaler"))["inputs"]
    assert (association["namespace"], association["serviceAccount"]) == ("kube-system", "cluster-autoscaler")
    assert association["roleArn"].endswith(f":role/{role['inputs']['name']}")
    assert any(d.endswith("PodIdentityAssociation::im-prod-aws-addons-cluster-autoscaler")
               for d in releases["cluster-autoscaler"]["options"]["dependsOn"]), "credentials before the pod starts"
    metrics = releases["metrics-server"]["inputs"]
    assert metrics["repositoryOpts"]["repo"].startswith("https://kubernetes-sigs.github.io/metrics-server")
    assert metrics["version"].count(".") == 2 and metrics["values"]["replicas"] == 2


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_gke_and_aks_use_their_built_in_autoscaler_and_metrics(cloud: str) -> None:
    plan = services_plan(cloud)
    # The only chart is cert-manager (for the public tiers' certificates): no autoscaler, no metrics-server.
    assert {r["inputs"]["name"] for r in plan.of_type(RELEASE)} == {"cert-manager"}
    assert not [r for r in plan.resources if "autoscaler" in r["name"] and not r["type"].startswith("kubernetes:")]
    bare = spec_plan(cloud, stack=f"bare-{cloud}")
    assert not kube(bare) and not bare.of_type(PROVIDER_TYPE), "no services, no buffer: nothing on the cluster"


def test_eks_gets_its_add_ons_even_without_services() -> None:
    bare = spec_plan("aws", stack="bare-aws")
    assert {r["inputs"]["name"] for r in bare.of_type(RELEASE)} == {"cluster-autoscaler", "metrics-server",
                                                                    "aws-load-balancer-controller"}
    assert not bare.of_type(DEPLOYMENT) and not bare.of_type(PRIORITY_CLASS)
    assert "services" not in bare.outputs


# -- the same checks hold where it matters: stacks, the CLI, imports --------------------------------

# With services, only the selected cloud's SDK is imported: test_contract.test_only_the_selected_cloud_sdk_is_imported.


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda s: s["gateway"].update(pool="gatway"), "im-platform:services.gateway.pool is \"gatway\": expected the name of a pool"),
    (lambda s: s["gateway"].update(image="ghcr.io/acme/im-gateway:latest"), "im-platform:services.gateway.image is"),
    (lambda s: s["logic"].update(replicas={"min": 5, "max": 2}), "im-platform:services.logic.replicas.min is 5, but max is 2"),
])
def test_bad_service_config_stops_the_plan_with_one_message(tmp_path: Path, edit: Any, expected: str) -> None:
    def change(config: dict[str, Any]) -> None:
        edit(config["im-platform:services"])
    result = cli_in_process("plan", "--config-file", str(copy_stack(tmp_path, "broken", change)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"config error: {expected}")
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("stack", ["dev-aws", "prod-aws", "staging-gcp", "prod-azure"])
def test_example_stacks_carry_gateway_logic_and_push(stack: str) -> None:
    plan = stack_plan(stack)
    tiers = {r["inputs"]["metadata"]["name"]: r for r in plan.of_type(DEPLOYMENT)
             if r["inputs"]["metadata"]["labels"]["app.kubernetes.io/component"] == "tier"}
    assert set(tiers) == {"gateway", "logic", "push"}
    gateway = named(plan, SERVICE, "gateway")["inputs"]["spec"]
    assert gateway["type"] == "LoadBalancer" and gateway["externalTrafficPolicy"] == "Local"
    for r in tiers.values():
        image = r["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    assert all(r["options"]["provider"] for r in kube(plan))


def test_every_supported_kubernetes_minor_has_a_matching_autoscaler_and_the_readme_names_the_charts() -> None:
    from components.k8s import addons_aws
    from infra.config.loader import SUPPORTED_MINORS
    for minor in SUPPORTED_MINORS:
        assert addons_aws.AUTOSCALER_IMAGE_TAGS[f"1.{minor}"].startswith(f"v1.{minor}."), minor
    readme = (ROOT / "docs" / "services.md").read_text()  # what each tier gets, per cloud
    assert f"`cluster-autoscaler` {addons_aws.AUTOSCALER_CHART_VERSION}" in readme
    assert f"`metrics-server` {addons_aws.METRICS_SERVER_CHART_VERSION}" in readme
    assert f"`aws-load-balancer-controller` {addons_aws.LB_CONTROLLER_CHART_VERSION}" in readme


# -- probes: liveness asks only whether the process is alive ------------------------------------


def _probe_key(probe: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What kube-score compares (score/probes/probes.go, the "Pod Probes" check): an httpGet's path
    and port, a tcpSocket's port, an exec's command. Named ports are compared by name here, which is
    stricter than kube-score's IntValue() (0 for every name)."""
    if not probe:
        return None
    if "httpGet" in probe:
        return ("http", probe["httpGet"].get("path"), probe["httpGet"].get("port"))
    if "tcpSocket" in probe:
        return ("tcp", probe["tcpSocket"].get("port"))
    if "exec" in probe:
        return ("exec", tuple(probe["exec"].get("command") or ()))
    return ("other", json.dumps(probe, sort_keys=True))


def test_no_stack_has_a_container_whose_liveness_asks_what_its_readiness_asks() -> None:
    # kube-score's pod-probes-identical: "Using the same probe for liveness and readiness is very
    # likely dangerous" (https://github.com/zegl/kube-score/blob/master/README_PROBES.md): when a
    # dependency stalls, every pod fails liveness at once and restarts, dropping every WebSocket.
    from infra.config.services import BUFFER_NAMESPACE
    from infra.config.stackfiles import all_stacks

    checked = 0
    for stack in all_stacks():
        for deployment in stack_plan(stack).of_type(DEPLOYMENT):
            if deployment["inputs"]["metadata"].get("namespace") == BUFFER_NAMESPACE:
                continue  # placeholder pods hold room and serve nothing: no Service, no dependency
            pod = deployment["inputs"]["spec"]["template"]["spec"]
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                if c.get("readinessProbe") and c.get("livenessProbe"):
                    checked += 1
                    assert _probe_key(c["readinessProbe"]) != _probe_key(c["livenessProbe"]), (stack, c["name"])
                    # Liveness never asks the readiness path (it may check dependencies).
                    assert (c["livenessProbe"].get("httpGet") or {}).get("path") != c["readinessProbe"].get(
                        "httpGet", {}).get("path"), (stack, c["name"])
    assert checked >= 10


def test_the_tls_sidecar_has_probes_of_its_own_on_its_own_ports() -> None:
    from components.k8s import tls as tls_parts

    plan = stack_plan("prod-aws")
    pod = next(d for d in plan.of_type(DEPLOYMENT) if d["inputs"]["metadata"]["name"] == "gateway")["inputs"]["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    names = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": tls_parts.PROXY_LIVENESS_PATH, "port": tls_parts.PROXY_HEALTH_PORT_NAME}
    assert sidecar["readinessProbe"]["tcpSocket"] == {"port": tls_parts.PROXY_PORT_NAME}
    assert set(names) == {tls_parts.PROXY_PORT_NAME, tls_parts.PROXY_HEALTH_PORT_NAME}
    # Envoy answers the liveness path on the health port itself, whatever the tier does.
    config = next(r for r in plan.of_type("kubernetes:core/v1:ConfigMap")
                  if r["inputs"]["metadata"]["name"] == f"gateway-{tls_parts.PROXY_NAME}")["inputs"]["data"]
    listeners = {lst["name"]: lst for lst in json.loads(config["envoy.yaml"])["static_resources"]["listeners"]}
    health = listeners["health"]
    assert health["address"]["socket_address"]["port_value"] == names[tls_parts.PROXY_HEALTH_PORT_NAME]
    assert "transport_socket" not in health["filter_chains"][0]
    (route,) = health["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert route == {"match": {"path": tls_parts.PROXY_LIVENESS_PATH}, "direct_response": {"status": 200}}
    assert listeners["tls"]["address"]["socket_address"]["port_value"] == names[tls_parts.PROXY_PORT_NAME]


def test_a_liveness_path_is_asked_by_liveness_and_startup_only() -> None:
    services = {**SERVICES, "gateway": {**SERVICES["gateway"], "livenessPath": "/livez", "healthPath": "/ready"}}
    plan = spec_plan("aws", extra={"im-platform:services": services})
    pod = next(d for d in plan.of_type(DEPLOYMENT) if d["inputs"]["metadata"]["name"] == "gateway")["inputs"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == c["startupProbe"]["httpGet"]["path"] == "/livez"


def test_the_probe_table_in_docs_services_is_what_the_plan_declares() -> None:
    import re

    text = (ROOT / "docs" / "services.md").read_text()
    table = text.split("| Probe | Asks | The image answers | When it fails |", 1)[1].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:] if line.startswith("| ")}
    assert set(rows) == {"readiness", "liveness", "startup"}
    pod = next(d for d in stack_plan("prod-aws").of_type(DEPLOYMENT)
               if d["inputs"]["metadata"]["name"] == "gateway")["inputs"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    for name, key in (("readiness", "readinessProbe"), ("liveness", "livenessProbe"), ("startup", "startupProbe")):
        probe, row = c[key], rows[name]
        assert f"every {probe['periodSeconds']} s" in row, (name, row)
        if name == "startup":
            assert f"up to {probe['periodSeconds'] * probe['failureThreshold'] // 60} minutes" in row, row
        else:
            assert re.search(rf"\| {probe['failureThreshold']} failures:", row), (name, row)
    assert "`healthPath`" in rows["readiness"] and "httpGet" in c["readinessProbe"]
    assert "TCP connect to `port`" in rows["liveness"] and c["livenessProbe"]["tcpSocket"] == {"port": "app"}
