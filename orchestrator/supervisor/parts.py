"""The supervisor's parts, wired once: the service builds them, and so do the tests (with fakes).

Owner → owned: the parts know each other as listed here; none of them
knows the Supervisor that owns them. The two ways back out (ask for a
shutdown, ask whether one is under way) are plain callables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bus.keyring import Keyring
from orchestrator.config import SwarmConfig
from orchestrator.supervisor.desk import ApprovalDesk
from orchestrator.supervisor.guards import build_guards
from orchestrator.supervisor.guards.base import GuardSet
from orchestrator.supervisor.lifecycle import Lifecycle
from orchestrator.supervisor.messenger import Messenger
from orchestrator.supervisor.reaper import Reaper
from orchestrator.supervisor.specs import SpecBuilder
from orchestrator.supervisor.table import AgentTable
from orchestrator.supervisor.tracing import SupervisorTracing

START_TIMEOUT = 15.0  # seconds from start_agent to agent_ready before the start fails
ROOT_START_TIMEOUT = 30.0  # the root (and a restarted agent) may take longer: nobody waits on it


@dataclass
class Parts:
    """Everything a bus handler or the reconcile tick may use."""

    cfg: SwarmConfig
    table: AgentTable
    life: Lifecycle
    guards: GuardSet
    desk: ApprovalDesk
    bus: Messenger
    reaper: Reaper
    log: Any
    clock: Callable[[], float]
    wall: Callable[[], float]
    shutdown: Callable[[str], None]  # record the intent to shut down (the loop acts on it)
    shutting_down: Callable[[], bool]
    started: float = field(default_factory=time.time)
    tracing: SupervisorTracing = field(default_factory=SupervisorTracing.off)


def assemble(cfg: SwarmConfig, run_dir: Path, table: AgentTable, client: Any, backend: Any, reaper: Reaper,
             log: Any, *, endpoint: str, heartbeat_interval: float, liveness: int,
             shutdown: Callable[[str], None], shutting_down: Callable[[], bool],
             keys: Keyring, guards: GuardSet | None = None,
             tracing: SupervisorTracing | None = None,
             clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> Parts:
    """Wire the supervisor's parts around a bus client and a backend (real or fake).

    ``guards`` defaults to every limit of ``cfg`` (:func:`build_guards`);
    ``keys`` is the swarm's keyring (the backend issues through it; the lifecycle binds and revokes);
    ``tracing`` defaults to none (the service passes
    the run's exporter).
    """
    bus = Messenger(client, table, clock)
    specs = SpecBuilder(cfg, Path(run_dir), endpoint, heartbeat_interval, liveness)
    tracing = tracing or SupervisorTracing.off()
    life = Lifecycle(table, backend, reaper, bus, specs, log, keys, tracing)
    if guards is None:
        guards = build_guards(cfg, Path(run_dir), log, clock)
    desk = ApprovalDesk(cfg, table, life, bus, log, clock, wall, tracing)
    return Parts(cfg=cfg, table=table, life=life, guards=guards, desk=desk, bus=bus, reaper=reaper, log=log,
                 clock=clock, wall=wall, shutdown=shutdown, shutting_down=shutting_down, started=wall(),
                 tracing=tracing)
