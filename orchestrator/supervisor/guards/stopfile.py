"""The emergency stop: ``touch RUN_DIR/STOP`` kills every agent (services and supervisor stay up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from orchestrator.supervisor.guards.base import Guard, Stop, Tick
from swarm_core.status import Reason

STOP_FILE = "STOP"


class StopFile(Guard):
    """While ``path`` exists, every live agent is killed (a top-level one first: its subtree goes too)."""

    def __init__(self, path: Path, log: Any) -> None:
        self.path = Path(path)
        self.log = log

    def on_tick(self, tick: Tick) -> Iterable[Stop]:
        if not self.path.exists():
            return ()
        live = tick.agents.live()
        if live:
            self.log.warning("stop_file_seen", agents=len(live))
        return [Stop(r.id, Reason.STOP_FILE, hard=True) for r in live]
