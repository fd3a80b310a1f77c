"""The kubernetes stack kind (`im-platform:cloud: kubernetes`): an existing cluster reached through a
kubeconfig, with the IM tiers and the cloud-neutral add-ons on it and no cloud resource at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config.errors import ConfigError
from infra.config.loader import load_spec
from infra.config.stackfiles import searching_beside
from infra.offline.plan import Plan, run_program
from infra.policy.rules import Context, Resource, evaluate
from tests.conftest import ROOT
from tests.plans import run_program_once, stack_plan
from tests.test_cli import cli_in_process

STACK = "dev-kubernetes"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0"  # what a leaked service account token looks like
SERVICES: dict[str, Any] = {
    "gateway": {"image": "ghcr.io/acme/im-gateway:2.4.1", "port": 8080, "pool": "gateway", "cpu": "500m",
                "memory": "1Gi", "replicas": {"min": 1, "max": 4}},
    "logic": {"image": "ghcr.io/acme/im-logic:2.4.1", "port": 9090, "cpu": "500m", "memory": "1Gi",
              "replicas": {"min": 1, "max": 4}, "allowFrom": ["gateway"]},
}
CLUSTER: dict[str, Any] = {
    "kubeconfig": "/etc/im-platform/kubeconfig",
    "context": "onprem-admin@onprem",
    "nodePools": {"gateway": {"labels": {"node.example.com/group": "edge"}, "vcpu": 4, "memoryGiB": 8,
                              "taints": ["dedicated=edge:NoSchedule"]}},
}


def config(cluster: Any = None, **extra: Any) -> dict[str, str]:
    """A kubernetes stack's config map; `extra` adds keys (full names), a value None removes one."""
    values: dict[str, Any] = {"im-platform:cloud": "kubernetes", "im-platform:environment": "dev",
                              "im-platform:cluster": CLUSTER if cluster is None else cluster,
                              "im-platform:services": SERVICES}
    values.update(extra)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


def cluster_with(**changes: Any) -> dict[str, Any]:
    value = json.loads(json.dumps(CLUSTER))
    value.update(changes)
    return value


def pool_with(**changes: Any) -> dict[str, Any]:
    value = cluster_with()
    value["nodePools"]["gateway"].update(changes)
    return value


def error_of(values: dict[str, str], stack: str = "dev-onprem") -> str:
    with pytest.raises(ConfigError) as info:
        load_spec(values, project="im-platform", stack=stack)
    return str(info.value)


# -- configuration ------------------------------------------------------------------------------------


def test_a_valid_stack_names_the_kubeconfig_context_and_existing_node_groups() -> None:
    spec = load_spec(config(), project="im-platform", stack="dev-onprem")
    assert (spec.cloud, spec.region, spec.kubeconfig, spec.kube_context) == (
        "kubernetes", "", "/etc/im-platform/kubeconfig", "onprem-admin@onprem")
    (pool,) = spec.node_pools
    assert not pool.managed and pool.node_selector == {"node.example.com/group": "edge"}
    assert (pool.vcpu, pool.memory_gib, pool.min_nodes, pool.max_nodes, pool.machine_types) == (4, 8, 0, 0, ())
    bare = load_spec(config(cluster={}, **{"im-platform:services": None}), project="im-platform", stack="dev-onprem")
    assert (bare.kubeconfig, bare.kube_context, bare.node_pools, bare.services) == (None, None, (), ())


