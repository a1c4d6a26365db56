"""Recovery after a supervisor crash (``swarm up --resume``).

The registry survives a ``kill -9`` of the supervisor; its agents do too
(each in its own session), and so may its services. On resume the new
supervisor kills the old services (they would fight the new ones for their
bus identities and files), adopts every agent process that is still the one
it started, and marks every other unfinished agent ``crashed`` with the
reason, so ``swarm ps`` tells the truth. Which processes are adopted is the
backend's call (:meth:`~orchestrator.supervisor.backends.base.Backend.adopt`):
on this machine, those still alive and started no earlier than their record.
"""

from __future__ import annotations

from typing import Any, Callable

import psutil

from orchestrator.supervisor.backends.base import Known
from orchestrator.supervisor.reaper import Reaper
from orchestrator.supervisor.table import AgentTable
from swarm_core.status import Status

LOST = "lost while the supervisor was down"


def same_process(pid: int, created_after: float) -> bool:
    """Whether ``pid`` is alive and was created no earlier than ``created_after`` (no pid reuse)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() >= created_after - 1.0
    except psutil.NoSuchProcess:
        return False


def kill_old_services(table: AgentTable, reaper: Reaper, log: Any) -> list[str]:
    """Kill the process groups of the previous run's services (recorded in the registry)."""
    killed = []
    for name, (pid, created) in (table.meta("service_pids", {}) or {}).items():
        if pid and same_process(pid, created):
            reaper.stop(pid, hard=True)
            killed.append(name)
    if killed:
        log.warning("old_services_killed", services=killed)
    return killed


def recover(table: AgentTable, reaper: Reaper, log: Any,
            adopt: Callable[[list[Known]], dict[int, str | None]]) -> list[str]:
    """Kill old services (``reaper``: this machine's), have the backend ``adopt`` the live agents,
    mark the others crashed (blocked).

    Returns the ids of the agents adopted (their ``node`` is where they are owned now).
    """
    kill_old_services(table, reaper, log)
    live = table.live()
    owned = adopt([Known(r.id, r.pid, r.node, r.created_at) for r in live if r.pid])
    adopted = []
    for rec in live:
        if rec.pid and rec.pid in owned:
            adopted.append(rec.id)
            if owned[rec.pid] != rec.node:
                table.update(rec.id, node=owned[rec.pid])
            table.log_event(rec.id, "adopted", f"pid {rec.pid} after a supervisor restart")
        else:
            table.end(rec.id, Status.CRASHED, LOST)
            table.log_event(rec.id, "crashed", LOST)
    table.block_terminal()
    log.info("recovered", adopted=adopted)
    return adopted
