"""The IM cluster on AWS: EKS with managed node groups on private subnets in three zones."""

from __future__ import annotations

import ipaddress
import json

import pulumi
import pulumi_aws as aws

from components import naming
from components.base import ClusterComponent, ClusterOutputs, StackKey, exec_kubeconfig
from components.spec import ClusterSpec, NodePoolSpec

ZONES = 3
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "ecr": "AmazonEC2ContainerRegistryReadOnly",
    # The VPC CNI runs on the host network with the node's role; Pod Identity serves workloads.
    "cni": "AmazonEKS_CNI_Policy",
    # Node access through Session Manager instead of SSH keys and open ports.
    "ssm": "AmazonSSMManagedInstanceCore",
}
# Every x86 shape of the table in components/shapes.py runs the standard AL2023 image.
AMI_TYPE = "AL2023_x86_64_STANDARD"
AMI_TYPES = {"x86_64": AMI_TYPE, "arm64": "AL2023_ARM_64_STANDARD"}  # a pool's arch picks its AMI
# EKS access policies of im-platform:cluster.admins / viewers, granted on the whole cluster. The
# view policy is Kubernetes' `view` role: read-only and no Secrets (AmazonEKSAdminViewPolicy would
# show Secrets), the same as GKE's container.viewer and AKS's RBAC Reader.
ACCESS_POLICIES = {"admin": "AmazonEKSClusterAdminPolicy", "viewer": "AmazonEKSViewPolicy"}
ROOT_VOLUME_GIB = 50


def subnet_cidrs(network_cidr: str) -> tuple[list[str], list[str]]:
    """Three private subnets take three quarters of the network (VPC CNI gives pods VPC
    addresses, so they are large); three small public ones, for NAT and load balancers, share
    the last quarter."""
    net = ipaddress.IPv4Network(network_cidr)
    quarters = list(net.subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))[:ZONES]
    return [str(q) for q in quarters[:ZONES]], [str(p) for p in public]


def assume_role_policy(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }],
    })