@pytest.mark.parametrize(("values", "expected"), [
    # Other clouds' keys: a kubernetes stack configures no cloud provider.
    (config(**{"aws:region": "eu-west-1"}), 'aws:region is "eu-west-1", but im-platform:cloud is kubernetes: '),
    (config(**{"gcp:project": "my-project-123"}), "gcp:project is \"my-project-123\", but im-platform:cloud is kubernetes"),
    (config(**{"azure-native:location": "westeurope"}), "azure-native:location is \"westeurope\", but im-platform:cloud"),
    (config(**{"im-platform:cloud": "kubernets"}), "im-platform:cloud is \"kubernets\": expected one of aws, gcp, azure, "
                                                   "kubernetes; did you mean 'kubernetes'?"),
    # How the cluster is reached: one kubeconfig path, never its content.
    (config(cluster_with(kubeconfig="kube/config")), 'im-platform:cluster.kubeconfig is "kube/config": expected a path '
                                                     "to a kubeconfig file, absolute or under ~/"),
    (config(cluster_with(kubeconfig="~bob/.kube/config")), "the provider expands ~/ only"),
    (config(cluster_with(kubeconfig="/a/config:/b/config")), "not a $KUBECONFIG list"),
    (config(cluster_with(kubeconfig="")), "im-platform:cluster.kubeconfig is \"\": expected a path"),
    (config(cluster_with(kubeconfig={"secure": "AAABAMxyz"})), 'im-platform:cluster.kubeconfig is "[secret]": expected '
                                                               "a path to a kubeconfig file, absolute or under ~/, such as "
                                                               "~/.kube/config, in plain text"),
    (config(cluster_with(context="two words")), "im-platform:cluster.context is \"two words\": expected the name of a context"),
    (config(cluster_with(kubeconfg="~/.kube/config")), "im-platform:cluster.kubeconfg is an unknown key (expected one of: "
                                                       "kubeconfig, context, kubernetesVersion, nodePools); did you mean "
                                                       "im-platform:cluster.kubeconfig?"),
    (config(cluster_with(kubernetesVersion="1.29")), 'im-platform:cluster.kubernetesVersion is "1.29": expected a supported'),
    # What only a managed cluster has.
    (config(cluster_with(network={"cidr": "10.0.0.0/16"})), "im-platform:cluster.network is {\"cidr\": \"10.0.0.0/16\"}, but "
                                                            "im-platform:cloud is kubernetes: the cluster's network is its own"),
    (config(cluster_with(apiAllowedCidrs=[])), "im-platform:cluster.apiAllowedCidrs is [], but im-platform:cloud is kubernetes"),
    (config(cluster_with(admins=["arn:aws:iam::123456789012:role/x"])), "bind RBAC roles where the cluster is run"),
    (config(cluster_with(viewers=[])), "im-platform:cluster.viewers is [], but im-platform:cloud is kubernetes"),
    # Existing node groups: selected by labels, never sized.
    (config(pool_with(minNodes=1)), "im-platform:cluster.nodePools.gateway.minNodes is 1, but im-platform:cloud is "
                                    "kubernetes: the program neither creates nor scales an existing cluster's nodes"),
    (config(pool_with(maxNodes=9)), "im-platform:cluster.nodePools.gateway.maxNodes is 9, but im-platform:cloud is kubernetes"),
    (config(pool_with(spot=True)), "im-platform:cluster.nodePools.gateway.spot is true, but im-platform:cloud is kubernetes: "
                                   "the program neither creates nor scales an existing cluster's nodes: select spot nodes"),
    (config(pool_with(arch="arm64")), "select the architecture with a label (kubernetes.io/arch: arm64)"),
    (config(pool_with(instanceType="m7i.large")), "give the nodes' shape as vcpu and memoryGiB"),
    (config(pool_with(labels=None)), "im-platform:cluster.nodePools.gateway.labels is not set: required"),
    (config(pool_with(labels={})), "im-platform:cluster.nodePools.gateway.labels is {}: expected the labels that select"),
    (config(pool_with(labels={"tier": True})), "im-platform:cluster.nodePools.gateway.labels.tier is true: expected a label value"),
    (config(pool_with(lables={"a": "b"})), "im-platform:cluster.nodePools.gateway.lables is an unknown key (expected one of: "
                                           "labels, taints, vcpu, memoryGiB); did you mean im-platform:cluster.nodePools.gateway.labels?"),
    (config(pool_with(memoryGiB=None)), "im-platform:cluster.nodePools.gateway.memoryGiB is not set: required with vcpu"),
    (config(pool_with(taints=["dedicated"])), "im-platform:cluster.nodePools.gateway.taints[0] is \"dedicated\": expected"),
    (config(cluster_with(nodePools={"Edge": {"labels": {"a": "b"}}})),
     "im-platform:cluster.nodePools.Edge is \"Edge\": expected a pool name"),
    # Tiers and buffers against the pools there are.
    (config(cluster={}), "im-platform:services.gateway.pool is \"gateway\": expected the name of a pool in "
                         "im-platform:cluster.nodePools (it names none: add the pool, selected by its nodes' labels)"),
    (config(pool_with(vcpu=1, memoryGiB=1), **{"im-platform:services": {**SERVICES, "gateway": {**SERVICES["gateway"],
     "memory": "2Gi"}}}), 'im-platform:services.gateway.memory is "2Gi", but pool gateway has 1 GiB per node'),
    (config(**{"im-platform:capacityBuffer": {"worker": {"pods": 1, "cpu": "1", "memory": "1Gi"}}}),
     "im-platform:capacityBuffer.worker is \"worker\": expected the name of a pool in im-platform:cluster.nodePools (one of: gateway)"),
    # Sections that hold cloud resources or prices.
    (config(**{"im-platform:dr": {"peer": "prod-aws", "role": "standby"}}),
     "im-platform:dr is {\"peer\": \"prod-aws\", \"role\": \"standby\"}, but im-platform:cloud is kubernetes: a DR pair's object "
     "store, replication and trust are cloud resources"),
    (config(**{"im-platform:guardrails": {"maxNodesPerPool": 10}}), "im-platform:guardrails is {\"maxNodesPerPool\": 10}, but "
                                                                    "im-platform:cloud is kubernetes: the guardrails hold"),
    (config(**{"im-platform:cost": {"egressGiBPerMonth": 10}}), "im-platform:cost is {\"egressGiBPerMonth\": 10}, but "
                                                                "im-platform:cloud is kubernetes: `cost` prices cloud nodes"),
    # TLS: only a certificate of the user's own (ACME here solves in Route 53, with AWS IAM).
    (config(**{"im-platform:tls": {"issuer": "letsencrypt", "zone": "example.com", "hosts": ["chat.example.com"]}}),
     'im-platform:tls.issuer is "letsencrypt", but im-platform:cloud is kubernetes: ACME certificates are issued through '
     "DNS-01 challenges in Route 53"),
    (config(**{"im-platform:tls": {"hosts": ["chat.example.com"]}}), "im-platform:tls.zone is not set"),
    (config(**{"im-platform:tls": {"zone": "example.com", "hosts": ["chat.example.com"]}}),
     "im-platform:tls.issuer is not set: required on a kubernetes stack, and only own"),
    (config(**{"im-platform:tls": {"issuer": "lets-encrypt", "hosts": ["chat.example.com"]}}),
     'im-platform:tls.issuer is "lets-encrypt": expected one of letsencrypt, letsencrypt-staging, own'),
])
def test_a_bad_kubernetes_stack_is_one_config_error_naming_key_value_and_expectation(values: dict[str, str],
                                                                                   expected: str) -> None:
    message = error_of(values)
    assert message.startswith("config error: ") and "\n" not in message
    assert expected in message, message


