"""Stack configuration: the stack files in `stacks/` read and validated into the cloud-neutral spec.

`loader` is the entry (`load_spec`); `readers` the small typed readers every section uses; `services`,
`access` the sections of their own; `stackfiles` finds and reads stack files; `yamlio` the YAML
reader; `errors` the one `ConfigError` every bad input becomes. No Pulumi import.
"""
