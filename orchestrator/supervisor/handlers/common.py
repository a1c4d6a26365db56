"""Who sent a message, as the supervisor's handlers need to know it."""

from __future__ import annotations

from bus.protocol import Message
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.table import AgentTable
from swarm_core.errors import PolicyDenied
from swarm_core.peers import GATEWAY, OPERATOR_PREFIX


def requester(table: AgentTable, msg: Message) -> AgentRecord:
    """The live agent that sent ``msg``; PolicyDenied for anybody else."""
    rec = table.get(msg.header.src)
    if rec is None:
        raise PolicyDenied(f"{msg.header.src} is not an agent of this swarm")
    if rec.terminal:
        raise PolicyDenied(f"agent {rec.id} is {rec.status}")
    return rec


def is_operator(table: AgentTable, msg: Message) -> bool:
    """A CLI peer: never an agent (agent names may not take the operator prefix)."""
    src = msg.header.src
    return src.startswith(OPERATOR_PREFIX) and table.get(src) is None


def gateway_report(table: AgentTable, msg: Message, live_only: bool = True) -> AgentRecord | None:
    """The agent a gateway report is about; None for reports from elsewhere (or too late)."""
    if msg.header.src != GATEWAY:
        return None
    rec = table.get(msg.body.agent_id)
    return None if rec is None or (live_only and rec.terminal) else rec