@pytest.mark.parametrize(("values", "expected"), [
    (config(cluster_with(token=TOKEN)), "config error: im-platform:cluster.token is kubeconfig content (its value not "
                                        "shown), and a stack file, committed and copied into the state, never holds a "
                                        "credential: keep it in the kubeconfig file that im-platform:cluster.kubeconfig names"),
    (config(cluster_with(clientKeyData=TOKEN)), "config error: im-platform:cluster.clientKeyData is kubeconfig content"),
    (config(cluster_with(server="https://10.0.0.1:6443")), "config error: im-platform:cluster.server is kubeconfig content"),
    (config(cluster_with(kubeconfig=f"apiVersion: v1\nusers:\n- name: a\n  user: {{token: {TOKEN}}}\n")),
     "config error: im-platform:cluster.kubeconfig is the kubeconfig itself (its value not shown), where a path to a "
     "kubeconfig file, absolute or under ~/, such as ~/.kube/config is expected"),
    (config(cluster_with(kubeconfig={"apiVersion": "v1", "users": [{"user": {"token": TOKEN}}]})),
     "config error: im-platform:cluster.kubeconfig is the kubeconfig itself (its value not shown)"),
    (config(**{"kubernetes:kubeconfig": f'{{"users": [{{"user": {{"token": "{TOKEN}"}}}}]}}'}),
     "config error: kubernetes:kubeconfig is a key of the default Kubernetes provider (its value not shown), which the "
     "program never uses: its own provider reads im-platform:cluster.kubeconfig and im-platform:cluster.context; did "
     "you mean im-platform:cluster.kubeconfig?"),
    (config(**{"kubernetes:namespace": "im"}), "config error: kubernetes:namespace is a key of the default Kubernetes provider"),
])
def test_a_credential_in_the_stack_file_is_refused_without_repeating_it(values: dict[str, str], expected: str) -> None:
    message = error_of(values)
    assert message.startswith(expected) and "\n" not in message, message
    assert TOKEN not in message


