"""Agent lifecycle: spawn, stop (ordered), kill (hard), reap, lose, freeze.

Processes are started by the backend (``backends/``: this machine's
zygote, or one per Ray node), which it never needs to know. Stopping goes
through the :class:`Reaper`'s ladder (stop message →
SIGTERM → SIGKILL, by process group; a hard stop is SIGKILL at once). The
table records the intent (status ``killed`` with a reason) before any
signal is sent, so the exit that follows is not mistaken for a crash.

Each agent process gets a bus credential of its own, issued at its spawn
by the backend through the swarm's keyring (in its spec), bound to its pid
as soon as the backend reports it, and revoked when the process is reaped
or lost: a restart is a new credential.
"""

from __future__ import annotations

import dataclasses
import signal
from typing import Any, Callable

from bus.keyring import Keyring
from orchestrator.supervisor.approvals import Kind
from orchestrator.supervisor.guards.base import Exit, Stop
from orchestrator.supervisor.messenger import Messenger
from orchestrator.supervisor.reaper import Reaper
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.spawner import SpawnError
from orchestrator.supervisor.table import AgentTable
from orchestrator.supervisor.tracing import SupervisorTracing
from orchestrator.supervisor.zygote import EXIT_OUT_OF_MEMORY
from swarm_core import messages as m
from swarm_core.errors import NotFound
from swarm_core.peers import GATEWAY
from swarm_core.spec import AgentSpec
from swarm_core.status import Status, parent_ended

_SIGNAL_HINTS = {"SIGXCPU": " (cpu rlimit)", "SIGKILL": " (killed from outside or by an rlimit)",
                 "SIGSEGV": " (segfault)", "SIGABRT": " (abort)"}


def describe_exit(code: int | None) -> str:
    """A reason for an unexpected exit: ``exit code N`` or the signal's name."""
    if code is None:
        return "exited (adopted process; exit code unknown)"
    if code == EXIT_OUT_OF_MEMORY:
        return f"exit code {code} (out of memory: memory rlimit)"
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return name + _SIGNAL_HINTS.get(name, "")


