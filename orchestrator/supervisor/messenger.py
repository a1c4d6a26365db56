"""What the supervisor says on the bus outside a reply: inbox messages, lifecycle events, stop requests.

Every send is best effort: a peer that is gone, or a bus that refuses, must
never stop the supervisor's own work (the registry stays the truth).

Inbox messages are the exception to "best effort": :meth:`Messenger.tell`
and :meth:`Messenger.post` keep the message in the registry's inbox first
(``inbox.py``), then push it; :meth:`Messenger.redeliver_due` pushes every
unread message again until its agent acknowledges it, so a push lost with a
restarted agent, a reconnecting peer or a crashed supervisor is made good.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.inbox import Note
from orchestrator.supervisor.table import AgentTable
from swarm_core import messages as m
from swarm_core.errors import SwarmError
from swarm_core.peers import BROADCAST
from swarm_core.status import Status

REPUSH_AFTER = 3.0  # seconds an unread message waits before it is pushed again


class Messenger:
    """Sends for the supervisor's parts, over its bus client."""

    def __init__(self, client: Any, table: AgentTable, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self._pushed: dict[str, float] = {}  # unread message id -> when it was last pushed (monotonic)

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

    # ------------------------------------------------------------ the inbox

    def tell(self, agent_id: str | None, sender: str, text: str, kind: str = "notice") -> Note | None:
        """Keep a message for a live agent and push it (None: no such agent, or it has ended)."""
        if not agent_id:
            return None
        rec = self.table.get(agent_id)
        if rec is None or rec.terminal:
            return None
        return self.post(agent_id, sender, kind, text)

    def post(self, agent_id: str, sender: str, kind: str, text: str, *, reply_to: str = "",
             request_key: str | None = None) -> Note:
        """Keep a message (once per ``request_key``) in the registry, then push it while it is unread."""
        note, _new = self.table.inbox.post(agent_id, sender, kind, text, self.table.wall(),
                                           reply_to=reply_to, request_key=request_key)
        if not note.read:
            self.push(note)
        return note

    def push(self, note: Note) -> None:
        """Send one kept message to its agent (again)."""
        self._pushed[note.id] = self.clock()
        self.send(note.agent_id, m.InboxMessage(note.sender, note.text, note.kind, note.id, note.reply_to))

    def redeliver(self, agent_id: str) -> int:
        """Push every unread message of ``agent_id`` now (it just became ready); return how many."""
        notes = self.table.inbox.unread(agent_id)
        for note in notes:
            self.push(note)
        return len(notes)

    def redeliver_due(self) -> int:
        """Push again every unread message of a ready agent not pushed for ``REPUSH_AFTER`` seconds."""
        now = self.clock()
        due = 0
        statuses: dict[str, Status | None] = {}
        for note in self.table.inbox.unread():
            if note.agent_id not in statuses:
                rec = self.table.get(note.agent_id)
                statuses[note.agent_id] = None if rec is None or rec.terminal else rec.status
            status = statuses[note.agent_id]
            if status is None or status is Status.STARTING:
                self._pushed.pop(note.id, None)  # ended (never read), or not on the bus yet
                continue
            if now - self._pushed.get(note.id, -REPUSH_AFTER) >= REPUSH_AFTER:
                self.push(note)
                due += 1
        return due

    def read(self, ids: list[str]) -> None:
        """These messages were acknowledged: stop pushing them."""
        for note_id in ids:
            self._pushed.pop(note_id, None)

    # ------------------------------------------------------------ events

    def publish(self, agent_id: str, event: str, status: str, reason: str = "") -> None:
        """Record a lifecycle event in the registry and publish it to every subscriber."""
        self.table.log_event(agent_id, event, reason)
        self.send(BROADCAST, m.Lifecycle(agent_id, event, status, reason))