def test_a_bad_stack_file_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev-onprem.yaml"
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{STACK}.yaml").read_text())
    doc["config"]["aws:region"] = "eu-west-1"
    path.write_text(yaml.safe_dump(doc))
    for command in (["plan"], ["check"], ["cost"], ["manifests", "--out", str(tmp_path / "out")]):
        result = cli_in_process(command[0], "--config-file", str(path), *command[1:])
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("Planning ")]
        assert lines == ['config error: aws:region is "eu-west-1", but im-platform:cloud is kubernetes: an existing '
                         "cluster's stack declares no cloud resources, so no cloud provider reads it; remove it"], lines
    assert not (tmp_path / "out").exists()


def _copy(folder: Path, name: str, edit: Any = None, source: str | None = None) -> Path:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{source or name}.yaml").read_text())
    if edit is not None:
        edit(doc["config"])
    path = folder / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_kubernetes_stack_is_never_half_of_a_dr_pair_or_behind_a_traffic_stack(tmp_path: Path) -> None:
    from infra.offline.plan import read_stack_config
    from infra.traffic.config import load_traffic

    def prod(c: dict[str, Any]) -> None:
        c["im-platform:environment"] = "prod"
        for tier in c["im-platform:services"].values():
            tier["replicas"]["min"] = 2

    _copy(tmp_path, "prod-onprem", prod, source=STACK)
    aws = _copy(tmp_path, "prod-aws", lambda c: c["im-platform:dr"].update(peer="prod-onprem"))
    traffic = _copy(tmp_path, "prod-traffic", lambda c: c["im-platform:traffic"].update(stacks=["prod-aws", "prod-onprem"]))
    with searching_beside(aws):
        values, _ = read_stack_config(aws, "im-platform")
        assert error_of(values, "prod-aws") == (
            'config error: im-platform:dr.peer is "prod-onprem", but prod-onprem is a kubernetes stack (an existing '
            "cluster, no cloud resources): expected a stack on another cloud")
        values, _ = read_stack_config(traffic, "im-platform")
        with pytest.raises(ConfigError) as info:
            load_traffic(values, project="im-platform", stack="prod-traffic")
    assert str(info.value) == ('config error: im-platform:traffic.stacks[1] is "prod-onprem", but prod-onprem is a '
                               "kubernetes stack (an existing cluster): expected one of the two cloud stacks of a DR pair")


# -- the plan ---------------------------------------------------------------------------------------------


def _plan(values: dict[str, str], stack: str = "dev-onprem") -> Plan:
    return run_program_once(stack, values)


def _one(plan: Plan, type_: str, name_part: str) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(type_) if name_part in r["name"]]
    return found


def test_the_plan_declares_only_kubernetes_objects_through_one_provider() -> None:
    for plan in (stack_plan(STACK), _plan(config(**{"im-platform:capacityBuffer": {
            "gateway": {"pods": 1, "cpu": "250m", "memory": "256Mi"}}}))):
        types = {r["type"] for r in plan.resources}
        assert not {t for t in types if t.split(":")[0] in ("aws", "gcp", "azure-native", "random", "tls")}, types
        assert {t for t in types if not t.startswith(("kubernetes:", "im-platform:"))} == {"pulumi:providers:kubernetes"}
        assert "im-platform:kubernetes:ExistingCluster" in types
        (provider,) = plan.of_type("pulumi:providers:kubernetes")
        objects = [r for r in plan.resources if r["type"].startswith("kubernetes:")]
        assert objects and all(r["options"]["provider"].startswith(provider["urn"] + "::") for r in objects)
        assert not any(r["custom"] for r in plan.resources if r["type"].startswith("im-platform:"))


