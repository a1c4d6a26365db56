"""``limits.max_depth`` / ``max_agents`` / ``max_children`` and role permissions, before any fork."""

from __future__ import annotations

from orchestrator.supervisor import policy
from orchestrator.supervisor.guards.base import Guard, SpawnRequest


class SpawnLimits(Guard):
    """Apply the pure :func:`policy.check_spawn` to every ``start_agent``."""

    def on_spawn(self, request: SpawnRequest) -> policy.Allow | policy.Deny:
        return policy.check_spawn(request.state, request.name, request.role)
