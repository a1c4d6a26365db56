"""Who sent a message, as the supervisor's handlers need to know it.

Authorization is not decided here: the table (``swarm_core.authz``) was
applied by the broker's gate and again by the dispatch before any handler
runs. These helpers only look up the records a handler works on.
"""

from __future__ import annotations

from bus.protocol import Message
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.table import AgentTable
from swarm_core.errors import PolicyDenied


def requester(table: AgentTable, msg: Message) -> AgentRecord:
    """The record of the agent that sent ``msg`` (the table admitted only agents); PolicyDenied otherwise."""
    rec = table.get(msg.header.src)
    if rec is None:
        raise PolicyDenied(f"{msg.header.src} is not an agent of this swarm")
    return rec


def reported_agent(table: AgentTable, agent_id: str, live_only: bool = True) -> AgentRecord | None:
    """The agent a gateway report is about; None when unknown (or, with ``live_only``, ended)."""
    rec = table.get(agent_id)
    return None if rec is None or (live_only and rec.terminal) else rec
