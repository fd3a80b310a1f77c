"""Failover of a DR pair: the orchestration (`orchestrator`, no Pulumi import), the real `Control`
over the Automation API (`control`) and `venv/bin/im-platform failover` (`command`).

The contract's import path: `from infra.failover import Control, Report, failover`.
"""

from infra.failover.orchestrator import Control, Report, failover

__all__ = ["Control", "Report", "failover"]
