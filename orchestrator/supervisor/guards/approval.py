"""Approvals: ``agents.ROLE.approve`` / ``safety.approve`` hold commands for a person, within a timeout.

A held step's command runs only once the operator approves the request the
supervisor records for it (``swarm approve``); a denial (``swarm deny``, or
this module's timeout) is told to the model as the command's result.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from orchestrator.config import Role
from orchestrator.supervisor.guards.base import Guard, Hold, Refuse, Tick
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from swarm_core.status import Reason


class NeedsApproval(Guard):
    """Hold a step whose command the agent's role (or the whole swarm) lists under ``approve``."""

    def __init__(self, roles: Mapping[str, Role], swarm_wide: Sequence[str] = ()) -> None:
        self._needs = {name: frozenset(role.approve) | frozenset(swarm_wide) for name, role in roles.items()}

    def on_step(self, rec: AgentRecord, step: m.StepReport) -> Hold | None:
        return Hold(rec.id) if step.command in self._needs.get(rec.role, ()) else None


class ApprovalTimeout(Guard):
    """Deny (reason ``timeout``) a request pending longer than ``limit`` seconds; scans once per ``every``."""

    def __init__(self, limit: float, every: float = 1.0) -> None:
        self.limit = limit
        self.every = every
        self._next = 0.0

    def on_tick(self, tick: Tick) -> Iterable[Refuse]:
        if tick.now < self._next:
            return ()
        self._next = tick.now + self.every  # a registry read: once a second is plenty
        return [Refuse(a.id, Reason.TIMEOUT) for a in tick.agents.pending_approvals()
                if tick.wall - a.since > self.limit]
