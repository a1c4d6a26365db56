"""``limits.loop_threshold`` / ``loop_window``: the same step, or a short cycle of steps, again and again.

What counts as the same step (numbers and whitespace do not matter) and as a
cycle is :mod:`orchestrator.supervisor.loopdetect`'s. The first loop is
answered with a warning (the agent is told, its command runs); a loop after
the warning stops the agent before that command runs.
Waiting for the inbox (``do_nothing``) is not a loop: max_steps and wall
time bound it.
"""

from __future__ import annotations

from orchestrator.supervisor.guards.base import Exit, Guard, Stop, Warn
from orchestrator.supervisor.loopdetect import LoopDetector, Verdict
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from swarm_core.status import Reason

NOT_A_LOOP = frozenset({"do_nothing"})


class LoopGuard(Guard):
    """One :class:`LoopDetector` per live agent."""

    def __init__(self, threshold: int, window: int) -> None:
        LoopDetector(threshold, window)  # a bad pair fails here, at start-up, not at the first step
        self.threshold = threshold
        self.window = window
        self._detectors: dict[str, LoopDetector] = {}

    def on_step(self, rec: AgentRecord, step: m.StepReport) -> Stop | Warn | None:
        if step.command in NOT_A_LOOP:
            return None
        det = self._detectors.get(rec.id)
        if det is None:
            det = self._detectors[rec.id] = LoopDetector(self.threshold, self.window)
        verdict = det.observe(step.command, step.args_json)
        if verdict is Verdict.STOP:
            return Stop(rec.id, Reason.LOOP)
        if verdict is Verdict.WARN:
            return Warn(rec.id, self._warning(step.command, det.last_cycle), "loop_warning", step.command)
        return None

    def _warning(self, command: str, cycle: int) -> str:
        if cycle > 1:
            what = f"You repeated the same cycle of {cycle} commands {self.threshold} times."
        else:
            what = (f"You issued {command} with the same arguments (or arguments that differ only in numbers "
                    f"or spaces) {self.threshold} times.")
        return what + " Change your approach: repeating it again stops you."

    def on_exit(self, ex: Exit) -> None:
        self._detectors.pop(ex.record.id, None)

    def watching(self) -> int:
        """How many agents have a detector."""
        return len(self._detectors)