class Lifecycle:
    """Spawning, stopping and reaping the agents of one table."""

    def __init__(self, table: AgentTable, backend: Any, reaper: Reaper, bus: Messenger,
                 specs: Callable[[AgentRecord, str], AgentSpec], log: Any, keys: Keyring,
                 tracing: SupervisorTracing | None = None) -> None:
        self.keys = keys  # the backend issues each incarnation's credential through the same keyring
        self.table = table
        self.backend = backend  # spawn(spec) -> Placed (see backends/base.py)
        self.reaper = reaper
        self.bus = bus
        self.specs = specs
        self.log = log
        self.tracing = tracing or SupervisorTracing.off()

    # ------------------------------------------------------------ spawning

    def spawn(self, rec: AgentRecord, prompt: str = "") -> int:
        """Start the agent's process through the backend and record its pid and node (SpawnError: failed).

        The backend issues the incarnation's credential (``keys``) and puts it in the spec; once the pid
        is known the credential is bound to it. The spawn is the agent's ``start_agent`` span; the agent
        starts with its context.
        """
        traceparent = self.tracing.spawn_started(rec.id, rec.parent)
        try:
            placed = self.backend.spawn(dataclasses.replace(self.specs(rec, prompt), traceparent=traceparent))
        except SpawnError as exc:
            self.keys.revoke(rec.id)
            self.tracing.spawn_ended(rec.id, "spawn_failed")
            self.table.end(rec.id, Status.FAILED, f"spawn failed: {exc.message}")
            self.log.warning("spawn_failed", agent=rec.id, error=exc.message)
            raise
        if not self.keys.bind_pid(rec.id, placed.pid):  # another process used it first: leaked, revoked
            self.log.error("agent_credential_misused", agent=rec.id, pid=placed.pid)
        self.table.bind_pid(rec.id, placed.pid, node=placed.node)
        self.bus.publish(rec.id, "spawned", Status.STARTING)
        where = {"node": placed.node} if placed.node else {}  # a Ray node; nothing on this machine
        self.log.info("agent_spawned", agent=rec.id, pid=placed.pid, **where, parent=rec.parent, depth=rec.depth)
        return placed.pid

    def restart(self, rec: AgentRecord) -> bool:
        """Start a crashed agent again under its id; False when the spawn failed (parent told)."""
        self.table.restarting(rec)
        self.log.info("agent_restarting", agent=rec.id, restart=rec.restarts + 1)
        try:
            self.spawn(rec)
        except SpawnError as exc:
            self.bus.tell(rec.parent, "supervisor", f"agent {rec.id} could not be restarted: {exc.message}")
            return False
        return True

    def adopt(self, agent_id: str, pid: int) -> None:
        """Take over an agent process left by a previous supervisor (resume)."""
        self.table.bind_pid(agent_id, pid, adopted=True)

    # ------------------------------------------------------------ stopping

    def stop_subtree(self, agent_id: str, reason: str, *, hard: bool = False,
                     status: Status = Status.KILLED) -> int:
        """Stop an agent and all its descendants (children first); tell the top one's parent."""
        recs = [r for r in self.table.subtree(agent_id) if not r.terminal]
        for rec in reversed(recs):  # children first: nobody is left without a parent
            self._stop_one(rec, reason, hard=hard, status=status if rec.id == agent_id else Status.KILLED)
        if recs:
            self.tracing.control("kill", agent_id, **{"swarm.reason": str(reason), "swarm.stopped": len(recs)})
        if recs and recs[0].id == agent_id and recs[0].parent:
            self.bus.tell(recs[0].parent, "supervisor",
                          f"agent {agent_id} was stopped: {reason}"
                          + (f" (with {len(recs) - 1} sub-agents)" if len(recs) > 1 else ""))
        return len(recs)

    def enforce(self, stop: Stop) -> int:
        """Apply a guard's decision to stop an agent (nothing happens to agents already ended)."""
        return self.stop_subtree(stop.agent_id, stop.reason, hard=stop.hard, status=stop.status)

    def stop_everything(self, reason: str, *, hard: bool = False) -> int:
        """Stop every live agent (children first); nobody is told."""
        recs = self.table.live()
        for rec in reversed(recs):
            self._stop_one(rec, reason, hard=hard, status=Status.KILLED)
        if recs:
            self.tracing.control("kill", "", **{"swarm.reason": str(reason), "swarm.stopped": len(recs)})
        return len(recs)

    def _stop_one(self, rec: AgentRecord, reason: str, *, hard: bool, status: Status) -> None:
        self.table.end(rec.id, status, reason)
        self.bus.publish(rec.id, status, status, reason)
        self.log.info("agent_stopping", agent=rec.id, reason=reason, hard=hard or self.reaper.hard)
        if rec.pid:
            self.reaper.stop(rec.pid, hard=hard, ask=lambda: self.bus.send(rec.id, m.Stop(reason)))

    def stop_all(self, reason: str, until: float, idle: Callable[[float], object]) -> list[int]:
        """Teardown: stop every live agent and wait (until ``until``) for every agent process to go."""
        self.stop_everything(reason, hard=self.reaper.hard)
        targets = set(self.table.known_pids()) | set(self.reaper.pending())
        return self.reaper.drain(targets, until, idle)

    # ------------------------------------------------------------ reaping

    def reap(self, pid: int, code: int | None, *, restartable: bool = True) -> Exit | None:
        """``pid`` is gone: a live agent that exits on its own has crashed. None: not an agent's pid.

        An agent the supervisor already ended as ``crashed`` (a hung one it killed) is reported as a
        crash too, so its restart policy applies once its process is gone.
        """
        self.reaper.forget(pid)
        agent_id = self.table.release_pid(pid)
        rec = self.table.get(agent_id) if agent_id is not None else None
        if rec is None:
            return None
        self.keys.revoke(rec.id)  # nobody may speak as this incarnation any more
        self.log.info("agent_exited", agent=rec.id, pid=pid, code=code, status=rec.status)
        if rec.terminal:
            crashed = rec.status is Status.CRASHED
            return Exit(rec, code, crashed=crashed, restartable=restartable and crashed)
        reason = describe_exit(code)
        self.table.end(rec.id, Status.CRASHED, reason)
        self.bus.publish(rec.id, "crashed", Status.CRASHED, reason)
        self.log.warning("agent_crashed", agent=rec.id, reason=reason)
        self.bus.tell(rec.parent, "supervisor", f"agent {rec.id} crashed: {reason}")
        for child in self.table.children(rec.id):
            if not child.terminal:
                self.stop_subtree(child.id, parent_ended(Status.CRASHED))
        if rec.parent is None:
            self.table.set_meta("root_status", Status.CRASHED)
        return Exit(rec, code, crashed=True, restartable=restartable)

    def lose(self, pid: int, reason: str) -> None:
        """``pid`` cannot be reached any more (its node is gone): its agent and subtree end ``killed``."""
        self.reaper.forget(pid)
        agent_id = self.table.release_pid(pid)
        rec = self.table.get(agent_id) if agent_id is not None else None
        if rec is None:
            return
        self.keys.revoke(rec.id)  # whatever still runs on that node may not speak as it any more
        if rec.terminal:
            return
        self.log.warning("agent_lost", agent=rec.id, pid=pid, node=rec.node, reason=reason)
        self.stop_subtree(rec.id, reason, hard=True)

    # ------------------------------------------------------------ freeze

    def freeze(self, agent_id: str, frozen: bool, reason: str) -> int:
        """Freeze or thaw one agent (or all when ``agent_id`` is empty); the gateway holds the calls."""
        if agent_id:
            rec = self.table.get(agent_id)
            if rec is None:
                raise NotFound(f"no agent {agent_id!r}")
            recs = [rec] if not rec.terminal else []
        else:
            recs = self.table.live()
        for rec in recs:
            if frozen:
                self.table.update(rec.id, status=Status.FROZEN, reason=f"frozen: {reason}")
            elif rec.status is Status.FROZEN:
                # a command still held for approval: back to waiting for it
                waiting = self.table.approvals.pending(agent=rec.id, kind=Kind.COMMAND)
                self.table.update(rec.id, status=Status.AWAITING_APPROVAL if waiting else Status.RUNNING,
                                  reason=None)
            self.bus.publish(rec.id, "frozen" if frozen else "thawed",
                             Status.FROZEN if frozen else Status.RUNNING, reason)
        self.bus.send(GATEWAY, m.Freeze(agent_id, frozen, reason))
        self.tracing.control("freeze" if frozen else "thaw", agent_id,
                             **{"swarm.reason": reason, "swarm.agents": len(recs)})
        return len(recs)

    def mark_frozen(self, agent_id: str, reason: str) -> None:
        """Record a freeze decided elsewhere (the gateway's breaker already holds the calls)."""
        self.table.update(agent_id, status=Status.FROZEN, reason=reason)
        self.bus.publish(agent_id, "frozen", Status.FROZEN, reason)
        self.tracing.control("freeze", agent_id, **{"swarm.reason": reason})

