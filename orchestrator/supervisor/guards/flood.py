"""``limits.bus_messages_per_second``: an agent flooding the bus is throttled, then killed.

The broker's gate calls :meth:`Flood.check` per message (broker thread);
offenders are stopped on the next tick (supervisor loop).
"""

from __future__ import annotations

from typing import Any, Iterable

from orchestrator.supervisor.floodgate import FloodGate
from orchestrator.supervisor.guards.base import Exit, Guard, Stop, Tick
from swarm_core.status import Reason


class Flood(Guard):
    """A :class:`FloodGate` per swarm; forgets an agent when its process is gone."""

    def __init__(self, rate: float, log: Any) -> None:
        self.gate = FloodGate(rate)
        self.log = log
        self.check = self.gate.check  # the broker thread's hot path: one attribute lookup

    def on_tick(self, tick: Tick) -> Iterable[Stop]:
        stops = []
        for agent_id in self.gate.offenders():
            self.log.warning("agent_flooding", agent=agent_id)
            stops.append(Stop(agent_id, Reason.FLOOD, hard=True))
        return stops

    def on_exit(self, ex: Exit) -> None:
        self.gate.forget(ex.record.id)

    def forget(self, peer: str) -> None:
        """A peer left the bus: drop its counters."""
        self.gate.forget(peer)
