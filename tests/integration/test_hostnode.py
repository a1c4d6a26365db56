"""A node's host (the Ray backend's NodeHost, no Ray): signals, exits, adoption, sweeps, real processes.

The zygote is replaced by a stand-in that starts plain Python processes,
each leading its own session as agents do; every process is killed at the
end of its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from bus.keyring import Keyring
from orchestrator.supervisor.backends.exitlog import ExitLog
from orchestrator.supervisor.backends.hostnode import NodeHost
from orchestrator.supervisor.spawner import SpawnError
from tests.support import wait_until

SLEEP = "import time; time.sleep(600)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


class StandInZygote:
    """The Spawner's interface: starts ``python -c TASK`` per spec and reports each exit code."""

    def __init__(self, run_dir: Path, on_exit: Any, log: Any = None, name: str = "zygote") -> None:
        self.on_exit = on_exit
        self.procs: list[subprocess.Popen] = []
        self.specs: list[Any] = []

    def start(self) -> None:
        pass

    def spawn(self, spec: Any) -> int:
        self.specs.append(spec)
        proc = subprocess.Popen([sys.executable, "-c", spec.task], start_new_session=True)
        self.procs.append(proc)
        threading.Thread(target=lambda: self.on_exit(proc.pid, proc.wait()), daemon=True).start()
        return proc.pid

    def stop(self) -> None:
        pass


def _spec(task: str, credential: dict[str, str] | None = None) -> dict[str, Any]:
    return {"agent_id": "a", "name": "a", "role_name": "w", "role": "w", "task": task, "commands": [],
            "endpoint": "tcp://127.0.0.1:1", "run_dir": "/tmp", "credential": credential or {}}


def _spawn(h: NodeHost, task: str, keys: Keyring | None = None) -> int:
    """What the driver does: the host makes the key pair, the keyring enrolls its public key, the host forks."""
    public = h.issue_key("a")["public"]
    cred = (keys or Keyring("curve")).enroll("a", "agent", public)
    return h.spawn(_spec(task, cred.to_dict()))


@pytest.fixture
def host(tmp_path):
    """A NodeHost over the stand-in zygote; every process it or the test started is killed afterwards."""
    h = NodeHost(str(tmp_path / "run"), "node-a", kill_timeout=0.3, spawner=StandInZygote)
    h.start()
    extra: list[subprocess.Popen] = []
    yield h, extra
    h.shutdown(kill_agents=True)
    for proc in h._spawner.procs + extra:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _exits(h: NodeHost, n: int) -> list[list[Any]]:
    return wait_until(lambda: (r := h.poll(h.incarnation, 0, 0.2)["events"]) and len(r) >= n and r, 20,
                      f"{n} exit(s)")


def test_exits_carry_the_exact_signal_and_code(host):
    """A SIGKILLed agent is reported with -9, one that exits on its own with its code, in order."""
    h, _ = host
    killed = _spawn(h, SLEEP)
    assert h.signal([killed], signal.SIGKILL) == [True]
    done = _spawn(h, "raise SystemExit(3)")
    events = _exits(h, 2)
    assert [(e[1], e[2]) for e in events] == [(killed, -9), (done, 3)]
    assert [e[0] for e in events] == [1, 2]


def test_a_host_signals_only_groups_it_owns(host):
    """A pgid the host did not start (or adopt) is never signalled: the answer is False and it lives."""
    h, extra = host
    foreign = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    extra.append(foreign)
    assert h.signal([foreign.pid], signal.SIGKILL) == [False]
    assert foreign.poll() is None


def test_sigterm_escalates_to_sigkill_after_the_kill_timeout(host):
    """An agent that ignores SIGTERM is SIGKILLed by the host itself once kill_timeout has passed."""
    h, _ = host
    pid = _spawn(h, STUBBORN)
    wait_until(lambda: _ignores_term(pid), 10, "the stand-in to ignore SIGTERM")
    t = time.monotonic()
    assert h.signal([pid], signal.SIGTERM) == [True]
    events = _exits(h, 1)
    assert events[0][1:] == [pid, -9]
    assert time.monotonic() - t >= 0.3