class EksCluster(ClusterComponent):
    TYPE = "im-platform:aws:EksCluster"

    # The IAM OIDC provider of the cluster's issuer: IRSA roles of this cluster's workloads trust it.
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]

    def _build(self, name: str, spec: ClusterSpec) -> ClusterOutputs:
        partition = aws.get_partition_output().partition
        zones = aws.get_availability_zones_output(state="available").names

        private_subnets, nat_gateways = self._network(name, spec, zones)
        key = aws.kms.Key(
            naming.child_name(name, "secrets"),
            description=f"Envelope encryption of Kubernetes secrets in {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self.tags,
            opts=self.opts(protect_in_prod=True),
        )
        aws.kms.Alias(
            naming.child_name(name, "secrets"),
            name=f"alias/{naming.physical_name(name, 'secrets')}",
            target_key_id=key.key_id,
            opts=self.opts(),
        )
        # Created before the cluster so EKS writes into a group with a retention period instead of
        # creating one that keeps audit logs (and their cost) forever.
        log_group = aws.cloudwatch.LogGroup(
            naming.child_name(name, "control-plane"),
            name=f"/aws/eks/{name}/cluster",
            retention_in_days=365 if spec.is_prod else 30,
            tags=self.tags,
            opts=self.opts(),
        )

        cluster_role = aws.iam.Role(
            naming.child_name(name, "cluster"),
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            tags=self.tags,
            opts=self.opts(),
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            naming.child_name(name, "cluster-policy"),
            role=cluster_role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/AmazonEKSClusterPolicy"),
            opts=self.opts(),
        )

        cluster = aws.eks.Cluster(
            naming.child_name(name, "eks"),
            name=name,
            role_arn=cluster_role.arn,
            version=spec.kubernetes_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=private_subnets,
                endpoint_private_access=True,
                # Public only when apiAllowedCidrs lists who may reach it, and then only them.
                endpoint_public_access=spec.api_public,
                public_access_cidrs=list(spec.api_allowed_cidrs) if spec.api_public else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            access_config=aws.eks.ClusterAccessConfigArgs(
                # Access entries, not the aws-auth ConfigMap: access is declared and auditable.
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                ip_family="ipv4",
                service_ipv4_cidr=spec.service_cidr,
            ),
            # STANDARD support: a cluster left on an old version is upgraded, not billed for
            # extended support at six times the control-plane price.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=spec.is_prod,
            tags=self.tags,
            opts=self.opts(protect_in_prod=True, depends_on=[log_group, cluster_policy]),
        )

        self._access(name, spec, cluster, partition)

        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index]
        oidc_provider = aws.iam.OpenIdConnectProvider(
            naming.child_name(name, "oidc"),
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=self.tags,
            opts=self.opts(),
        )

        node_role = aws.iam.Role(
            naming.child_name(name, "node"),
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=self.tags,
            opts=self.opts(),
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                naming.child_name(name, "node", short),
                role=node_role.name,
                policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", policy),
                opts=self.opts(),
            )
            for short, policy in NODE_POLICIES.items()
        ]

        # Managed add-ons in front of the nodes: the VPC CNI enforces NetworkPolicy, the Pod
        # Identity agent gives workloads their own IAM roles (workload identity).
        vpc_cni = self._addon(name, cluster, "vpc-cni", json.dumps({"enableNetworkPolicy": "true"}))
        early_addons = [vpc_cni,
                        self._addon(name, cluster, "eks-pod-identity-agent"),
                        self._addon(name, cluster, "kube-proxy")]

        groups = [
            self._node_group(name, spec, pool, cluster, node_role, private_subnets,
                             depends_on=[*node_policies, *early_addons, *nat_gateways])
            for pool in spec.node_pools
        ]
        system_group = groups[[p.is_system for p in spec.node_pools].index(True)]
        # CoreDNS needs a node to run on; without one the add-on waits until it times out.
        self._addon(name, cluster, "coredns", depends_on=[system_group])

        kubeconfig = pulumi.Output.all(cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda args: exec_kubeconfig(
                name, args[0], args[1], "aws",
                ["--region", spec.region, "eks", "get-token", "--cluster-name", name, "--output", "json"],
                install_hint="Install the AWS CLI v2: https://docs.aws.amazon.com/cli/",
            )
        )
        self.oidc_provider_arn = oidc_provider.arn
        self.oidc_provider_url = oidc_provider.url
        # What a managed Prometheus scraper attaches to (components/metrics/aws.py).
        self.cluster_arn: pulumi.Output[str] = cluster.arn
        self.private_subnet_ids: list[pulumi.Output[str]] = list(private_subnets)
        return ClusterOutputs(cluster_name=cluster.name, endpoint=cluster.endpoint,
                              kubeconfig=kubeconfig, oidc_issuer=issuer, node_pool_resources=list(groups),
                              key=StackKey(id=key.arn))

    # -- who may use the cluster ---------------------------------------------------------------

    def _access(self, name: str, spec: ClusterSpec, cluster: aws.eks.Cluster, partition: pulumi.Output[str]) -> None:
        """An access entry per admin and viewer (the cluster's authentication mode is API), each with
        its access policy on the whole cluster. The creator keeps its own bootstrap entry."""
        for role, principals in (("admin", spec.admins), ("viewer", spec.viewers)):
            for principal in principals:
                key = naming.principal_key(principal)
                entry = aws.eks.AccessEntry(
                    naming.child_name(name, role, key),
                    cluster_name=cluster.name,
                    principal_arn=principal,
                    type="STANDARD",
                    tags=self.tags,
                    opts=self.opts(),
                )
                aws.eks.AccessPolicyAssociation(
                    naming.child_name(name, role, key),
                    cluster_name=cluster.name,
                    principal_arn=principal,
                    policy_arn=pulumi.Output.concat("arn:", partition, ":eks::aws:cluster-access-policy/",
                                                    ACCESS_POLICIES[role]),
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    # EKS refuses a policy for a principal that has no access entry yet.
                    opts=self.opts(depends_on=[entry]),
                )

    # -- network -------------------------------------------------------------------------------

    def _network(self, name: str, spec: ClusterSpec,
                 zones: pulumi.Output[list[str]]) -> tuple[list[pulumi.Output[str]], list[pulumi.Resource]]:
        vpc = aws.ec2.Vpc(
            naming.child_name(name, "vpc"),
            cidr_block=spec.network_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**self.tags, "Name": naming.physical_name(name, "vpc")},
            opts=self.opts(),
        )
        # The AWS Load Balancer Controller is told its VPC, so it never asks the node's metadata service.
        self.vpc_id: pulumi.Output[str] = vpc.id
        # The default security group of a VPC allows all traffic between its members: empty it.
        aws.ec2.DefaultSecurityGroup(
            naming.child_name(name, "default-sg"),
            vpc_id=vpc.id,
            tags={**self.tags, "Name": naming.physical_name(name, "default-closed")},
            opts=self.opts(),
        )
        igw = aws.ec2.InternetGateway(
            naming.child_name(name, "igw"),
            vpc_id=vpc.id,
            tags={**self.tags, "Name": naming.physical_name(name, "igw")},
            opts=self.opts(),
        )
        public_rt = aws.ec2.RouteTable(
            naming.child_name(name, "public"),
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**self.tags, "Name": naming.physical_name(name, "public")},
            opts=self.opts(),
        )
        private_cidrs, public_cidrs = subnet_cidrs(spec.network_cidr)
        # One NAT gateway per zone in prod, so losing a zone does not cut the others off; one
        # shared NAT gateway elsewhere (a NAT gateway costs about as much as a small node).
        nat_count = ZONES if spec.is_prod else 1
        private_ids: list[pulumi.Output[str]] = []
        nats: list[pulumi.Resource] = []
        for i in range(ZONES):
            zone = zones.apply(lambda names, i=i: names[i])  # type: ignore[misc]
            suffix = f"{i + 1}"
            public = aws.ec2.Subnet(
                naming.child_name(name, "public", suffix),
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**self.tags, "Name": naming.physical_name(name, "public", suffix),
                      "kubernetes.io/role/elb": "1"},
                opts=self.opts(),
            )
            aws.ec2.RouteTableAssociation(
                naming.child_name(name, "public", suffix),
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=self.opts(),
            )
            if i < nat_count:
                eip = aws.ec2.Eip(
                    naming.child_name(name, "nat", suffix),
                    domain="vpc",
                    tags={**self.tags, "Name": naming.physical_name(name, "nat", suffix)},
                    opts=self.opts(),
                )
                nats.append(aws.ec2.NatGateway(
                    naming.child_name(name, "nat", suffix),
                    allocation_id=eip.id,
                    subnet_id=public.id,
                    tags={**self.tags, "Name": naming.physical_name(name, "nat", suffix)},
                    opts=self.opts(depends_on=[igw]),
                ))
            private = aws.ec2.Subnet(
                naming.child_name(name, "private", suffix),
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=zone,
                tags={**self.tags, "Name": naming.physical_name(name, "private", suffix),
                      "kubernetes.io/role/internal-elb": "1"},
                opts=self.opts(),
            )
            private_rt = aws.ec2.RouteTable(
                naming.child_name(name, "private", suffix),
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0",
                                                    nat_gateway_id=nats[min(i, nat_count - 1)].id)],  # type: ignore[attr-defined]
                tags={**self.tags, "Name": naming.physical_name(name, "private", suffix)},
                opts=self.opts(),
            )
            aws.ec2.RouteTableAssociation(
                naming.child_name(name, "private", suffix),
                subnet_id=private.id,
                route_table_id=private_rt.id,
                opts=self.opts(),
            )
            private_ids.append(private.id)
        return private_ids, nats

    # -- add-ons and node groups ----------------------------------------------------------------

    def _addon(self, name: str, cluster: aws.eks.Cluster, addon: str, configuration: str | None = None,
               depends_on: list[pulumi.Resource] | None = None) -> aws.eks.Addon:
        return aws.eks.Addon(
            naming.child_name(name, addon),
            cluster_name=cluster.name,
            addon_name=addon,
            configuration_values=configuration,
            # EKS installs vpc-cni, kube-proxy and coredns itself; the managed add-on takes them
            # over on create, and later updates keep settings changed outside this program.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=self.tags,
            opts=self.opts(depends_on=depends_on or []),
        )

    def _node_group(self, name: str, spec: ClusterSpec, pool: NodePoolSpec, cluster: aws.eks.Cluster,
                    node_role: aws.iam.Role, subnets: list[pulumi.Output[str]],
                    depends_on: list[pulumi.Resource]) -> aws.eks.NodeGroup:
        pool_tags = {**self.tags, "im-platform-pool": pool.name}
        template = aws.ec2.LaunchTemplate(
            naming.child_name(name, pool.name),
            name_prefix=f"{naming.physical_name(name, pool.name)}-",
            description=f"Nodes of the {pool.name} pool of {name}",
            # IMDSv2 only, one hop: pods cannot borrow the node's credentials through the metadata
            # service; they get their own through Pod Identity / IRSA.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=ROOT_VOLUME_GIB, volume_type="gp3", encrypted="true", delete_on_termination="true",
                ),
            )],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=pool_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            update_default_version=True,
            tags=pool_tags,
            opts=self.opts(),
        )
        return aws.eks.NodeGroup(
            naming.child_name(name, pool.name),
            cluster_name=cluster.name,
            # A prefix, not a fixed name: a change that replaces the group creates the new one
            # before the old one is drained, so the tier never drops to zero nodes (pitfall 5).
            node_group_name_prefix=f"{pool.name}-",
            node_role_arn=node_role.arn,
            subnet_ids=subnets,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=pool.min_nodes, min_size=pool.min_nodes, max_size=pool.max_nodes,
            ),
            instance_types=list(pool.machine_types),
            capacity_type="SPOT" if pool.spot else "ON_DEMAND",
            ami_type=AMI_TYPES[pool.arch],
            version=spec.kubernetes_version,
            labels=pool.node_labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=TAINT_EFFECTS[t.effect])
                    for t in pool.node_taints] or None,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str),
            ),
            # EKS always surges (new nodes first); this bounds how many old nodes drain at once.
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            tags=pool_tags,
            opts=self.opts(
                depends_on=depends_on,
                # The cluster autoscaler owns the node count: without this, every `pulumi up`
                # resets it to minNodes (pitfall 1). min/max stay managed here (pitfall 2).
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
