"""A role's restart policy (``agents.ROLE.restart``): ``on-crash``, at most N restarts in a period."""

from __future__ import annotations

from typing import Callable, Mapping

from orchestrator.config import Role
from orchestrator.supervisor.guards.base import Exit, GiveUp, Guard, Restart
from orchestrator.supervisor.intensity import RestartIntensity


class CrashRestart(Guard):
    """Restart a crashed agent while its role's restart intensity allows it."""

    def __init__(self, roles: Mapping[str, Role], clock: Callable[[], float]) -> None:
        self.roles = roles
        self.clock = clock
        self._intensity: dict[str, RestartIntensity] = {}

    def on_exit(self, ex: Exit) -> Restart | GiveUp | None:
        rec = ex.record
        policy = self.roles[rec.role].restart if rec.role in self.roles else None
        if not ex.restartable or policy is None or policy.policy != "on-crash":
            return None
        window = self._intensity.get(rec.id)
        if window is None:
            window = self._intensity[rec.id] = RestartIntensity(policy.max_restarts, policy.period_seconds)
        if window.allow(self.clock()):
            return Restart(rec.id)
        return GiveUp(rec.id, f"{window.recent} in {policy.period_seconds:g}s",
                      f"agent {rec.id} crashed {window.recent + 1} times; it stays crashed")