def _ignores_term(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        ignored = int(next(line for line in f if line.startswith("SigIgn:")).split()[1], 16)
    return bool(ignored & (1 << (signal.SIGTERM - 1)))


def test_adopted_processes_are_owned_and_their_end_is_seen(host):
    """After a restart the host adopts live processes it did not start; their exit comes with code None."""
    h, extra = host
    survivor = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    extra.append(survivor)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    got = h.adopt([[survivor.pid, time.time() - 60], [dead.pid, time.time() - 60]])
    assert got == {"adopted": [survivor.pid], "gone": [dead.pid]}
    assert h.signal([survivor.pid], signal.SIGKILL) == [True]
    survivor.wait()
    assert _exits(h, 1)[0][1:] == [survivor.pid, None]


def test_a_process_started_before_its_record_is_not_adopted(host):
    """A pid that was reused (started before the agent's record) is reported gone, not adopted."""
    h, extra = host
    other = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    extra.append(other)
    got = h.adopt([[other.pid, time.time() + 60]])
    assert got == {"adopted": [], "gone": [other.pid]}
    assert h.signal([other.pid], signal.SIGKILL) == [False]


def test_sweep_kills_the_groups_nobody_adopted(host):
    """sweep SIGKILLs live groups started no earlier than their record, and leaves the rest alone."""
    h, extra = host
    orphan = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    older = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    extra += [orphan, older]
    killed = h.sweep([[orphan.pid, time.time() - 60], [older.pid, time.time() + 60]])
    assert killed == [orphan.pid]
    assert orphan.wait(10) == -9 and older.poll() is None


def test_a_new_incarnation_reads_its_exits_from_the_start(host):
    """A poll carrying another incarnation's cursor gets every exit of this one (none is skipped)."""
    h, _ = host
    _spawn(h, "raise SystemExit(0)")
    _exits(h, 1)
    assert len(h.poll("an-older-incarnation", 57, 0)["events"]) == 1
    assert h.poll(h.incarnation, 1, 0)["events"] == []


def test_the_exit_log_drops_what_was_acknowledged():
    """Exits at or below the reader's cursor are dropped; a reader waits for a new one up to its wait."""
    log = ExitLog()
    log.add(10, 0)
    log.add(11, -15)
    assert [e[1] for e in log.after(0, 0)] == [10, 11]
    assert [e[1] for e in log.after(1, 0)] == [11]
    assert log.after(2, 0.05) == []
    got: list = []
    reader = threading.Thread(target=lambda: got.append(log.after(2, 30.0)))
    reader.start()
    log.add(12, 1)  # wakes the waiting reader (or is there before it waits)
    reader.join(30)
    assert got == [[(3, 12, 1)]]


def test_the_agent_gets_the_secret_made_on_its_node_and_nothing_else_does(host):
    """Only the public key leaves the host; the zygote's spec carries the matching secret; a spawn whose
    credential is not the key made here (or was made for nobody) is refused."""
    h, _ = host
    keys = Keyring("curve")
    public = h.issue_key("a")
    assert set(public) == {"public"}  # no secret crosses to the supervisor
    cred = keys.enroll("a", "agent", public["public"])
    with pytest.raises(SpawnError, match="no key pair was made"):
        h.spawn(_spec(SLEEP, {**cred.to_dict(), "public": zmq.curve_keypair()[0].decode()}))
    with pytest.raises(SpawnError, match="no key pair was made"):  # the pair was used up (or never made)
        h.spawn(_spec(SLEEP, cred.to_dict()))
    _spawn(h, "raise SystemExit(0)", keys)
    given = h._spawner.specs[-1].credential
    assert given["key_id"] in keys.principals and given["secret"]
    assert zmq.curve_public(given["secret"].encode()).decode() == given["public"]
