"""``limits.max_wall_seconds``: an agent runs at most that long after it became ready."""

from __future__ import annotations

from typing import Iterable

from orchestrator.supervisor.guards.base import Guard, Stop, Tick
from swarm_core.status import Reason


class WallTime(Guard):
    """Stop agents that have run longer than ``limit`` seconds; scans once per ``every`` seconds."""

    def __init__(self, limit: float, every: float = 1.0) -> None:
        self.limit = limit
        self.every = every
        self._next = 0.0

    def on_tick(self, tick: Tick) -> Iterable[Stop]:
        if tick.now < self._next:
            return ()
        self._next = tick.now + self.every  # a scan of every agent: once a second is plenty
        return [Stop(r.id, Reason.MAX_WALL_SECONDS) for r in tick.agents.live()
                if r.started_at is not None and tick.wall - r.started_at > self.limit]
