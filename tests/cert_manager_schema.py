"""The shape of cert-manager's v1 ClusterIssuer and Certificate (the fields of the cert-manager.io/v1
CRDs the platform may use, strict: an unknown or misspelt field is an error), for the manifest
schema test. kubernetes-validate bundles only built-in kinds, and the chart installs the CRDs at
deploy time, so the offline check holds the objects to this subset of the CRDs' OpenAPI schemas."""

from __future__ import annotations

from typing import Any


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


STRING: dict[str, Any] = {"type": "string"}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}
STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": STRING}
SECRET_KEY_REF = obj({"name": STRING, "key": STRING}, ("name",))
METADATA: dict[str, Any] = {"type": "object"}  # checked by the built-in ObjectMeta rules elsewhere

ROUTE53 = obj({
    "region": STRING, "hostedZoneID": STRING, "role": STRING,
    "accessKeyID": STRING, "accessKeyIDSecretRef": SECRET_KEY_REF, "secretAccessKeySecretRef": SECRET_KEY_REF,
    "auth": obj({"kubernetes": obj({"serviceAccountRef": obj({"name": STRING, "audiences": STRINGS}, ("name",))},
                                   ("serviceAccountRef",))}, ("kubernetes",)),
})
SOLVER = obj({
    "selector": obj({"dnsZones": STRINGS, "dnsNames": STRINGS, "matchLabels": STRING_MAP}),
    "dns01": obj({"route53": ROUTE53, "cnameStrategy": {"enum": ["None", "Follow"]}}),
    "http01": {"type": "object"},
})
ACME = obj({
    "server": STRING, "email": STRING, "privateKeySecretRef": SECRET_KEY_REF,
    "solvers": {"type": "array", "items": SOLVER},
    "skipTLSVerify": {"type": "boolean"}, "preferredChain": STRING, "profile": STRING,
    "disableAccountKeyGeneration": {"type": "boolean"}, "enableDurationFeature": {"type": "boolean"},
    "caBundle": STRING, "externalAccountBinding": {"type": "object"},
}, ("server", "privateKeySecretRef"))
ISSUER_SPEC = obj({"acme": ACME, "ca": {"type": "object"}, "selfSigned": {"type": "object"},
                   "vault": {"type": "object"}, "venafi": {"type": "object"}})
CERTIFICATE_SPEC = obj({
    "secretName": STRING, "dnsNames": STRINGS, "commonName": STRING, "ipAddresses": STRINGS, "uris": STRINGS,
    "emailAddresses": STRINGS, "duration": STRING, "renewBefore": STRING, "renewBeforePercentage": {"type": "integer"},
    "issuerRef": obj({"name": STRING, "kind": STRING, "group": STRING}, ("name",)),
    "privateKey": obj({"algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                       "rotationPolicy": {"enum": ["Never", "Always"]}, "encoding": {"enum": ["PKCS1", "PKCS8"]}}),
    "secretTemplate": obj({"labels": STRING_MAP, "annotations": STRING_MAP}),
    "usages": STRINGS, "isCA": {"type": "boolean"}, "revisionHistoryLimit": {"type": "integer"},
}, ("secretName", "issuerRef"))


def top(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return obj({"apiVersion": {"const": "cert-manager.io/v1"}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
               ("apiVersion", "kind", "metadata", "spec"))


SCHEMAS = {
    ("cert-manager.io/v1", "ClusterIssuer"): top("ClusterIssuer", ISSUER_SPEC),
    ("cert-manager.io/v1", "Issuer"): top("Issuer", ISSUER_SPEC),
    ("cert-manager.io/v1", "Certificate"): top("Certificate", CERTIFICATE_SPEC),
}
