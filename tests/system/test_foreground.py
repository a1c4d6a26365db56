"""``swarm up`` in the foreground: progress, the root's result and exit code, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

from tests.system.conftest import base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_foreground_up_prints_result_and_exits_0(swarm):
    """The foreground run shows progress, prints the root's result, exits 0 and leaves nothing running."""
    cas = {"manager": [cmd("start_agent", name="w", task="write", role="worker"), cmd("do_nothing"),
                       cmd("task_complete", reason="all written")],
           "w": [cmd("write_to_file", file="out.txt", text="hello"), cmd("task_complete", reason="wrote")]}
    run = swarm(base_config(), cas)
    p = run.cli("up", str(run.config_path))
    assert p.returncode == 0, p.stderr
    assert "manager completed: all written" in p.stdout
    assert "write_to_file" in p.stdout  # progress lines
    assert (run.workspace / "out.txt").read_text() == "hello"
    assert run.supervisor_pid() is None
    assert {a["status"] for a in run.ps()} == {"done"}


def test_foreground_failure_exits_nonzero(swarm):
    """A root whose cassette runs out fails: the foreground run says so and exits 1."""
    run = swarm(base_config(), {"manager": [cmd("read_file", file="x.txt")]})
    p = run.cli("up", str(run.config_path), timeout=90)
    assert p.returncode == 1
    assert "manager ended failed" in p.stderr and "cassette" in p.stderr


def test_ctrl_c_stops_everything(swarm):
    """Ctrl-C (SIGINT) on a foreground run stops every process of the swarm and exits 130."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [cmd("do_nothing")], "repeat": True}}
    run = swarm(base_config(), cas)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "up", str(run.config_path)],
                            cwd=run.dir, env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: run.supervisor_pid(), what="the supervisor started")
        agents = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")
        sup = psutil.Process(run.supervisor_pid())
        procs = [sup] + sup.children(recursive=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "stopping the swarm" in err
        _, alive = psutil.wait_procs(procs, timeout=10)
        assert not [q for q in alive if q.status() != psutil.STATUS_ZOMBIE]
        assert {a["pid"] for a in agents.values()} <= {q.pid for q in procs}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
