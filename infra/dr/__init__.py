"""Disaster recovery: two cluster stacks on two clouds as a pair (`im-platform:dr`).

`infra.dr.pair` reads and validates a stack's half of the pair (against the peer's own stack file)
and lowers a standby's minimums; no Pulumi import. The object store and replication live in
`components.dr`; the public name's switch is the traffic stack (`infra.traffic`).
"""
