"""The offline plan: the real program run in-process under Pulumi's mock runtime.

`plan` runs it and records every registration, `mocks` answer for the clouds, `manifests` writes
the Kubernetes objects as YAML, `bench` times whole plans against their imports.
"""
