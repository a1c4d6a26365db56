"""Bus handlers for the operator in the loop: approval polls, decisions, budgets, budget pauses.

Who may send what is the authorization table's (``swarm_core.authz``,
applied by the gate and the dispatch before these run): only the operator
(its credential, never a chosen name) decides and sets budgets (``Decide``,
``SetBudget``), only the gateway reports a held call (``BudgetExhausted``),
only agents poll (``AwaitApproval``), and the desk answers an agent only
about its own requests (an approval request's owner is in the desk's book,
not in the message).
"""

from __future__ import annotations

from typing import Any, Callable

from bus import messages as bm
from bus.protocol import Message
from orchestrator.supervisor.handlers.common import reported_agent, requester
from orchestrator.supervisor.handlers.inbox import request_key
from orchestrator.supervisor.parts import Parts
from swarm_core import messages as m


class ApprovalHandlers:
    """Handlers of the approval and budget messages."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.AwaitApproval: self.await_approval, m.Decide: self.decide, m.SetBudget: self.set_budget,
                m.BudgetExhausted: self.budget_exhausted}

    def await_approval(self, msg: Message) -> object:
        """An agent waits for its request's decision (answered now, or parked for a while)."""
        requester(self.p.table, msg)
        return self.p.desk.ask(msg)

    def decide(self, msg: Message) -> bm.Ok:
        """``swarm approve`` / ``swarm deny``; a retry (same ``retry_id``) gets the first outcome."""
        body: m.Decide = msg.body
        table = self.p.table  # only an operator decides (swarm_core/authz.py)
        request_key(msg.header.src, body.retry_id)  # checks the id
        first = table.outcomes.get(msg.header.src, body.retry_id, m.Decide.TYPE)
        if first is not None:
            return bm.Ok(first)
        req = self.p.desk.decide(body.request_id, body.approve, body.text)
        outcome = {"request": req.id, "agent": req.agent, "approved": body.approve}
        table.outcomes.put(msg.header.src, body.retry_id, m.Decide.TYPE, outcome, self.p.wall())
        return bm.Ok(outcome)

    def set_budget(self, msg: Message) -> bm.Ok:
        """``swarm budget``: set an agent's budget and release the agents waiting for it."""
        body: m.SetBudget = msg.body
        released = self.p.desk.set_budget(body.agent_id, body.max_tokens, body.max_cost_usd)
        rec = self.p.table.get(body.agent_id)
        return bm.Ok({"agent": body.agent_id, "released": released,
                      "max_tokens": rec.budget_tokens if rec else None,
                      "max_cost_usd": rec.budget_usd if rec else None})

    def budget_exhausted(self, msg: Message) -> None:
        """The gateway holds an agent's call for lack of budget: freeze it and ask (pause mode)."""
        body: m.BudgetExhausted = msg.body
        rec = reported_agent(self.p.table, body.agent_id)
        if rec is not None:
            self.p.desk.budget_exhausted(rec, body.budget_of, body.reason)
