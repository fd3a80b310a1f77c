"""The traffic stack (`im-platform:traffic`): no cluster, one public name switched between the two
stacks of a DR pair by DNS failover on health. `infra.traffic.config` reads it; the program
declares it through `components.dns` (one module per DNS provider)."""
