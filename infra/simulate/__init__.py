"""The day, simulated: a stack's load replayed through its scaling policy and the node autoscaler.

`engine` (pure: no Pulumi) steps the HPA controller (`hpa`), pods and nodes; `inputs` reads a
ClusterSpec into the engine's inputs; `command` is `venv/bin/im-platform simulate`.
"""
