"""The im-platform guardrails as a Pulumi policy pack (`pulumi preview --policy-pack policy`).

`policy.pack` adapts the rules of `infra.policy.rules` to pulumi-policy; `policy/__main__.py` serves them.
"""
