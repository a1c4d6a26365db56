"""Message bodies: the durable inbox (agent → supervisor: post a message, acknowledge what was read).

A message for an agent is kept in the registry before its sender gets an
answer, pushed to the agent as an ``InboxMessage`` carrying its id, pushed
again until the agent acknowledges it (the ``inbox_ids`` of its next
``StepReport``: the step that showed it to the model was decided), and
pushed again to a restarted agent or after a resume.

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from swarm_core.wire import message


class Kind(StrEnum):
    """What an inbox message is (``InboxMessage.kind``)."""

    RESULT = "result"  # a sub-agent's final result, for its parent
    NOTICE = "notice"  # the supervisor tells an agent something (a child stopped, crashed...)
    MESSAGE = "message"  # a person's message (``swarm send``)
    QUESTION = "question"  # ``message_agent``: the sender waits (bounded) for the reply
    REPLY = "reply"  # the answer to a question (``reply_to`` names it)


POSTABLE = frozenset({Kind.QUESTION, Kind.REPLY})  # what an agent may post to another


@message
@dataclass(frozen=True, slots=True)
class PostMessage:
    """An agent asks the supervisor to keep and deliver a message to agent ``agent_id``.

    ``kind`` is ``question`` (``message_agent``) or ``reply`` (the answer to
    question ``reply_to``, which the target asked this agent). Answered with
    :class:`Posted` once the message is in the registry; ``request_id`` makes
    a retry return the first message's id instead of posting it twice.
    """

    TYPE = "post_message"
    agent_id: str
    text: str
    kind: str = "question"  # Kind.QUESTION or Kind.REPLY
    reply_to: str = ""
    request_id: str = ""


@message
@dataclass(frozen=True, slots=True)
class Posted:
    """Reply to PostMessage: the id the message is kept (and delivered) under."""

    TYPE = "posted"
    message_id: str
