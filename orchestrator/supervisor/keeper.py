"""The zygote is supervised: when it dies, it is started again within its restart intensity.

Without a zygote no agent can be started or restarted. :class:`ZygoteKeeper`
looks at it on every reconcile tick: a dead zygote is restarted (the same
:class:`RestartIntensity` limit as the services: at most ``MAX_RESTARTS``
restarts within ``RESTART_PERIOD`` seconds), logged (``zygote_crashed``, ``zygote_restarted``,
``zygote_gave_up``) and recorded on the service board, which ``swarm ps``
shows. The agents the dead zygote forked live on in their own sessions, but
their exits are no longer reported: the agent table watches their pids like
adopted ones.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from orchestrator.supervisor.board import GIVEN_UP, RESTARTING, UP, ServiceBoard
from orchestrator.supervisor.intensity import RestartIntensity
from orchestrator.supervisor.lifecycle import describe_exit
from orchestrator.supervisor.services import MAX_RESTARTS, RESTART_PERIOD
from orchestrator.supervisor.spawner import SpawnError

ZYGOTE = "zygote"


class ZygoteKeeper:
    """Watch the spawner's zygote; restart it while its restart intensity allows."""

    def __init__(self, spawner: Any, table: Any, board: ServiceBoard, log: Any,
                 clock: Callable[[], float] = time.monotonic, max_restarts: int = MAX_RESTARTS,
                 period: float = RESTART_PERIOD) -> None:
        self.spawner = spawner
        self.table = table
        self.board = board
        self.log = log
        self.clock = clock
        self.intensity = RestartIntensity(max_restarts, period)
        self.period = period
        self.restarts = 0
        self.state = ""

    def started(self) -> None:
        """The first zygote is up (the supervisor waited for it)."""
        self._set(UP)

    def check(self) -> None:
        """One look: record a restarted zygote that became ready; restart a dead one, or give it up."""
        sp = self.spawner
        if sp.alive:
            if sp.ready and self.state != UP:
                self._set(UP)
                self.log.info("zygote_restarted", pid=sp.pid, restart=self.restarts)
            return
        if self.state == GIVEN_UP:
            return
        reason = describe_exit(sp.exit_code)
        self.table.orphan_all()  # nobody reports their exits any more: poll their pids
        if not self.intensity.allow(self.clock()):
            self.log.error("zygote_gave_up", reason=reason, restarts=self.restarts)
            within = f"restarted {self.intensity.recent} times within {self.period:g}s"
            self.table.log_event(None, "zygote_gave_up", f"{reason}; {within}")
            self._set(GIVEN_UP, f"{reason}; {within} already")
            return
        self.restarts += 1
        self.log.warning("zygote_crashed", reason=reason, restart=self.restarts)
        self.table.log_event(None, "zygote_crashed", reason)
        try:
            self.spawner.start(wait=False)
        except (OSError, SpawnError) as exc:
            self.log.error("zygote_start_failed", error=str(exc))
        self._set(RESTARTING, reason)

    def _set(self, state: str, reason: str = "") -> None:
        self.state = state
        self.board.set(ZYGOTE, state, pid=self.spawner.pid, reason=reason, restarts=self.restarts)
