"""Budgets (tokens, dollars) are counted by the gateway; when one is spent it says so in a usage report."""

from __future__ import annotations

from orchestrator.supervisor.guards.base import Guard, Stop
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m


class Budget(Guard):
    """Stop an agent whose usage report carries a stop reason (e.g. ``budget_exhausted``)."""

    def on_usage(self, rec: AgentRecord, usage: m.Usage) -> Stop | None:
        return Stop(rec.id, usage.stop_reason) if usage.stop_reason else None
