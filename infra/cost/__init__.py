"""What a stack costs before it is deployed: the price catalog, the cost model and `cost`.

`catalog` reads the dated price files in `catalog/` (plus a stack's override file), `model` is the
pure arithmetic (no Pulumi import), `command` is `venv/bin/im-platform cost`. README, Cost.
"""
