"""Helpers for memory-service tests: a broker thread, service processes, readiness.

Every helper returns what it started so the calling fixture can tear it
down; waits poll a condition until a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import structlog

from bus.broker import Broker
from bus.client import BusClient
from bus.sockets import ipc_endpoint
from memory.client import MemoryClient
from swarm_core.errors import BusError
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]





def start_broker(run_dir: Path) -> Broker:
    """A real broker on the run dir's ipc sockets, in a thread of this process (its log muted)."""
    quiet = structlog.wrap_logger(structlog.ReturnLogger())
    broker = Broker(ipc_endpoint(run_dir, "bus"), ipc_endpoint(run_dir, "pub"), log=quiet)
    broker.start_thread()
    return broker


def service_argv(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "memory.service", "--run-dir", str(run_dir),
            "--endpoint", ipc_endpoint(run_dir, "bus"), *extra]


def start_service(run_dir: Path, *extra: str) -> subprocess.Popen:
    """The memory service as a real process (its output goes to run_dir/memory.out)."""
    out = open(run_dir / "memory.out", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(service_argv(run_dir, *extra), cwd=ROOT, stdout=out, stderr=out,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        out.close()


def wait_ready(mc: MemoryClient, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> dict:
    """Ask for stats until the service answers (it is unknown to the broker until it heartbeats)."""

    def ask() -> dict | None:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"memory service exited with {proc.returncode} before it was ready")
        try:
            return mc.stats(timeout=1.0)
        except BusError:  # unknown_destination until it registers; deadline while it starts
            return None

    return wait_until(ask, timeout, "the memory service to answer")


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``; reap it (idempotent)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def client(run_dir: Path, identity: str) -> BusClient:
    """A connected bus client on the run's broker."""
    return BusClient(ipc_endpoint(run_dir, "bus"), identity).connect()
