"""The agent table: everything the supervisor knows about its agents, in one owner.

It holds the registry records (SQLite, the only writer) and the tables
kept beside them (the approval requests, ``approvals.py``; the durable
inbox, ``inbox.py``; the first outcomes of idempotent requests,
``outcomes.py``), the starts still
waiting for ``agent_ready`` (with their deadline and the request to answer),
the pid ↔ agent map (and which pids were adopted from a previous
supervisor), and what the broker's gate reads: the set of blocked agents
and the agent tree (``is_below``).

Invariant: an agent with a terminal status is blocked and has no pending
approval request; a restart unblocks it. The blocked set is an immutable
snapshot swapped whole, so the broker thread reads it without a lock; the
parents map only grows (an id is never reused), one key at a time, and the
gate only looks keys up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.approvals import Approval, ApprovalBook
from orchestrator.supervisor.inbox import InboxBook
from orchestrator.supervisor.outcomes import OutcomeBook
from orchestrator.supervisor.registry import AgentRecord, Registry
from swarm_core.status import Status


@dataclass(frozen=True)
class PendingStart:
    """A spawned agent not yet ready: whom to answer (None: nobody) and by when (monotonic)."""

    request: Message | None
    deadline: float


class AgentTable:
    """The supervisor's agent state; all access goes through here."""

    def __init__(self, path: str | Path, wall: Callable[[], float] = time.time) -> None:
        self.registry = Registry(path)
        self.approvals = ApprovalBook(self.registry.connection)
        self.inbox = InboxBook(self.registry.connection)
        self.outcomes = OutcomeBook(self.registry.connection)
        self.wall = wall
        self._pending: dict[str, PendingStart] = {}
        self._agent_of_pid: dict[int, str] = {}
        self._adopted: set[int] = set()
        self.blocked: frozenset[str] = frozenset()
        self.parents: dict[str, str | None] = {r.id: r.parent for r in self.registry.all()}

    def close(self) -> None:
        self.registry.close()

    # ------------------------------------------------------------ records

    def add(self, rec: AgentRecord) -> AgentRecord:
        added = self.registry.add(rec)
        self.parents[added.id] = added.parent
        return added

    def is_below(self, ancestor: str, agent: str) -> bool:
        """Whether ``agent`` lies strictly below ``ancestor`` in the agent tree (any thread)."""
        parent = self.parents.get(agent)
        for _ in range(len(self.parents)):  # bounded even if the map were ever cyclic
            if parent is None:
                return False
            if parent == ancestor:
                return True
            parent = self.parents.get(parent)
        return False

    def get(self, agent_id: str) -> AgentRecord | None:
        return self.registry.get(agent_id)

    def all(self) -> list[AgentRecord]:
        return self.registry.all()

    def live(self) -> list[AgentRecord]:
        """Every agent not in a terminal status, parents before children."""
        return [r for r in self.registry.all() if not r.terminal]

    def children(self, agent_id: str) -> list[AgentRecord]:
        return self.registry.children(agent_id)

    def subtree(self, agent_id: str) -> list[AgentRecord]:
        return self.registry.subtree(agent_id)

    def update(self, agent_id: str, **fields: Any) -> None:
        """Change fields of a record (counters, a non-terminal status, a reason)."""
        self.registry.update(agent_id, **fields)

    def mark_running(self, agent_id: str) -> None:
        self.registry.update(agent_id, status=Status.RUNNING, started_at=self.wall())

    def end(self, agent_id: str, status: Status, reason: str | None, **fields: Any) -> None:
        """Record a terminal status (with its reason), block the agent's traffic, cancel its requests."""
        self.registry.update(agent_id, status=status, reason=reason, ended_at=self.wall(), **fields)
        self.block(agent_id)
        self.approvals.cancel(agent_id, f"agent {agent_id} is {status}", self.wall())

    def pending_approvals(self) -> list[Approval]:
        """Every approval request not yet decided, oldest first."""
        return self.approvals.pending()

    def restarting(self, rec: AgentRecord) -> None:
        """A crashed agent is started again under the same id."""
        self.registry.update(rec.id, status=Status.STARTING, restarts=rec.restarts + 1, ended_at=None,
                             pid=None)
        self.unblock(rec.id)

    def log_event(self, agent_id: str | None, event: str, detail: str = "") -> None:
        self.registry.log_event(agent_id, event, detail)

    def events(self, agent_id: str) -> list[dict[str, Any]]:
        return self.registry.events(agent_id)

    def set_meta(self, key: str, value: Any) -> None:
        self.registry.set_meta(key, value)

    def meta(self, key: str, default: Any = None) -> Any:
        return self.registry.meta(key, default)

    # ------------------------------------------------------------ pending starts

    def expect_ready(self, agent_id: str, request: Message | None, deadline: float) -> None:
        """Remember to answer ``request`` (if any) when the agent is ready, or fail it at ``deadline``."""
        self._pending[agent_id] = PendingStart(request, deadline)

    def take_pending(self, agent_id: str) -> PendingStart | None:
        """The pending start of ``agent_id``, now settled (None when there is none)."""
        return self._pending.pop(agent_id, None)

    def expired(self, now: float) -> list[tuple[str, PendingStart]]:
        """Pending starts past their deadline at ``now`` (settled: each is returned once)."""
        late = [(a, p) for a, p in self._pending.items() if now > p.deadline]
        for agent_id, _ in late:
            del self._pending[agent_id]
        return late

    # ------------------------------------------------------------ pids

    def bind_pid(self, agent_id: str, pid: int, *, adopted: bool = False, node: str | None = None) -> None:
        """``pid`` runs ``agent_id`` on ``node`` (adopted: a previous supervisor started it)."""
        self._agent_of_pid[pid] = agent_id
        if adopted:
            self._adopted.add(pid)
        else:
            self.registry.update(agent_id, pid=pid, node=node)

    def release_pid(self, pid: int) -> str | None:
        """The process ``pid`` is gone: the agent it ran (None when it was not an agent's)."""
        self._adopted.discard(pid)
        return self._agent_of_pid.pop(pid, None)

    def orphan_all(self) -> None:
        """The zygote that reported these agents' exits is gone: watch every pid like an adopted one."""
        self._adopted |= set(self._agent_of_pid)

    def adopted_pids(self) -> list[int]:
        return list(self._adopted)

    def known_pids(self) -> list[int]:
        """Every agent pid not yet reaped."""
        return list(self._agent_of_pid)

    # ------------------------------------------------------------ the gate's set

    def block(self, agent_id: str) -> None:
        if agent_id not in self.blocked:
            self.blocked = self.blocked | {agent_id}

    def unblock(self, agent_id: str) -> None:
        if agent_id in self.blocked:
            self.blocked = self.blocked - {agent_id}

    def block_terminal(self) -> None:
        """Block every agent the registry already shows ended (after a resume)."""
        ended = {r.id for r in self.registry.all() if r.terminal}
        self.blocked = self.blocked | ended
