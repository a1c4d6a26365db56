"""The supervisor's bus handlers, by message type (one module per family of senders)."""

from __future__ import annotations

from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.handlers.agents import AgentHandlers
from orchestrator.supervisor.handlers.approvals import ApprovalHandlers
from orchestrator.supervisor.handlers.gateway import GatewayHandlers
from orchestrator.supervisor.handlers.inbox import InboxHandlers
from orchestrator.supervisor.handlers.operator import OperatorHandlers
from orchestrator.supervisor.handlers.telemetry import TelemetryHandlers
from orchestrator.supervisor.parts import Parts


def routes(parts: Parts) -> dict[type, Callable[[Message], Any]]:
    """Every message type the supervisor handles, and its handler."""
    table: dict[type, Callable[[Message], Any]] = {}
    families = (AgentHandlers(parts), OperatorHandlers(parts), GatewayHandlers(parts), ApprovalHandlers(parts),
                TelemetryHandlers(parts), InboxHandlers(parts))
    for family in families:
        table.update(family.routes())
    return table
