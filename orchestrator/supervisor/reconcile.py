"""Reconcile on a tick, and react to exits and dead peers (the supervisor's loop calls these).

A tick moves pending stops up the reaper's ladder, looks for adopted agents
that exited, asks every guard for stops, fails starts that never became
ready, and (every ``redeliver_every`` seconds) pushes again the inbox
messages agents have not acknowledged. An exit or a dead peer is handled
when it is reported.
"""

from __future__ import annotations

from typing import Callable

from bus import messages as bm
from orchestrator.supervisor.guards.base import Exit, GiveUp, Refuse, Restart, Tick
from orchestrator.supervisor.guards.flood import Flood
from orchestrator.supervisor.parts import ROOT_START_TIMEOUT, Parts
from orchestrator.supervisor.reaper import ProcessSignaller
from swarm_core.errors import SwarmError
from swarm_core.status import Reason, Status


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as gone)."""
    return not ProcessSignaller().alive(pid)


class Reconciler:
    """The supervisor's periodic and event-driven work over its parts.

    ``gone(pid)`` probes an adopted process (default: this machine's process
    table; a backend whose agents run elsewhere passes its own).
    """

    def __init__(self, parts: Parts, gone: Callable[[int], bool] = process_gone,
                 adopted_every: float = 1.0, redeliver_every: float = 1.0) -> None:
        self.p = parts
        self.gone = gone
        self.adopted_every = adopted_every
        self.redeliver_every = redeliver_every
        self._next_adopted = 0.0
        self._next_redelivery = 0.0

    def tick(self) -> None:
        """Reconcile: the stop ladder, adopted exits, every guard's stops and refusals, parked
        approval polls, start timeouts, unread messages."""
        p = self.p
        now = p.clock()
        p.reaper.step()
        if now >= self._next_adopted:
            self._next_adopted = now + self.adopted_every
            for pid in p.table.adopted_pids():
                if self.gone(pid):  # not our zygote's children: nobody reports their exit
                    self.on_exit(pid, None)
        for action in p.guards.on_tick(Tick(now, p.wall(), p.table)):
            if isinstance(action, Refuse):
                p.desk.refuse(action.request_id, action.reason)
            else:
                p.life.enforce(action)
        p.desk.tick()
        for agent_id, pending in p.table.expired(now):
            p.tracing.spawn_ended(agent_id, Reason.START_TIMEOUT)
            p.life.stop_subtree(agent_id, Reason.START_TIMEOUT, hard=True)
            if pending.request is not None:
                p.bus.reply_error(pending.request, SwarmError(f"agent {agent_id} did not start in time"))
        if now >= self._next_redelivery:
            self._next_redelivery = now + self.redeliver_every
            p.bus.redeliver_due()

    def on_exit(self, pid: int, code: int | None) -> None:
        """A process was reaped: record the agent's end; restart it if its role's policy says so."""
        p = self.p
        ex = p.life.reap(pid, code, restartable=not p.shutting_down())
        if ex is None:
            return
        for decision in p.guards.on_exit(ex):
            if isinstance(decision, Restart):
                self._restart(ex)
            elif isinstance(decision, GiveUp):
                p.table.log_event(ex.record.id, "restart_limit", decision.detail)
                p.bus.tell(ex.record.parent, "supervisor", decision.text)

    def on_lost(self, pid: int, reason: str) -> None:
        """A process can no longer be reached (its node is gone): its agent is ended with ``reason``."""
        self.p.life.lose(pid, reason)

    def _restart(self, ex: Exit) -> None:
        p = self.p
        rec = p.table.get(ex.record.id)
        if rec is None or rec.status is not Status.CRASHED:
            return
        limit = p.cfg.limits.max_agents
        if len(p.table.live()) >= limit:  # its slot was taken meanwhile: a restart is a start too
            detail = f"max_agents {limit} reached"
            p.table.log_event(rec.id, "restart_refused", detail)
            p.log.warning("agent_restart_refused", agent=rec.id, reason=detail)
            p.bus.tell(rec.parent, "supervisor", f"agent {rec.id} crashed and was not restarted: {detail}")
            return
        if p.life.restart(rec):
            p.table.expect_ready(rec.id, None, p.clock() + ROOT_START_TIMEOUT)

    def on_peer_event(self, ev: bm.PeerEvent) -> None:
        """A peer left the bus: forget its flood counters; a dead agent is hung: kill it."""
        p = self.p
        if ev.event != "left":
            return
        flood = p.guards.find(Flood)
        if isinstance(flood, Flood):
            flood.forget(ev.peer)
        if ev.reason != "dead":
            return
        rec = p.table.get(ev.peer)
        if rec is not None and not rec.terminal:
            p.log.warning("agent_hung", agent=rec.id)
            p.life.stop_subtree(rec.id, Reason.HUNG, hard=True, status=Status.CRASHED)
