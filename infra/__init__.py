"""The im-platform Pulumi program and its offline tooling."""
