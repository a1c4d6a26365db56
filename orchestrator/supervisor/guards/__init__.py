"""The supervisor's limits, one guard class each, in the list the supervisor walks.

Add a limit: one config field (``orchestrator/config.py``), one guard class
in this package (a subclass of :class:`Guard` implementing the hooks it
needs), its entry in :func:`build_guards`, and its unit test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from orchestrator.config import SwarmConfig
from orchestrator.supervisor.guards.approval import ApprovalTimeout, NeedsApproval
from orchestrator.supervisor.guards.base import GuardSet
from orchestrator.supervisor.guards.budget import Budget
from orchestrator.supervisor.guards.flood import Flood
from orchestrator.supervisor.guards.loop import LoopGuard
from orchestrator.supervisor.guards.restart import CrashRestart
from orchestrator.supervisor.guards.spawn import SpawnLimits
from orchestrator.supervisor.guards.steps import MaxSteps
from orchestrator.supervisor.guards.stopfile import STOP_FILE, StopFile
from orchestrator.supervisor.guards.walltime import WallTime


def build_guards(cfg: SwarmConfig, run_dir: Path, log: Any, clock: Callable[[], float]) -> GuardSet:
    """Every limit of a swarm, in the order the supervisor consults them."""
    lim = cfg.limits
    return GuardSet([
        SpawnLimits(),
        StopFile(Path(run_dir) / STOP_FILE, log),
        Flood(lim.bus_messages_per_second, log),
        MaxSteps(lim.max_steps),
        LoopGuard(lim.loop_threshold, lim.effective_loop_window),
        WallTime(lim.max_wall_seconds),
        Budget(),
        NeedsApproval(cfg.agents, cfg.safety.approve),
        ApprovalTimeout(cfg.safety.approval_timeout_seconds),
        CrashRestart(cfg.agents, clock),
    ])
