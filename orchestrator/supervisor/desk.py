"""The approval desk: held steps, the agents waiting on them, and the decisions that release them.

* :meth:`hold`: a guard held a step (its command needs approval): record a
  ``command`` request, show the agent ``awaiting_approval``, answer the step
  ``hold`` with the request's id. The agent's older pending command requests
  are cancelled (it moved on: a step that got no verdict never runs).
* :meth:`ask`: the agent's bounded long poll (``AwaitApproval``): answered at
  once when the request is decided, else parked and answered ``pending``
  after :data:`POLL_SECONDS` (:meth:`tick`). After a supervisor restart the
  parked polls are gone; the agent asks again and the registry answers.
* :meth:`decide`: the operator (or the timeout guard) approves or denies. A
  denied ``budget`` request stops its agent (``killed``, ``budget_exhausted``).
* :meth:`budget_exhausted`: the gateway holds an agent's call: freeze the
  agent (reason ``budget_exhausted``) and ask with a ``budget`` request.
* :meth:`set_budget`: the operator sets a budget; every agent frozen because
  of that budget is thawed (its request approved); the gateway re-reads it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from bus.client import DEFERRED
from bus.protocol import Message
from orchestrator.config import SwarmConfig
from orchestrator.supervisor import budgets
from orchestrator.supervisor.approvals import Approval, Kind, State
from orchestrator.supervisor.guards.base import Hold
from orchestrator.supervisor.lifecycle import Lifecycle
from orchestrator.supervisor.messenger import Messenger
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.table import AgentTable
from orchestrator.supervisor.tracing import SupervisorTracing
from swarm_core import messages as m
from swarm_core.errors import OperatorError
from swarm_core.peers import GATEWAY
from swarm_core.status import Reason, Status

POLL_SECONDS = 5.0  # a parked AwaitApproval is answered "pending" after this long
_ANSWER = {State.APPROVED: m.ApprovalAnswer.APPROVED, State.DENIED: m.ApprovalAnswer.DENIED,
           State.CANCELLED: m.ApprovalAnswer.DENIED}


class ApprovalDesk:
    """Approval requests from creation to decision, over the agent table and the lifecycle."""

    def __init__(self, cfg: SwarmConfig, table: AgentTable, life: Lifecycle, bus: Messenger, log: Any,
                 clock: Callable[[], float], wall: Callable[[], float],
                 tracing: SupervisorTracing | None = None) -> None:
        self.cfg = cfg
        self.table = table
        self.book = table.approvals
        self.life = life
        self.bus = bus
        self.log = log
        self.clock = clock
        self.wall = wall
        self.tracing = tracing or SupervisorTracing.off()
        self._parked: dict[str, list[tuple[Message, float]]] = {}

    # ------------------------------------------------------------ held steps

    def hold(self, rec: AgentRecord, step: m.StepReport, hold: Hold) -> m.StepVerdict:
        """Record a ``command`` request for ``step`` and answer the agent ``hold``."""
        now = self.wall()
        for old in self.book.cancel(rec.id, "superseded by a later step", now, Kind.COMMAND):
            self._answer_parked(old, m.ApprovalAnswer(old, m.ApprovalAnswer.DENIED, "superseded"))
            self.tracing.approval_decided(old, str(State.CANCELLED), "supervisor",
                                          "superseded by a later step")
        req = self.book.add(rec.id, Kind.COMMAND, now, command=step.command, args=_args(step.args_json),
                            thoughts=step.speak, step=step.step)
        self.tracing.approval_held(req.id, rec.id, str(Kind.COMMAND), step.command)  # under the step's span
        if rec.status is not Status.FROZEN:
            self.table.update(rec.id, status=Status.AWAITING_APPROVAL)
        self.bus.publish(rec.id, "approval_requested", Status.AWAITING_APPROVAL, f"{req.id} {step.command}")
        self.log.info("approval_requested", agent=rec.id, request=req.id, command=step.command)
        warn = hold.warn
        if warn is not None:
            self.table.log_event(rec.id, warn.event, warn.detail)
        return m.StepVerdict(m.StepVerdict.HOLD, warn.text if warn else "", req.id)

    def ask(self, msg: Message) -> object:
        """An agent's AwaitApproval: the decision, or (parked) ``pending`` after a while."""
        rid = msg.body.request_id
        req = self.book.get(rid)
        if req is None or req.agent != msg.header.src:
            # unknown here (a registry that lost it): the agent must not wait for ever
            return m.ApprovalAnswer(rid, m.ApprovalAnswer.DENIED, f"no approval request {rid!r}")
        if req.state is not State.PENDING:
            return m.ApprovalAnswer(rid, _ANSWER[req.state], req.text)
        self._parked.setdefault(rid, []).append((msg, self.clock() + POLL_SECONDS))
        return DEFERRED

    def tick(self) -> None:
        """Answer ``pending`` to parked polls that waited long enough; close cancelled requests' spans."""
        self._close_cancelled_spans()
        now = self.clock()
        for rid, polls in list(self._parked.items()):
            due = [msg for msg, at in polls if at <= now]
            if not due:
                continue
            self._parked[rid] = [(msg, at) for msg, at in polls if at > now]
            for msg in due:
                self.bus.reply(msg, m.ApprovalAnswer(rid, m.ApprovalAnswer.PENDING))
            if not self._parked[rid]:
                del self._parked[rid]

    def _close_cancelled_spans(self) -> None:
        # the table cancels an ended agent's requests itself; their spans close here, a tick later
        for rid in self.tracing.held_requests():
            req = self.book.get(rid)
            if req is None or req.state is not State.PENDING:
                state, text = (req.state, req.text) if req else (State.CANCELLED, "request lost")
                self.tracing.approval_decided(rid, str(state), "supervisor", text)

    def _answer_parked(self, rid: str, answer: m.ApprovalAnswer) -> None:
        for msg, _ in self._parked.pop(rid, []):
            self.bus.reply(msg, answer)

    # ------------------------------------------------------------ decisions

    def decide(self, request_id: str, approve: bool, text: str = "", by: str = "operator") -> Approval:
        """Approve or deny a pending request (OperatorError: unknown, decided, or a budget to approve).

        ``by`` says who decided (``operator``, ``timeout``) for the request's span.
        """
        req = self.book.get(request_id)
        if req is None:
            raise OperatorError(f"no approval request {request_id!r}")
        if req.state is not State.PENDING:
            raise OperatorError(f"request {request_id} was already {req.state}"
                                + (f": {req.text}" if req.text else ""))
        if approve and req.kind is Kind.BUDGET:
            raise OperatorError(f"request {request_id} waits for {req.budget_of}'s budget: raise it with "
                                f"'swarm budget {req.budget_of} --tokens N' or deny the request")
        self._settle(req, State.APPROVED if approve else State.DENIED, text, by)
        if req.kind is Kind.BUDGET:
            self.life.stop_subtree(req.agent, Reason.BUDGET_EXHAUSTED)
        return req

    def refuse(self, request_id: str, reason: str) -> None:
        """Deny a pending request decided by a guard (the timeout); nothing if already decided."""
        req = self.book.get(request_id)
        if req is not None and req.state is State.PENDING:
            self.decide(request_id, False, reason, by=reason)

    def _settle(self, req: Approval, state: State, text: str, by: str) -> None:
        self.book.decide(req.id, state, text, self.wall())
        self.tracing.approval_decided(req.id, str(state), by, text)
        rec = self.table.get(req.agent)
        if rec is not None and rec.status is Status.AWAITING_APPROVAL:
            self.table.update(rec.id, status=Status.RUNNING)
        word = "approved" if state is State.APPROVED else "denied"
        self.bus.publish(req.agent, f"approval_{word}", rec.status if rec else "", f"{req.id} {text}".strip())
        self.log.info(f"approval_{word}", agent=req.agent, request=req.id, text=text)
        self._answer_parked(req.id, m.ApprovalAnswer(req.id, _ANSWER[state], text))

    # ------------------------------------------------------------ budgets

    def budget_exhausted(self, rec: AgentRecord, budget_of: str, reason: str) -> None:
        """The gateway holds ``rec``'s call: freeze it and ask a person (once per wait)."""
        if rec.terminal:
            return
        self.life.mark_frozen(rec.id, Reason.BUDGET_EXHAUSTED)
        self.table.log_event(rec.id, "budget_exhausted", f"{budget_of}: {reason}")
        if self.book.pending(agent=rec.id, kind=Kind.BUDGET):
            return
        req = self.book.add(rec.id, Kind.BUDGET, self.wall(), args={"reason": reason}, budget_of=budget_of)
        self.tracing.approval_held(req.id, rec.id, str(Kind.BUDGET))
        self.log.warning("budget_approval_requested", agent=rec.id, budget_of=budget_of, request=req.id)

    def set_budget(self, agent_id: str, max_tokens: int, max_cost_usd: float) -> list[str]:
        """Set ``agent_id``'s budget (0 keeps that part); thaw the agents waiting for it; their ids."""
        rec = self.table.get(agent_id)
        if rec is None:
            raise OperatorError(f"no agent {agent_id!r}")
        if rec.terminal:
            raise OperatorError(f"agent {agent_id} is {rec.status}: its budget no longer matters")
        tokens, usd = budgets.merged(rec, self.cfg.quotas, max_tokens, max_cost_usd)
        self.table.update(agent_id, budget_tokens=tokens, budget_usd=usd, budget_override=True)
        self.table.log_event(agent_id, "budget_set", f"max_tokens {tokens}, max_cost_usd {usd}")
        self.log.info("budget_set", agent=agent_id, max_tokens=tokens, max_cost_usd=usd)
        self.bus.send(GATEWAY, m.BudgetChanged(agent_id))  # before the thaws: the gateway reads it first
        released = []
        for req in self.book.pending(kind=Kind.BUDGET, budget_of=agent_id):
            self._settle(req, State.APPROVED, "budget raised", "budget_raised")
            self.life.freeze(req.agent, False, "budget raised")
            released.append(req.agent)
        return released


def _args(args_json: str) -> dict[str, Any]:
    """The step's arguments (canonical JSON from the agent) as a mapping for the listing."""
    try:
        value = json.loads(args_json)
    except ValueError:
        return {"raw": args_json}
    return value if isinstance(value, dict) else {"value": value}
