"""One model call as the gateway holds it, and the request it is built from."""

from __future__ import annotations

from dataclasses import dataclass

from bus.protocol import Header, Kind, Message
from orchestrator.gateway.ledger import InFlight
from orchestrator.gateway.providers.base import Request
from orchestrator.gateway.spend import Cost
from swarm_core import messages as m
from swarm_core.errors import InvalidRequest
from swarm_core.peers import GATEWAY
from swarm_core.tracing import Span

MAX_TOKENS_LIMIT = 32_768


@dataclass
class Call:
    """A queued or running call: whom to answer, what to ask, what it may cost."""

    msg: Message
    agent: str
    request: Request
    estimate: int  # for the tokens-per-minute bucket
    call_id: str
    worst: Cost  # reserved against every budget over the agent while it runs
    adopted: bool = False  # runs on a reservation a previous gateway made
    held_since: float | None = None  # when the rate buckets first held it
    status: str = ""  # the gateway-side status last reported for this call
    frozen_seen: bool = False
    span: Span | None = None  # the model call's span, from arrival here to the answer


def request_of(msg: Message) -> Request:
    """The provider request of a ``Complete`` from ``msg.header.src``; InvalidRequest when malformed."""
    body: m.Complete = msg.body
    agent = msg.header.src
    if not body.prompt and not body.messages:
        raise InvalidRequest("a completion request needs a prompt or messages", agent=agent)
    if not 1 <= body.max_tokens <= MAX_TOKENS_LIMIT:
        raise InvalidRequest(f"max_tokens must be 1..{MAX_TOKENS_LIMIT}, got {body.max_tokens}", agent=agent)
    return Request(agent_id=agent, prompt=body.prompt, commands=tuple(body.commands), max_tokens=body.max_tokens,
                   messages=tuple(body.messages), name=body.name, context=dict(body.context),
                   deadline=msg.header.deadline)


def interrupted_request(f: InFlight) -> Message:
    """The request a call of a previous gateway came in (enough to answer it: its sender and id)."""
    return Message(Header(Kind.REQUEST, m.Complete.TYPE, f.msg_id, "", f.agent, GATEWAY, 0.0), None)
