"""Helpers for memory-service tests: a broker thread, service processes, readiness.

Every helper returns what it started so the calling fixture can tear it
down; waits poll a condition until a deadline. The broker admits only the
credentials its keyring issued: the service's (``RUN_DIR/creds/memory.cred``,
read by :func:`start_service`), the operator's (``RUN_DIR/operator.cred``,
what ``swarm memory`` reads) and one per test peer (:meth:`MemoryBus.client`).
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
from bus.credentials import OPERATOR_FILE, Credential, read_credential, write_file
from bus.keyring import Keyring
from bus.sockets import ipc_endpoint, secure_dir
from memory.client import MemoryClient
from swarm_core.errors import BusError
from swarm_core.peers import MEMORY, OPERATOR, PeerKind, kind_of
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]





class MemoryBus:
    """A real broker on the run dir's ipc sockets, in a thread of this process (its log muted)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.keys = Keyring()
        write_file(secure_dir(run_dir / "creds") / "memory.cred", self.keys.issue(MEMORY, PeerKind.MEMORY))
        write_file(run_dir / OPERATOR_FILE, self.keys.issue(OPERATOR, PeerKind.OPERATOR))
        quiet = structlog.wrap_logger(structlog.ReturnLogger())
        self.broker = Broker(ipc_endpoint(run_dir, "bus"), ipc_endpoint(run_dir, "pub"), log=quiet,
                             keyring=self.keys)
        self.broker.start_thread()

    def credential(self, identity: str) -> Credential:
        """The operator's for a ``cli-`` id, else one issued for ``identity`` (an agent's, a service's)."""
        kind = kind_of(identity)
        if kind is PeerKind.OPERATOR:
            return read_credential(self.run_dir / OPERATOR_FILE)
        return self.keys.issue(identity, kind)

    def client(self, identity: str) -> BusClient:
        """A connected bus client on this broker, presenting ``identity``'s credential."""
        cred = self.credential(identity)
        return BusClient(ipc_endpoint(self.run_dir, "bus"), identity, credential=cred).connect()

    def stop(self) -> None:
        self.broker.stop()


def start_broker(run_dir: Path) -> MemoryBus:
    """A broker thread on the run dir's ipc sockets, with the credentials of the service and the operator."""
    return MemoryBus(run_dir)


def service_argv(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "memory.service", "--run-dir", str(run_dir),
            "--endpoint", ipc_endpoint(run_dir, "bus"),
            "--credential", str(run_dir / "creds" / "memory.cred"), *extra]


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
