"""``limits.max_steps``: an agent runs at most that many commands.

The step report comes before the command runs: the report of step
``max_steps + 1`` is answered with a stop, so that step's command never runs.
"""

from __future__ import annotations

from orchestrator.supervisor.guards.base import Guard, Stop
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from swarm_core.status import Reason


class MaxSteps(Guard):
    """Stop an agent at the step past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_step(self, rec: AgentRecord, step: m.StepReport) -> Stop | None:
        return Stop(rec.id, Reason.MAX_STEPS) if step.step > self.limit else None
