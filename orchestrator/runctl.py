"""Find, start, reach and stop the supervisor of a run directory (used by the CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from bus.client import BusClient
from bus.credentials import OPERATOR_FILE, Credential, read_credential
from bus.retry import new_request_id, once
from bus.sockets import ipc_endpoint
from orchestrator.supervisor.reaper import GroupSignaller, ProcessSignaller, Reaper, Timings
from orchestrator.supervisor.registry import Registry
from orchestrator.supervisor.spawner import child_env
from swarm_core import messages as m
from swarm_core.errors import NotRunning, SwarmError
from swarm_core.peers import OPERATOR_PREFIX
from swarm_core.status import TERMINAL

PID_FILE = "supervisor.pid"
REGISTRY = "registry.db"
LEDGER = "ledger.db"  # the gateway's spend ledger: a new swarm starts from nothing, a resumed one keeps it


def supervisor_pid(run_dir: Path) -> int | None:
    """The pid of the live supervisor of ``run_dir``, or None."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if not any("orchestrator.supervisor" in part for part in proc.cmdline()):
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid


def open_registry(run_dir: Path) -> Registry:
    """The run's registry, read-only; NotRunning when there has been no swarm here."""
    path = run_dir / REGISTRY
    if not path.exists():
        raise NotRunning(f"no swarm in {run_dir} (no {REGISTRY}); start one with: swarm up CONFIG")
    return Registry(path, readonly=True)


def inspect_agent(run_dir: Path, agent_id: str) -> dict[str, Any]:
    """The ``swarm inspect --json`` view of one agent, read from the registry (NotFound if unknown)."""
    from orchestrator.supervisor.registry import inspect_view
    from swarm_core.errors import NotFound

    reg = open_registry(run_dir)
    try:
        info = inspect_view(reg, agent_id)
    finally:
        reg.close()
    if info is None:
        raise NotFound(f"no agent {agent_id!r} in this swarm")
    return info


def endpoint_of(run_dir: Path) -> str:
    """The bus endpoint the run's supervisor bound (ipc by default, tcp when configured)."""
    if (run_dir / REGISTRY).exists():
        reg = Registry(run_dir / REGISTRY, readonly=True)
        try:
            endpoint = reg.meta("endpoint")
        finally:
            reg.close()
        if endpoint:
            return str(endpoint)
    return ipc_endpoint(run_dir, "bus", create=False)


def operator_credential(run_dir: Path) -> Credential:
    """The operator's bus credential (``RUN_DIR/operator.cred``, 0600); NotRunning when there is none."""
    path = run_dir / OPERATOR_FILE
    if not path.exists():
        raise NotRunning(f"no swarm is running in {run_dir} (no operator credential at {path})")
    return read_credential(path)


def bus_client(run_dir: Path) -> BusClient:
    """A CLI session on the run's bus: the operator's credential, a session id of its own (``cli-...``)."""
    from bus.sockets import ipc_path

    endpoint = endpoint_of(run_dir)
    path = ipc_path(endpoint)
    if path is not None and not path.exists():
        raise NotRunning(f"no swarm is running in {run_dir} (no bus socket at {path})")
    client = BusClient(endpoint, f"{OPERATOR_PREFIX}{os.getpid()}-{os.urandom(3).hex()}",
                       credential=operator_credential(run_dir))
    return client.connect()


def connect(run_dir: Path) -> BusClient:
    """A CLI bus client of the running supervisor's swarm; NotRunning when there is none."""
    if supervisor_pid(run_dir) is None:
        raise NotRunning(f"no swarm is running in {run_dir}")
    return bus_client(run_dir)


def ask(run_dir: Path, body: Any, timeout: float = 10.0) -> Any:
    """Send one request to the supervisor and return its reply body."""
    client = connect(run_dir)
    try:
        return client.request("supervisor", body, timeout)
    finally:
        client.close()


def ask_once(run_dir: Path, make: Callable[[str], Any], budget: float = 30.0) -> Any:
    """A state-changing request to the supervisor under one request id, tried again after a lost
    answer (a restarting supervisor answers the retry with the first outcome; ``bus/retry.py``)."""
    request_id = new_request_id()
    client = connect(run_dir)
    try:
        return once(lambda t: client.request("supervisor", make(request_id), t), budget, client.poll)
    finally:
        client.close()


# ------------------------------------------------------------ operator actions
# The CLI and the dashboard act on agents through these, so both take the same
# authenticated operator path to the supervisor.


