"""Recovery after a supervisor crash (``swarm up --resume``).

The registry survives a ``kill -9`` of the supervisor; its agents do too
(each in its own session), and so may its services. On resume the new
supervisor kills the old services (they would fight the new ones for their
bus identities and files), adopts every agent process that is still the one
it started, and marks every other unfinished agent ``crashed`` with the
reason, so ``swarm ps`` tells the truth.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psutil

from orchestrator.supervisor.registry import Registry


def same_process(pid: int, created_after: float) -> bool:
    """Whether ``pid`` is alive and was created no earlier than ``created_after`` (no pid reuse)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() >= created_after - 1.0
    except psutil.NoSuchProcess:
        return False


def kill_old_services(reg: Registry, log: Any) -> list[str]:
    """SIGKILL the process groups of the previous run's services (recorded in the registry)."""
    killed = []
    for name, (pid, created) in (reg.meta("service_pids", {}) or {}).items():
        if pid and same_process(pid, created):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(name)
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        log.warning("old_services_killed", services=killed)
    return killed


def recover(reg: Registry, log: Any) -> list[str]:
    """Adopt live agents, mark lost ones crashed; return the adopted agent ids."""
    kill_old_services(reg, log)
    adopted = []
    now = time.time()
    for rec in reg.all():
        if rec.terminal:
            continue
        if rec.pid and same_process(rec.pid, rec.created_at):
            adopted.append(rec.id)
            reg.log_event(rec.id, "adopted", f"pid {rec.pid} after a supervisor restart")
        else:
            reg.update(rec.id, status="crashed", reason="lost while the supervisor was down", ended_at=now)
            reg.log_event(rec.id, "crashed", "lost while the supervisor was down")
    log.info("recovered", adopted=adopted)
    return adopted
