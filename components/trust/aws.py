"""The IAM OpenID Connect provider of a cluster's issuer in the deployer's AWS account: declared by
one stack, referenced by the other (components/trust/__init__.py says who)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.trust import AWS_AUDIENCE, PROVIDERS_OUTPUT, declared_by_peer
from components.trust.reference import read_output


@dataclass(frozen=True)
class IssuerProvider:
    arn: pulumi.Input[str]
    url: pulumi.Input[str]
    # What this stack declared (for its `awsOidcProviders` output); None when it references the peer's.
    declared: dict[str, Any] | None


def caller_account(opts: pulumi.InvokeOptions | None = None) -> str:
    """The deployer's AWS account, known before anything is declared (an invoke runs in a preview)."""
    return str(aws.get_caller_identity(opts=opts).account_id)


def issuer_provider(name: str, issuer: pulumi.Input[str], issuer_stack: str, peer: pulumi.StackReference | None, *,
                    tags: pulumi.Input[dict[str, str]], opts: pulumi.ResourceOptions,
                    invoke: pulumi.InvokeOptions | None = None) -> IssuerProvider:
    """The provider trusting `issuer_stack`'s issuer: the one the peer declared in this account, or
    a new one named `name` (its entry for this stack's `awsOidcProviders` output)."""
    existing = declared_by_peer(read_output(peer, PROVIDERS_OUTPUT), issuer_stack, caller_account(invoke))
    if existing is not None:
        return IssuerProvider(existing["arn"], existing["url"], None)
    provider = aws.iam.OpenIdConnectProvider(name, url=issuer, client_id_lists=[AWS_AUDIENCE], tags=tags, opts=opts)
    return IssuerProvider(provider.arn, provider.url, {"stack": issuer_stack, "url": provider.url, "arn": provider.arn})