def kill_agent(run_dir: Path, agent_id: str, reason: str = "operator") -> int:
    """Stop agent ``agent_id`` and its subtree; return how many agents were stopped."""
    from swarm_core import messages as m

    reply = ask_once(run_dir, lambda rid: m.DeleteAgent(agent_id, reason=reason, request_id=rid))
    return int(reply.info.get("stopped", 0))


def kill_all(run_dir: Path, reason: str = "operator") -> int:
    """Stop every agent; return how many were stopped."""
    from swarm_core import messages as m

    return int(ask(run_dir, m.KillAll(reason)).info.get("stopped", 0))


def freeze_agent(run_dir: Path, agent_id: str, frozen: bool, reason: str = "operator") -> int:
    """Freeze (or thaw) agent ``agent_id``, every agent when it is ""; return how many."""
    from swarm_core import messages as m

    return int(ask(run_dir, m.Freeze(agent_id, frozen, reason)).info.get("agents", 0))


def send_message(run_dir: Path, agent_id: str, text: str) -> str:
    """Put ``text`` into agent ``agent_id``'s inbox (it sees it at its next step); the message's id.

    The supervisor keeps it before it answers; a retry after a lost answer is kept once."""
    from swarm_core import messages as m

    reply = ask_once(run_dir, lambda rid: m.OperatorMessage(agent_id, text, rid))
    return str(reply.info.get("message_id", "?"))


DENY_REASON = "denied by the operator"  # what the model reads when the operator gives no reason


def pending_requests(run_dir: Path) -> list[dict[str, Any]]:
    """The pending approval requests of the swarm in ``run_dir``, oldest first (``approvals --json``)."""
    from orchestrator.supervisor.approvals import ApprovalBook

    reg = open_registry(run_dir)
    try:
        return [a.listing() for a in ApprovalBook(reg.connection, readonly=True).pending()]
    finally:
        reg.close()


def approval_exists(run_dir: Path, request_id: str) -> bool:
    """Whether the registry of ``run_dir`` knows request ``request_id`` (in any state)."""
    from orchestrator.supervisor.approvals import ApprovalBook

    try:
        reg = open_registry(run_dir)
    except NotRunning:
        return False
    try:
        return ApprovalBook(reg.connection, readonly=True).get(request_id) is not None
    finally:
        reg.close()


def decide_request(run_dir: Path, request_id: str, approve: bool, text: str = "") -> dict[str, Any]:
    """Approve (``text``: a note) or deny (``text``: the reason) a request; the supervisor's answer.

    OperatorError for an unknown or already decided request, or a budget request to approve. Sent
    under one retry id: a retry after a lost answer gets the first decision's answer.
    """
    if not approve and not text:
        text = DENY_REASON
    return dict(ask_once(run_dir, lambda rid: m.Decide(request_id, approve, text, rid)).info)


def clean_previous_run(run_dir: Path) -> None:
    """Forget a finished swarm of this run directory (a new ``up`` is a new swarm)."""
    for name in (*_sqlite_files(REGISTRY), *_sqlite_files(LEDGER), "STOP", PID_FILE, OPERATOR_FILE,
                 "credentials.json"):
        try:
            (run_dir / name).unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(run_dir / "gateway", ignore_errors=True)  # replay cursors of the previous run
    logs = run_dir / "logs"
    if logs.exists():
        prev = run_dir / "logs.prev"
        shutil.rmtree(prev, ignore_errors=True)
        logs.rename(prev)


def _sqlite_files(name: str) -> tuple[str, str, str]:
    return name, name + "-wal", name + "-shm"


def start_supervisor(run_dir: Path, config: str, goal: str | None, extra: list[str]) -> subprocess.Popen:
    """Start the supervisor detached (own session), its output in ``logs/supervisor.out``."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    out = open(run_dir / "logs" / "supervisor.out", "ab")  # noqa: SIM115 - handed to the child
    argv = [sys.executable, "-m", "orchestrator.supervisor", "--run-dir", str(run_dir),
            "--config", config, *extra]
    if goal:
        argv += ["--goal", goal]
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=child_env(), close_fds=True)
    finally:
        out.close()


def wait_running(run_dir: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until the supervisor reports ``running``; raise with its last words if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise SwarmError(f"the supervisor exited during start-up (code {code}): "
                             f"{last_error(run_dir)}")
        if (run_dir / REGISTRY).exists():
            reg = Registry(run_dir / REGISTRY, readonly=True)
            try:
                # the pid check matters on --resume: the old run's state still says running
                if reg.meta("state") == "running" and reg.meta("supervisor_pid") == proc.pid:
                    return
            finally:
                reg.close()
        time.sleep(0.05)
    raise SwarmError(f"the supervisor did not come up within {timeout:g}s; see {run_dir}/logs")


def last_error(run_dir: Path) -> str:
    """The last 'error: ...' line the supervisor printed, or the tail of its output."""
    try:
        lines = (run_dir / "logs" / "supervisor.out").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "no output"
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return lines[-1] if lines else "no output"


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as gone)."""
    return not ProcessSignaller().alive(pid)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every pid is gone (or a zombie); return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if p]
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not gone(p)]
        if alive:
            time.sleep(0.02)
    return alive


