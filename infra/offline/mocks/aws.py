"""Computed outputs of the AWS resources and invokes the program uses."""

from __future__ import annotations

from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from infra.offline.mocks.common import ACCOUNT_ID, FAKE_CA, autoname, config_value, digest


def region() -> str:
    return config_value("aws:region", "eu-west-1")


def _arn(service: str, resource: str, regional: bool = True) -> str:
    return f"arn:aws:{service}:{region() if regional else ''}:{ACCOUNT_ID}:{resource}"


def _ec2(prefix: str, kind: str) -> Any:
    def fn(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid = f"{prefix}-{digest(kind, args.name)}"
        return rid, {"arn": _arn("ec2", f"{kind}/{rid}"), "ownerId": ACCOUNT_ID}
    return fn


def _eip(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid = f"eipalloc-{digest('eip', args.name)}"
    n = int(digest("ip", args.name, length=2), 16)
    return rid, {"allocationId": rid, "publicIp": f"198.51.100.{n % 250 + 1}", "arn": _arn("ec2", f"elastic-ip/{rid}")}


def _route_table_association(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    return f"rtbassoc-{digest('rtbassoc', args.name)}", {}


def _kms_key(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    key_id = "-".join(digest("kms", args.name, length=32)[i:j] for i, j in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))
    return key_id, {"keyId": key_id, "arn": _arn("kms", f"key/{key_id}")}


def _kms_alias(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return name, {"name": name, "arn": _arn("kms", name), "targetKeyArn": _arn("kms", f"key/{args.inputs.get('targetKeyId')}")}


def _log_group(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return name, {"name": name, "arn": _arn("logs", f"log-group:{name}")}


def _role(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return name, {"name": name, "arn": _arn("iam", f"role/{name}", regional=False),
                  "uniqueId": "AROA" + digest("role", args.name, length=17).upper()}


def _policy_attachment(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    return f"{args.inputs.get('role')}-{digest('rpa', args.name, length=8)}", {}


def _cluster(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    oidc = digest("oidc", name, length=32).upper()
    vpc_config = dict(args.inputs.get("vpcConfig") or {})
    vpc_config.update({"clusterSecurityGroupId": f"sg-{digest('clustersg', name)}",
                       "vpcId": f"vpc-{digest('vpc', name)}"})
    return name, {
        "name": name,
        "arn": _arn("eks", f"cluster/{name}"),
        "endpoint": f"https://{oidc}.gr7.{region()}.eks.amazonaws.com",
        "certificateAuthority": {"data": FAKE_CA},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region()}.amazonaws.com/id/{oidc}"}]}],
        "platformVersion": "eks.8",
        "status": "ACTIVE",
        "clusterId": digest("clusterid", name, length=36),
        "vpcConfig": vpc_config,
    }


def _oidc_provider(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    # IAM stores (and GetOpenIDConnectProvider returns, and so the provider's `url` output reads)
    # the URL without its scheme, a trailing slash kept.
    url = str(args.inputs.get("url", "")).removeprefix("https://")
    arn = _arn("iam", f"oidc-provider/{url}", regional=False)
    return arn, {"arn": arn, "url": url}


def _addon(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    cluster, addon = args.inputs.get("clusterName"), args.inputs.get("addonName")
    return f"{cluster}:{addon}", {"arn": _arn("eks", f"addon/{cluster}/{addon}/{digest('addon', args.name, length=8)}"),
                                  "addonVersion": "v1.0.0-eksbuild.1"}


def _launch_template(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    rid = f"lt-{digest('lt', args.name)}"
    return rid, {"arn": _arn("ec2", f"launch-template/{rid}"), "latestVersion": 1, "defaultVersion": 1,
                 "name": autoname(args)}


def _node_group(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    cluster = args.inputs.get("clusterName")
    name = autoname(args, "nodeGroupName")
    return f"{cluster}:{name}", {
        "nodeGroupName": name,
        "arn": _arn("eks", f"nodegroup/{cluster}/{name}/{digest('ng', args.name, length=8)}"),
        "status": "ACTIVE",
        "releaseVersion": "1.33.0-20251101",
        "resources": [{"autoscalingGroups": [{"name": f"eks-{name}-{digest('asg', args.name, length=8)}"}]}],
    }


def _bucket(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args, "bucket")
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": region(),
                  "bucketDomainName": f"{name}.s3.amazonaws.com",
                  "bucketRegionalDomainName": f"{name}.s3.{region()}.amazonaws.com",
                  "hostedZoneId": "Z1BKCTXD74EZPE"}


def _bucket_part(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    """A bucket's sub-resource (versioning, encryption, ...): its id is the bucket's name."""
    return str(args.inputs.get("bucket")), {}


def _role_policy(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = autoname(args)
    return f"{args.inputs.get('role')}:{name}", {"name": name}


def _record(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    name = str(args.inputs.get("name", "")).rstrip(".")
    zone = args.inputs.get("zoneId", "")
    ident = args.inputs.get("setIdentifier")
    return f"{zone}_{name}_{args.inputs.get('type', '')}" + (f"_{ident}" if ident else ""), {"fqdn": name}


def _health_check(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    h = digest("health-check", args.name, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}", {"arn": _arn("route53", f"healthcheck/{h}", regional=False)}


def _zone(args: MockCallArgs) -> dict[str, Any]:
    name = str(args.args.get("name", "example.com")).rstrip(".")
    zone_id = "Z" + digest("zone", name, length=20).upper()
    return {"id": zone_id, "zoneId": zone_id, "name": name, "privateZone": False,
            "arn": f"arn:aws:route53:::hostedzone/{zone_id}", "nameServers": [f"ns-1.awsdns-00.{name}"]}


def _amp_workspace(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    wid = f"ws-{digest('amp', args.name, length=8)}-{digest('amp2', args.name, length=4)}-{digest('amp3', args.name, length=4)}"
    return wid, {"arn": _arn("aps", f"workspace/{wid}"),
                 "prometheusEndpoint": f"https://aps-workspaces.{region()}.amazonaws.com/workspaces/{wid}/"}


def _amp_scraper(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    sid = f"s-{digest('scraper', args.name, length=8)}"
    return sid, {"arn": _arn("aps", f"scraper/{sid}"),
                 "roleArn": _arn("iam", "role/aws-service-role/scraper.aps.amazonaws.com/AWSServiceRoleForAmazonPrometheusScraper_"
                                 + digest("scraper-role", args.name, length=12), regional=False)}


def _access_entry(args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
    cluster, principal = args.inputs.get("clusterName"), args.inputs.get("principalArn")
    return f"{cluster}:{principal}", {"accessEntryArn": _arn("eks", f"access-entry/{cluster}/{digest('ae', args.name, length=8)}")}


RESOURCES = {
    "aws:route53/record:Record": _record,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_part,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_part,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_part,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _bucket_part,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_part,
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_part,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:ec2/vpc:Vpc": _ec2("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": _ec2("igw", "internet-gateway"),
    "aws:ec2/routeTable:RouteTable": _ec2("rtb", "route-table"),
    "aws:ec2/natGateway:NatGateway": _ec2("nat", "natgateway"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _ec2("sg", "security-group"),
    "aws:ec2/securityGroup:SecurityGroup": _ec2("sg", "security-group"),
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _route_table_association,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _policy_attachment,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:eks/cluster:Cluster": _cluster,
    "aws:eks/addon:Addon": _addon,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:amp/workspace:Workspace": _amp_workspace,
    "aws:amp/scraper:Scraper": _amp_scraper,
    "aws:eks/accessEntry:AccessEntry": _access_entry,
}


def _zones(args: MockCallArgs) -> dict[str, Any]:
    r = region()
    return {"id": r, "names": [f"{r}a", f"{r}b", f"{r}c"],
            "zoneIds": [f"{r}-az{i}" for i in (1, 2, 3)], "groupNames": [r]}


def _partition(args: MockCallArgs) -> dict[str, Any]:
    return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}


def _caller(args: MockCallArgs) -> dict[str, Any]:
    return {"id": ACCOUNT_ID, "accountId": ACCOUNT_ID, "arn": _arn("iam", "user/offline-plan", regional=False),
            "userId": "AIDA" + digest("user", "offline", length=17).upper()}


CALLS = {
    "aws:route53/getZone:getZone": _zone,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _zones,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller,
}
