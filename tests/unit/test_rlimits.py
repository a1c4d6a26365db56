"""The rlimits the zygote sets on an agent before it runs, and how exits are described."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from orchestrator.supervisor.lifecycle import describe_exit
from orchestrator.supervisor.zygote import EXIT_OUT_OF_MEMORY

pytestmark = pytest.mark.timeout(60)


def run_limited(limits: dict, code: str) -> subprocess.CompletedProcess:
    prog = ("import sys\nfrom orchestrator.supervisor.zygote import apply_rlimits\n"
            "from swarm_core.spec import RLimits\n"
            f"apply_rlimits(RLimits(**{limits!r}))\n{code}\n")
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=30)


def test_memory_limit_makes_big_allocations_fail():
    """With memory_mb set, a larger allocation raises MemoryError instead of growing the process."""
    p = run_limited({"memory_mb": 400}, "try:\n    bytearray(800 * 2**20)\nexcept MemoryError:\n    sys.exit(42)")
    assert p.returncode == 42, p.stderr


def test_open_files_limit():
    """With open_files set, opening more files than that fails with EMFILE."""
    p = run_limited({"open_files": 20}, "fs = []\ntry:\n    [fs.append(open(sys.executable, 'rb')) for _ in range(50)]\n"
                                      "except OSError as e:\n    sys.exit(40 if e.errno == 24 else 1)")
    assert p.returncode == 40, p.stderr


def test_cpu_limit_stops_a_spinner():
    """With cpu_seconds set, the kernel stops a busy loop (SIGXCPU, then SIGKILL at the hard limit)."""
    p = run_limited({"cpu_seconds": 1}, "while True:\n    pass")
    assert p.returncode in (-signal.SIGXCPU, -signal.SIGKILL)


def test_zero_means_unlimited():
    """A limit of 0 leaves the process as it was."""
    p = run_limited({"memory_mb": 0, "cpu_seconds": 0, "open_files": 0}, "bytearray(300 * 2**20); print('ok')")
    assert p.returncode == 0 and p.stdout.strip() == "ok"


def test_exit_descriptions_name_the_limit():
    """Exit codes and signals become reasons that say which limit stopped the agent."""
    assert "memory rlimit" in describe_exit(EXIT_OUT_OF_MEMORY)
    assert describe_exit(-signal.SIGXCPU).startswith("SIGXCPU") and "cpu rlimit" in describe_exit(-signal.SIGXCPU)
    assert describe_exit(3) == "exit code 3"
    assert "SIGKILL" in describe_exit(-signal.SIGKILL)