def stop_supervisor(run_dir: Path, pid: int, timeout: float) -> list[int]:
    """The ladder for a running supervisor: ask it to go down (it stops its agents and services),
    SIGTERM after ``timeout`` seconds, SIGKILL 5 s later; returns it if it is still alive after all."""
    reaper = Reaper(time.monotonic, ProcessSignaller(), Timings(stop=timeout, term=5.0, recheck=5.0))

    def ask_down() -> None:
        try:
            ask(run_dir, m.Down("down"), 10.0)
        except SwarmError:
            pass  # it may be too busy or already going: the ladder goes on

    reaper.stop(pid, ask=ask_down)
    return reaper.drain([pid], time.monotonic() + timeout + 10.0, time.sleep)


def _ours(pid: int, since: float) -> bool:
    """Whether ``pid`` is still the process we started (not a reused pid)."""
    try:
        return psutil.Process(pid).create_time() >= since - 1.0
    except psutil.NoSuchProcess:
        return False


def kill_leftovers(run_dir: Path) -> int:
    """Kill agent process groups the registry still shows alive (the supervisor is gone).

    Agents on the nodes of a shared Ray cluster are not processes of this machine: when the
    supervisor did not go down cleanly, their hosts are asked to kill them (``backends``).
    """
    if not (run_dir / REGISTRY).exists():
        return 0
    reg = Registry(run_dir / REGISTRY, readonly=True)
    try:
        recs, facts, state = reg.all(), reg.meta("backend"), reg.meta("state")
    finally:
        reg.close()
    here = not facts or facts.get("kind") != "ray" or facts.get("private")
    reaper = Reaper(time.monotonic, GroupSignaller())
    agents = [r.pid for r in recs if r.pid and (here or r.node is None) and not gone(r.pid)
              and _ours(r.pid, r.created_at)]
    for pgid in agents + swarm_processes(run_dir):
        reaper.stop(pgid, hard=True)
    if state != "down" and supervisor_pid(run_dir) is None:
        from orchestrator.supervisor.backends import release_leftovers

        release_leftovers(facts, run_dir)
    return len(agents)


def release_for_resume(run_dir: Path) -> None:
    """Before ``up --resume``: end what a dead supervisor's backend left that cannot be taken over."""
    reg = Registry(run_dir / REGISTRY, readonly=True)
    try:
        facts, state = reg.meta("backend"), reg.meta("state")
    finally:
        reg.close()
    if state != "down" and supervisor_pid(run_dir) is None:
        from orchestrator.supervisor.backends import release_leftovers

        release_leftovers(facts, run_dir, keep_agents=True)


_OUR_MODULES = ("orchestrator.supervisor", "orchestrator.gateway", "memory.service")


def swarm_processes(run_dir: Path) -> list[int]:
    """Supervisor, zygote (and its agents), gateway and memory processes of ``run_dir``."""
    marker = str(run_dir)
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = proc.info["cmdline"] or []
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.info["pid"] != os.getpid() and marker in cmd and any(mod in cmd for mod in _OUR_MODULES):
            out.append(proc.info["pid"])
    return out


def live_pids(run_dir: Path, ids: list[str] | None = None) -> list[int]:
    """Pids on this machine of agents not yet gone (optionally only ``ids``).

    Agents on the nodes of a shared Ray cluster are left out: their pids mean nothing here.
    """
    reg = open_registry(run_dir)
    try:
        facts = reg.meta("backend")
        here = not facts or facts.get("kind") != "ray" or facts.get("private")
        return [r.pid for r in reg.all() if r.pid and (ids is None or r.id in ids)
                and (here or r.node is None) and (r.status not in TERMINAL or not gone(r.pid))]
    finally:
        reg.close()
