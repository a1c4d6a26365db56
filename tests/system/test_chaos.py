"""The short chaos run: ``bench/chaos.py`` for about 45 s, faults and all, must end with every invariant held.

It runs the bench's own contract (``--seed N --duration SECONDS``, exit 0 only when every invariant
held, the tables and the seed printed last) in a run directory under the test's tmp_path; whatever
happens, every process of that run is killed at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 13
DURATION = 45
TIMEOUT = 900  # the run's wall limit is 2 * 45 + 120 s; a loaded machine gets much more than that


def _kill_everything_under(path: Path) -> None:
    """SIGKILL the process group of every live process whose command line names ``path``."""
    marker = str(path)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                os.killpg(proc.info["pid"], signal.SIGKILL)
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            continue


@pytest.fixture
def workdir(tmp_path: Path):
    yield tmp_path
    _kill_everything_under(tmp_path)


@pytest.mark.slow
def test_short_chaos_run_keeps_every_invariant(workdir: Path) -> None:
    """A 45 s chaos run (agents, gateway, memory and supervisor killed, agents stopped) exits 0 with every invariant held."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "chaos.py"), "--seed", str(SEED),
                             "--duration", str(DURATION), "--workdir", str(workdir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = out.strip().splitlines()
    assert proc.returncode == 0, out[-3000:]
    assert lines[-1] == f"seed: {SEED}" and lines[-2] == "result: every invariant held"
    assert "BROKEN" not in out
    injected = {row.split()[0]: int(row.split()[1]) for row in lines if row.strip().startswith(
        ("agent_kill", "agent_stop", "gateway_kill", "memory_kill", "supervisor_kill"))}
    assert sum(injected.values()) >= 1, out[-3000:]  # the run did meet faults
