"""What the supervisor says on the bus outside a reply: notices, lifecycle events, stop requests.

Every send is best effort: a peer that is gone, or a bus that refuses, must
never stop the supervisor's own work (the registry stays the truth).
"""

from __future__ import annotations

from typing import Any

from bus.protocol import Message
from orchestrator.supervisor.table import AgentTable
from swarm_core import messages as m
from swarm_core.errors import SwarmError
from swarm_core.peers import BROADCAST


class Messenger:
    """Sends for the supervisor's parts, over its bus client."""

    def __init__(self, client: Any, table: AgentTable) -> None:
        self.client = client
        self.table = table

    def send(self, dst: str, body: Any) -> bool:
        """Send an event; False when the bus refused it."""
        try:
            self.client.send(dst, body)
            return True
        except SwarmError:
            return False

    def reply(self, request: Message, body: Any) -> None:
        try:
            self.client.reply(request, body)
        except SwarmError:
            pass

    def reply_error(self, request: Message, err: SwarmError) -> None:
        try:
            self.client.reply_error(request, err)
        except SwarmError:
            pass

    def tell(self, agent_id: str | None, sender: str, text: str, kind: str = "notice") -> None:
        """Deliver a message to a live agent's inbox (nobody else gets it)."""
        if not agent_id:
            return
        rec = self.table.get(agent_id)
        if rec is not None and not rec.terminal:
            self.send(agent_id, m.InboxMessage(sender, text, kind))

    def publish(self, agent_id: str, event: str, status: str, reason: str = "") -> None:
        """Record a lifecycle event in the registry and publish it to every subscriber."""
        self.table.log_event(agent_id, event, reason)
        self.send(BROADCAST, m.Lifecycle(agent_id, event, status, reason))
