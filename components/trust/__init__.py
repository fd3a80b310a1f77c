"""Cross-cloud web-identity trust: one cluster's service-account tokens accepted by another cloud.

The DR copy (components/dr/) and DNS-01 from GKE and AKS (components/k8s/tls.py) both need AWS to
trust a cluster's OIDC issuer. IAM keeps one OpenID Connect provider per issuer URL per account
(its ARN is derived from the URL; a second CreateOpenIDConnectProvider answers
EntityAlreadyExists), and both stacks of a pair deploy into the same AWS account (docs/ci.md: one
account per environment). So the provider for an issuer has one owner per account, and every
other trust references it. `components.trust.aws` declares or references it; this module holds the
plain parts (no Pulumi, no cloud SDK): the audience, the subject, the issuer as IAM keys it, the
trust policy, and which provider a peer's outputs say it owns; `components.trust.reference` reads
a peer's outputs before the program goes on.

Who owns it, decided from the peer's outputs (`awsOidcProviders`: the providers a stack declared,
each with the stack whose issuer it trusts, its URL and ARN): a stack references a provider its
DR peer already declared for the same issuer in the same account, and declares one otherwise. A
pair's first deployment cannot race: a stack's trust of its peer's issuer waits for the peer's
`oidcIssuer` output, which the peer exports in the same update as its own providers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

AWS_AUDIENCE = "sts.amazonaws.com"
PROVIDERS_OUTPUT = "awsOidcProviders"


def subject(namespace: str, service_account: str) -> str:
    """The `sub` claim of a Kubernetes service-account token."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def normalize_issuer(url: str) -> str:
    """An issuer URL as one IAM provider name: no scheme, no trailing slash (an issuer written with
    and without the slash is treated as one, the cautious reading of IAM's uniqueness)."""
    return url.removeprefix("https://").rstrip("/")


def condition_prefix(provider_url: str) -> str:
    """The prefix of an IAM OIDC provider's condition keys (`<prefix>:sub`, `<prefix>:aud`), from
    the provider's own `url` output, never from the issuer string the program was given.

    AWS's IAM User Guide, "Available keys for AWS web identity federation": the keys are named after
    the provider as IAM stores it, its URL without `https://`; GetOpenIDConnectProvider returns the
    stored `Url` without the scheme, which is what the provider resource's `url` output reads back.
    An AKS issuer ends in `/`, and the token's `iss` does too: the keys are formed from whatever IAM
    holds, so they stay right whichever way IAM stores the slash."""
    return provider_url.removeprefix("https://")


def web_identity_trust(provider_arn: str, provider_url: str, subject_: str) -> str:
    """Only `subject_` of the cluster whose tokens the provider (`provider_arn`, its `url` output
    `provider_url`) verifies, with the STS audience."""
    prefix = condition_prefix(provider_url)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{prefix}:sub": subject_, f"{prefix}:aud": AWS_AUDIENCE}},
        }],
    })


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def declared_by_peer(peer_providers: Any, issuer_stack: str, account: str) -> Mapping[str, str] | None:
    """The provider the peer declared for `issuer_stack`'s issuer in `account` (its `arn` and `url`),
    from the peer's `awsOidcProviders` output; None when it declared none there."""
    if not isinstance(peer_providers, Sequence) or isinstance(peer_providers, str):
        return None
    for entry in peer_providers:
        if not isinstance(entry, Mapping):
            continue
        arn, url = entry.get("arn"), entry.get("url")
        if entry.get("stack") == issuer_stack and isinstance(arn, str) and isinstance(url, str) \
                and account_of(arn) == account:
            return {"arn": arn, "url": url}
    return None
