"""Bus handlers for the gateway's reports: usage (counters, throttling, budgets) and breaker trips.

Only the gateway may send them (the authorization table, applied before
these handlers run).
"""

from __future__ import annotations

from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.handlers.common import reported_agent
from orchestrator.supervisor.parts import Parts
from swarm_core import messages as m
from swarm_core.status import SELF_REPORTED, Status


class GatewayHandlers:
    """Handlers of the messages the gateway sends the supervisor."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.Usage: self.usage, m.BreakerTripped: self.breaker}

    def usage(self, msg: Message) -> None:
        """Record counters (also of an agent that just ended), the throttled status, a budget stop."""
        body: m.Usage = msg.body
        p = self.p
        # usage of a call that finished just before the agent did still counts
        rec = reported_agent(p.table, body.agent_id, live_only=False)
        if rec is None:
            return
        fields: dict[str, Any] = {"tokens": max(rec.tokens, body.tokens),
                                  "requests": max(rec.requests, body.requests),
                                  "cost_usd": max(rec.cost_usd, body.cost_usd)}
        if not rec.terminal:
            if body.status == Status.THROTTLED and rec.status not in (Status.FROZEN, Status.AWAITING_APPROVAL):
                fields["status"] = Status.THROTTLED
                p.table.log_event(rec.id, "throttled", "")
            elif body.status in SELF_REPORTED and rec.status is Status.THROTTLED:
                fields["status"] = Status(body.status)
        p.table.update(rec.id, **fields)
        stop = p.guards.on_usage(rec, body) if not rec.terminal else None
        if stop is not None:
            p.life.enforce(stop)

    def breaker(self, msg: Message) -> None:
        """The gateway's breaker froze an agent (its calls are held there already): record it."""
        body: m.BreakerTripped = msg.body
        rec = reported_agent(self.p.table, body.agent_id)
        if rec is None:
            return
        words = ", ".join(body.words)
        self.p.log.warning("breaker_tripped", agent=rec.id, words=words, streak=body.streak)
        self.p.table.log_event(rec.id, "breaker_tripped", f"risky words in {body.streak} outputs: {words}")
        self.p.life.mark_frozen(rec.id, f"breaker: {words}")
