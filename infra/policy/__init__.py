"""The policy rules (`rules`, pure, shared with the Pulumi policy pack in `policy/`) and `check`,
which runs them over offline plans.
"""
