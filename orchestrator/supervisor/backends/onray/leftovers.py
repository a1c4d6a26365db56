"""What a Ray swarm's supervisor left behind when it died: its private cluster, its host actors.

``swarm down`` (and a new ``swarm up``) call :func:`release` when the
registry says the previous supervisor never went down cleanly. A private
cluster lived in that supervisor's session (it led one: ``swarm up`` starts
it with ``setsid``): every process of the session started after it is
SIGKILLed. On a cluster that outlives the swarm (``auto``, ``HOST:PORT``),
each host actor of the swarm's namespace is asked to kill the agents it owns
and to stop, then the actor is killed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from swarm_core.errors import SwarmError

CONNECT_TIMEOUT = 30.0


def session_processes(sid: int, since: float) -> list[int]:
    """Processes of session ``sid`` started at or after ``since`` (not this one)."""
    out = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        pid = proc.info["pid"]
        try:
            if pid != os.getpid() and os.getsid(pid) == sid and proc.info["create_time"] >= since - 1.0:
                out.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return out


def _kill_session(sid: int, since: float) -> int:
    pids = session_processes(sid, since)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and session_processes(sid, since):
        time.sleep(0.02)
    return len(pids)


def _release_hosts(facts: dict[str, Any]) -> int:
    import threading

    import ray

    ended: list[int] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            ray.init(address=facts["address"], namespace=facts["namespace"], logging_level="ERROR",
                     log_to_driver=False, configure_logging=False)
            try:
                for name in ray.util.list_named_actors():
                    if "-host-" in name:
                        actor = ray.get_actor(name)
                        ended.extend(ray.get(actor.shutdown.remote(True), timeout=10))
                        ray.kill(actor, no_restart=True)
            finally:
                ray.shutdown()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)  # ray.init waits for ever on a cluster that is gone
    thread.start()
    thread.join(CONNECT_TIMEOUT)
    if thread.is_alive() or failed:
        why = str(failed[0]).splitlines()[0] if failed else f"no answer within {CONNECT_TIMEOUT:g}s"
        raise SwarmError(f"cannot reach the Ray cluster at {facts['address']} to stop this swarm's hosts "
                         f"and their agents: {why}")
    return len(ended)


def release(facts: dict[str, Any], run_dir: Path, keep_agents: bool = False) -> int:
    """End the private cluster's processes, or have the hosts of a shared cluster kill their agents.

    Agents lead their own sessions: ending a private cluster's session leaves them to be adopted.
    With ``keep_agents`` the hosts of a shared cluster are left alone (a resumed supervisor takes
    them over). Returns how many processes were ended; SwarmError when a shared cluster cannot be
    reached.
    """
    if facts.get("private"):
        sid, since = facts.get("session"), facts.get("started")
        return _kill_session(int(sid), float(since)) if sid and since else 0
    return 0 if keep_agents else _release_hosts(facts)