def test_the_provider_reads_the_kubeconfig_and_context_of_the_stack_file() -> None:
    (provider,) = stack_plan(STACK).of_type("pulumi:providers:kubernetes")
    inputs = provider["inputs"]
    assert (inputs["kubeconfig"], inputs["context"]) == ("~/.kube/config", "kind-im-dev")
    assert json.loads(inputs["enableServerSideApply"]) is True
    # Replaced when the kubeconfig's active cluster changes, which is when the objects live elsewhere.
    assert "clusterIdentifier" not in inputs


def test_without_them_the_provider_does_its_own_lookup_whatever_kubeconfig_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh plan: the SDK reads $KUBECONFIG while the program runs, and a list of two paths in it
    would reach the provider as one path; the program passes "" instead (client-go's own rules)."""
    monkeypatch.setenv("KUBECONFIG", "/tmp/a.yaml:/tmp/b.yaml")
    plan = run_program("dev-onprem", config(cluster={"nodePools": CLUSTER["nodePools"]}))
    (provider,) = plan.of_type("pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "" and "context" not in provider["inputs"]
    assert not {"kubeconfigPath", "context"} & set(plan.outputs)


def test_the_outputs_say_what_was_reached_and_nothing_of_a_cloud() -> None:
    outputs = stack_plan(STACK).outputs
    assert {"cloud", "environment", "kubeconfigPath", "context", "nodePools", "services"} == set(outputs)
    assert (outputs["cloud"], outputs["kubeconfigPath"], outputs["context"]) == ("kubernetes", "~/.kube/config", "kind-im-dev")
    assert outputs["nodePools"] == [{"name": "gateway", "nodeSelector": {"im-platform/tier": "gateway"}, "vcpu": 4,
                                     "memoryGiB": 8, "taints": []}]


def test_tiers_and_buffers_select_the_existing_nodes_by_their_labels_and_tolerate_their_taints() -> None:
    plan = _plan(config(**{"im-platform:capacityBuffer": {"gateway": {"pods": 2, "cpu": "250m", "memory": "256Mi"}}}))
    selector = {"node.example.com/group": "edge"}
    toleration = [{"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "edge"}]
    for name in ("svc-gateway-deployment", "addons-buffer-gateway"):
        pod = _one(plan, "kubernetes:apps/v1:Deployment", name)["inputs"]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == selector, name
        assert pod["tolerations"] == toleration, name
    logic = _one(plan, "kubernetes:apps/v1:Deployment", "svc-logic")["inputs"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in logic and "tolerations" not in logic, "a tier without a pool runs on any untainted node"
    priorities = {r["inputs"]["metadata"]["name"]: r["inputs"]["value"]
                  for r in plan.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert priorities == {"im-platform-tier": 1000, "im-platform-capacity-buffer": -1}


def test_namespaces_enforce_pod_security_restricted_at_the_clusters_minor() -> None:
    plan = _plan(config(cluster_with(kubernetesVersion="1.31")))
    namespaces = plan.of_type("kubernetes:core/v1:Namespace")
    assert {n["inputs"]["metadata"]["name"] for n in namespaces} == {"gateway", "logic"}
    for namespace in namespaces:
        labels = namespace["inputs"]["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.31"
    kinds = {r["type"] for r in plan.resources if r["type"].startswith("kubernetes:")}
    assert "kubernetes:helm.sh/v3:Release" not in kinds and not any("cert-manager" in k for k in kinds), \
        "nothing a bare API server lacks the definition of"


def _check(plan: Plan, values: dict[str, str]) -> list[str]:
    spec = load_spec(values, project="im-platform", stack=plan.stack)
    return [v.rule for v in evaluate([Resource.from_plan(r) for r in plan.resources], Context.from_spec(spec))]


def test_a_public_tier_is_a_plain_load_balancer_service_behind_the_users_own_certificate() -> None:
    public = {**SERVICES, "gateway": {**SERVICES["gateway"], "public": True}}
    tls = {"issuer": "own", "hosts": ["chat.onprem.example.com"], "secretName": "chat-tls"}
    values = config(**{"im-platform:services": public, "im-platform:tls": tls})
    plan = _plan(values)
    service = _one(plan, "kubernetes:core/v1:Service", "svc-gateway")["inputs"]
    assert service["spec"]["type"] == "LoadBalancer" and "loadBalancerClass" not in service["spec"]
    assert "annotations" not in service["metadata"], "no cloud's load balancer annotations"
    pod = _one(plan, "kubernetes:apps/v1:Deployment", "svc-gateway")["inputs"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["tls-proxy"]
    assert {"name": "tls-certificate", "secret": {"defaultMode": 0o440, "optional": False, "secretName": "chat-tls"}} in pod["volumes"]
    policy = _one(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "svc-gateway")["inputs"]["spec"]
    # Only the sidecar's port: no node network of the program's to let reach the plain port.
    assert policy["ingress"] == [{"ports": [{"port": 8443, "protocol": "TCP"}]}]
    assert _check(plan, values) == []
    plain = config(**{"im-platform:services": public})
    assert _check(_plan(plain), plain) == ["public-tier-tls"], "a public tier without TLS fails the check as anywhere"


def test_the_plan_imports_no_cloud_sdk() -> None:
    code = (
        "import gc, sys, json\n"
        "gc.disable()\n"
        "from infra.offline.plan import plan_stack\n"
        f"plan_stack('{STACK}')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi_aws', 'pulumi_gcp', 'pulumi_azure_native', 'components.aws', 'components.gcp', 'components.azure'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# -- the commands -----------------------------------------------------------------------------------------


def test_plan_and_check_pass_and_stacks_lists_it_on_its_own_runner() -> None:
    plan = cli_in_process("plan", "--stack", STACK)
    assert plan.returncode == 0, plan.stderr
    assert "im-platform:kubernetes:ExistingCluster  im-dev-kubernetes" in plan.stdout
    assert "  gateway  existing nodes im-platform/tier=gateway  4 vCPU, 8 GiB" in plan.stdout
    check = cli_in_process("check", "--stack", STACK)
    assert check.returncode == 0 and "rules passed" in check.stdout, check.stdout + check.stderr
    listed = json.loads(cli_in_process("stacks", "--json").stdout)
    # No cloud at all: its jobs sign in to nothing (the kubeconfig is its runner's).
    assert {"stack": STACK, "cloud": "kubernetes", "environment": "dev", "wave": "dev",
            "runner": ["self-hosted", "im-platform", STACK], "clouds": []} in listed


def test_cost_says_the_nodes_are_not_priced_in_text_and_json() -> None:
    text = cli_in_process("cost", "--stack", STACK)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"Stack {STACK}: an existing Kubernetes cluster (im-platform:cloud kubernetes), not priced")
    assert "Not priced: nodes (the existing cluster's own" in text.stdout
    result = cli_in_process("cost", "--stack", STACK, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    # The contract's fields, all there: nothing priced, nothing silently zero.
    assert {"stack", "cloud", "region", "currency", "catalog", "pools", "fixed", "totals", "notPriced"} <= set(doc)
    assert (doc["cloud"], doc["priced"], doc["pools"], doc["fixed"]) == ("kubernetes", False, [], [])
    assert set(doc["totals"]) == {"min", "modeled", "max", "savingPercent", "fixedCapacity", "savingVsFixedCapacityPercent"}
    assert {doc["totals"][k] for k in ("min", "modeled", "max", "fixedCapacity")} == {"0.00"}
    assert [n["name"] for n in doc["notPriced"]] == ["nodes", "control plane"] and all(n["reason"] for n in doc["notPriced"])
    requests = doc["requests"]
    assert {w["name"]: (w["pool"], w["replicas"]["max"]) for w in requests["workloads"]} == {
        "im/gateway": ("gateway", 4), "im/logic": (None, 4), "im/push": (None, 4)}
    assert (requests["min"], requests["max"]) == ({"cpu": "1.25", "memoryGiB": "2.5"}, {"cpu": "5", "memoryGiB": "10"})
    compare = cli_in_process("cost", "--stack", STACK, "--compare")
    assert compare.returncode == 2 and "no node pools to price on a cloud" in compare.stderr


def test_cost_against_a_base_compares_like_any_stack(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(cli_in_process("cost", "--stack", STACK, "--json").stdout)
    doc = json.loads(cli_in_process("cost", "--stack", STACK, "--json", "--base", str(base)).stdout)
    assert doc["change"]["totals"]["max"] == {"base": "0.00", "current": "0.00", "change": "0.00", "percent": "0.0"}
    other = tmp_path / "other.json"
    other.write_text(cli_in_process("cost", "--stack", "dev-aws", "--json").stdout)
    refused = cli_in_process("cost", "--stack", STACK, "--base", str(other))
    assert refused.returncode == 2 and "not of another stack or cloud" in refused.stderr


def test_a_new_kubernetes_stack_beside_the_examples_works_with_every_command(tmp_path: Path) -> None:
    """The least a kubernetes stack file holds: the kind, the environment and an empty cluster."""
    path = tmp_path / "Pulumi.lab-kubernetes.yaml"
    path.write_text("config:\n  pulumi:disable-default-providers: [kubernetes]\n  im-platform:cloud: kubernetes\n"
                    "  im-platform:environment: lab\n  im-platform:cluster: {}\n")
    plan = cli_in_process("plan", "--config-file", str(path), "--json")
    assert plan.returncode == 0, plan.stderr
    assert [r["type"] for r in json.loads(plan.stdout)["resources"]] == ["im-platform:kubernetes:ExistingCluster"]
    for command in (["check"], ["cost"], ["cost", "--json"]):
        result = cli_in_process(command[0], "--config-file", str(path), *command[1:])
        assert result.returncode == 0, (command, result.stderr)
    # Nothing to write: a usage error, said as such.
    result = cli_in_process("manifests", "--config-file", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "lab-kubernetes declares no Kubernetes objects (no im-platform:services or im-platform:capacityBuffer on its cluster)")
    path.write_text(path.read_text().replace("im-platform:cluster: {}", "im-platform:cluster: {}\n  im-platform:services:\n"
                                             "    echo: {image: 'ghcr.io/acme/echo:1.0.0', port: 8080, cpu: 100m, memory: 64Mi,"
                                             " replicas: {min: 1, max: 1}}"))
    result = cli_in_process("manifests", "--config-file", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "echo" / "deployment-echo.yaml").is_file()


def test_a_public_tier_on_an_existing_cluster_shows_no_made_up_address(tmp_path: Path) -> None:
    # The cluster's own load balancer implementation (MetalLB, kube-vip, ...) assigns the address
    # from its pool when the Service is created (https://kubernetes.io/docs/concepts/services-networking/service/#loadbalancer:
    # "the actual creation of the load balancer happens asynchronously"): offline there is none.
    def edit(config: dict[str, Any]) -> None:
        config["im-platform:services"]["gateway"]["public"] = True
        config["im-platform:tls"] = {"issuer": "own", "hosts": ["chat.onprem.example.com"]}

    path = _copy(tmp_path, "dev-onprem", edit, source="dev-kubernetes")
    text = cli_in_process("plan", "--config-file", str(path))
    assert text.returncode == 0, text.stderr
    outputs = text.stdout.split("\nOutputs:\n", 1)[1]
    assert "publicAddress" in outputs and "assigned by the cluster's load balancer when deployed" in outputs
    assert "203.0.113." not in outputs and ".elb." not in outputs
    doc = json.loads(cli_in_process("plan", "--config-file", str(path), "--json").stdout)
    assert doc["outputs"]["services"]["gateway"]["publicAddress"] == ""
