"""Bus handlers of the durable inbox: agents post messages to each other (``read`` takes acknowledgements).

``accept`` is the one way a message from outside the supervisor (an agent's
question or reply, an operator's message) enters an inbox: it checks the
target and the text, then keeps the message in the registry (once per
request id) before the sender is answered.
"""

from __future__ import annotations

from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.handlers.common import requester
from orchestrator.supervisor.inbox import Note
from orchestrator.supervisor.outcomes import MAX_REQUEST_ID
from orchestrator.supervisor.parts import Parts
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from swarm_core.errors import InvalidRequest, NotFound, PolicyDenied
from swarm_core.messages.inbox import POSTABLE, Kind

MAX_TEXT = 20_000  # characters of one inbox message
MAX_ACK_IDS = 1_000  # ids in one acknowledgement


def request_key(sender: str, request_id: str) -> str | None:
    """The inbox's key of a request (None without a request id); InvalidRequest for a bad id."""
    if not request_id:
        return None
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidRequest(f"request_id is {len(request_id)} characters, more than {MAX_REQUEST_ID}")
    return f"{sender}:{request_id}"


def check_text(text: str) -> str:
    """A message text: not blank, at most ``MAX_TEXT`` characters."""
    if not text.strip():
        raise InvalidRequest("the message text is empty")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"the message text is {len(text)} characters, more than {MAX_TEXT}")
    return text


def accept(p: Parts, target_id: str, sender: str, kind: str, text: str, *, requester: str,
           request_id: str, reply_to: str = "") -> Note:
    """Keep a message for a live agent (``requester``'s retried request id gets the first message back)."""
    key = request_key(requester, request_id)
    first = p.table.inbox.by_request(key) if key else None
    if first is not None:
        return first
    check_text(text)
    target = p.table.get(target_id)
    if target is None:
        raise NotFound(f"no agent {target_id!r}")
    if target.terminal:
        raise PolicyDenied(f"agent {target.id} is {target.status}")
    return p.bus.post(target.id, sender, kind, text, reply_to=reply_to, request_key=key)


def read(p: Parts, rec: AgentRecord, ids: list[str]) -> None:
    """Agent ``rec`` acknowledged these messages (they entered a prompt): they are not pushed again.

    Ids of other agents' messages are ignored.
    """
    ids = ids[:MAX_ACK_IDS]
    if ids:
        p.table.inbox.ack(rec.id, ids, rec.pid, p.wall())
        p.bus.read(ids)


class InboxHandlers:
    """Handlers of what agents send about messages: post a question or a reply."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.PostMessage: self.post}

    def post(self, msg: Message) -> m.Posted:
        """An agent's question for another agent, or its reply to a question it was asked."""
        body: m.PostMessage = msg.body
        sender = requester(self.p.table, msg)
        if body.kind not in POSTABLE:
            raise InvalidRequest(f"kind must be one of {', '.join(sorted(POSTABLE))}, not {body.kind!r}")
        if body.agent_id == sender.id:
            raise InvalidRequest("an agent cannot message itself")
        if body.kind == Kind.REPLY:
            self._check_reply(sender.id, body)
        elif body.reply_to:
            raise InvalidRequest("only a reply names the message it answers")
        note = accept(self.p, body.agent_id, sender.id, body.kind, body.text, requester=sender.id,
                      request_id=body.request_id, reply_to=body.reply_to)
        return m.Posted(note.id)

    def _check_reply(self, sender: str, body: m.PostMessage) -> None:
        question = self.p.table.inbox.get(body.reply_to) if body.reply_to else None
        if question is None or question.kind != Kind.QUESTION or question.agent_id != sender \
                or question.sender != body.agent_id:
            raise InvalidRequest(f"{body.reply_to!r} is not a question {body.agent_id} asked you")
