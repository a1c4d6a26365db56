"""Bus handlers for what agents tell the supervisor: start a sub-agent, ready, status, step, done.

Only agents send these, and each reports only about itself (the
authorization table's ``self`` scope, applied before a handler runs).
"""

from __future__ import annotations

from typing import Any, Callable

from bus.client import DEFERRED
from bus.protocol import Message
from orchestrator.supervisor import budgets, policy
from orchestrator.supervisor.guards.base import Hold, SpawnRequest, Stop, Warn
from orchestrator.supervisor.handlers.common import requester
from orchestrator.supervisor.handlers.inbox import read, request_key
from orchestrator.supervisor.parts import START_TIMEOUT, Parts
from orchestrator.supervisor.registry import AgentRecord, subtree_spend
from swarm_core import messages as m
from swarm_core.errors import PolicyDenied, SwarmError
from swarm_core.peers import RESERVED_IDS
from swarm_core.status import HELD, SELF_REPORTED, Status, parent_ended


class AgentHandlers:
    """Handlers of messages agents send the supervisor."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.StartAgent: self.start_agent, m.AgentReady: self.ready, m.AgentStatus: self.status,
                m.StepReport: self.step, m.AgentDone: self.done}

    def _spawn_request(self, parent: AgentRecord, req: m.StartAgent) -> SpawnRequest:
        recs = self.p.table.all()
        state = policy.SpawnState(
            lineage=self._lineage(parent.id),
            requester_role=parent.role,
            can_start=self.p.cfg.agents[parent.role].can_start,
            roles=tuple(self.p.cfg.agents),
            live_agents=sum(1 for r in recs if not r.terminal),
            live_children=sum(1 for r in recs if r.parent == parent.id and not r.terminal),
            used_ids=frozenset(r.id for r in recs) | RESERVED_IDS,
            limits=self.p.cfg.limits,
        )
        return SpawnRequest(state, req.name, req.role)

    def start_agent(self, msg: Message) -> object:
        """Decide a start_agent (guards), spawn, and answer when the agent is ready (or failed).

        The new record and the request's outcome are committed together: a
        retry with the same request id is answered about that agent, never
        with a second one.
        """
        req: m.StartAgent = msg.body
        p = self.p
        parent = requester(p.table, msg)
        if parent.terminal:  # its requests are refused at the gate; one may have been in flight
            raise PolicyDenied(f"agent {parent.id} is {parent.status}")
        request_key(parent.id, req.request_id)  # checks the id
        first = p.table.outcomes.get(parent.id, req.request_id, m.StartAgent.TYPE)
        if first is not None:
            return self._started_before(msg, str(first.get("agent_id", "")))
        decision = p.guards.on_spawn(self._spawn_request(parent, req))
        if isinstance(decision, policy.Deny):
            p.table.log_event(parent.id, "spawn_denied", decision.reason)
            p.log.info("spawn_denied", agent=parent.id, name=req.name, reason=decision.reason)
            raise PolicyDenied(decision.reason)
        tokens, usd = self._child_budget(parent, decision.role, req.budget)
        with p.table.registry.atomic():
            rec = p.table.add(AgentRecord(id=decision.agent_id, name=req.name, role=decision.role,
                                          parent=parent.id, depth=decision.depth, task=req.task,
                                          budget_tokens=tokens, budget_usd=usd))
            p.table.outcomes.put(parent.id, req.request_id, m.StartAgent.TYPE, {"agent_id": rec.id}, p.wall())
        p.log.info("spawn_requested", agent=rec.id, parent=parent.id, t=p.clock())
        p.life.spawn(rec, prompt=req.prompt)  # a SpawnError is this request's one error reply
        p.table.expect_ready(rec.id, msg, p.clock() + START_TIMEOUT)
        return DEFERRED

    def _child_budget(self, parent: AgentRecord, role: str, slice_tokens: int) -> tuple[int | None, float | None]:
        """The new agent's budget; PolicyDenied when the slice is more than ``parent`` has left.

        A slice is taken from the caller's token budget: with none over the
        caller there is nothing to slice and it is ignored (so a small model
        that fills the optional argument in cannot starve its sub-agent).
        """
        if slice_tokens < 0:
            raise PolicyDenied("a budget must be a positive number of tokens")
        if slice_tokens:
            lineage = [r for r in (self.p.table.get(a) for a in self._lineage(parent.id)) if r is not None]
            left = budgets.tokens_left(lineage, subtree_spend(self.p.table.all()), self.p.cfg.quotas)
            problem = budgets.slice_problem(left, slice_tokens)
            if problem:
                self.p.table.log_event(parent.id, "spawn_denied", problem)
                raise PolicyDenied(problem)
            if left is None:
                self.p.table.log_event(parent.id, "budget_slice_ignored", f"{slice_tokens}: no budget to slice")
                slice_tokens = 0
        return budgets.child_budget(self.p.cfg.agents[role].budget, slice_tokens)

    def _lineage(self, agent_id: str) -> list[str]:
        return policy.lineage_of(agent_id, {r.id: r.parent for r in self.p.table.all()})

    def _started_before(self, msg: Message, agent_id: str) -> object:
        """The answer to a retried start_agent: about the agent the first try started."""
        p = self.p
        rec = p.table.get(agent_id)
        if rec is None:
            raise SwarmError(f"the agent this request started ({agent_id!r}) is not in the registry")
        p.log.info("start_agent_retried", agent=rec.id, status=rec.status)
        if rec.status is Status.STARTING:
            p.table.expect_ready(rec.id, msg, p.clock() + START_TIMEOUT)  # the first try gave up
            return DEFERRED
        if rec.started_at is None:
            raise SwarmError(f"agent {rec.id} did not start: {rec.reason or rec.status}")
        return m.AgentStarted(rec.id, rec.depth, rec.pid or 0)

    def ready(self, msg: Message) -> None:
        body: m.AgentReady = msg.body
        p = self.p
        rec = p.table.get(body.agent_id)
        if rec is None:
            return
        if rec.status is Status.STARTING:
            p.table.mark_running(rec.id)
            p.log.info("agent_registered", agent=rec.id, pid=body.pid, t=p.clock())
        p.bus.publish(rec.id, "ready", Status.RUNNING)
        p.tracing.spawn_ended(rec.id, "ready")
        p.bus.redeliver(rec.id)  # what a restarted agent (or a lost push) left unread
        pending = p.table.take_pending(rec.id)
        if pending is not None and pending.request is not None:
            p.bus.reply(pending.request, m.AgentStarted(rec.id, rec.depth, rec.pid or 0))

    def status(self, msg: Message) -> None:
        """An agent's own status (running / waiting); frozen and throttled are decided elsewhere.

        Steps are counted from step reports only (what the guards let run).
        """
        body: m.AgentStatus = msg.body
        rec = self.p.table.get(msg.header.src)
        if rec is None or rec.terminal:
            return
        if rec.status not in HELD and body.status in SELF_REPORTED:
            self.p.table.update(rec.id, status=Status(body.status))

    def step(self, msg: Message) -> m.StepVerdict:
        """The guards' verdict on a step about to run its command (the agent waits for it)."""
        body: m.StepReport = msg.body
        p = self.p
        rec = requester(p.table, msg)
        if rec.terminal:
            return m.StepVerdict(m.StepVerdict.STOP, rec.reason or rec.status)
        read(p, rec, body.inbox_ids)  # the step's prompt showed them: whatever the verdict, they are read
        decision = p.guards.on_step(rec, body)
        if isinstance(decision, Stop):
            p.life.enforce(decision)
            return m.StepVerdict(m.StepVerdict.STOP, decision.reason)
        if body.step > rec.steps:
            p.table.update(rec.id, steps=body.step)
        if isinstance(decision, Hold):
            return p.desk.hold(rec, body, decision)
        if isinstance(decision, Warn):
            p.table.log_event(rec.id, decision.event, decision.detail)
            return m.StepVerdict(m.StepVerdict.WARN, decision.text)
        return m.StepVerdict(m.StepVerdict.RUN)

    def done(self, msg: Message) -> None:
        """The agent finished: record it, tell its parent, stop its own sub-agents."""
        body: m.AgentDone = msg.body
        p = self.p
        rec = p.table.get(msg.header.src)
        if rec is None or rec.terminal:
            return
        status = Status.DONE if body.ok else Status.FAILED
        reason = None if body.ok else body.result[:200]
        p.table.end(rec.id, status, reason, result=body.result)
        p.bus.publish(rec.id, status, status, reason or "")
        p.log.info("agent_recorded_done", agent=rec.id, status=status)
        word = "finished" if body.ok else "failed"
        p.bus.tell(rec.parent, rec.id, f"{rec.id} {word}: {body.result}", "result" if body.ok else "notice")
        # a finished agent's own sub-agents have nobody to report to any more
        for child in p.table.children(rec.id):
            if not child.terminal:
                p.life.stop_subtree(child.id, parent_ended(status))
        if rec.parent is None:
            p.table.set_meta("result", body.result)
            p.table.set_meta("root_status", status)
