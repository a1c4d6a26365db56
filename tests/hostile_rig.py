"""What the hostile-code tests share: the targets an attacker aims at, and the checks from outside.

:class:`Targets` starts, and :meth:`Targets.close` stops, a TCP listener on
127.0.0.1, an abstract Unix socket listener, an unrelated sleeping process
and an empty folder outside any workspace; :meth:`Targets.for_attacks` gives
the dict ``tests/hostile_attacks.py`` takes, and the ``check_*`` methods look
from outside for what an attack would have left (a connection, a file, a
dead process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "tests" / "hostile_attacks.py"


class Targets:
    """Listeners, a bystander process and an outside folder for one hostile test (``close()`` them)."""

    def __init__(self, tmp: Path) -> None:
        self.token = uuid.uuid4().hex[:12]
        self.secret = f"swarm-secret-{self.token}"
        self.marker = f"SWARM-DAEMON-{self.token}"
        self.escape_name = f"swarm-escape-{self.token}.pth"
        self.outside = tmp / "outside"
        self.outside.mkdir()
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.setblocking(False)
        self.abstract_name = f"swarm-test-{self.token}"
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(8)
        self.abstract.setblocking(False)
        self.bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)"])

    def folders(self) -> dict[str, str]:
        """Folders outside the workspace an attacker tries to write into."""
        return {"an outside folder": str(self.outside), "/tmp": "/tmp", "$HOME": str(Path.home()),
                "the project": str(ROOT), "the venv's site-packages": sysconfig.get_paths()["purelib"]}

    def for_attacks(self, **more: Any) -> dict[str, Any]:
        """The TARGETS dict of ``tests/hostile_attacks.py`` (plus ``more``)."""
        return {"secret": self.secret, "tcp_port": self.tcp.getsockname()[1], "abstract": self.abstract_name,
                "unrelated_pid": self.bystander.pid, "outside": self.folders(),
                "escape_name": self.escape_name, "marker": self.marker, "project": str(ROOT), **more}

    def source(self, targets: dict[str, Any]) -> str:
        """The attack script's text with ``targets`` filled in."""
        text = ATTACKS.read_text()
        return text.replace("TARGETS = {}", f"TARGETS = {targets!r}", 1)

    def connections(self) -> list[str]:
        """Connections that reached either listener (an attack got through)."""
        got = []
        for name, sock in (("tcp", self.tcp), ("abstract", self.abstract)):
            try:
                conn, _ = sock.accept()
                conn.close()
                got.append(name)
            except BlockingIOError:
                pass
        return got

    def escaped_files(self) -> list[str]:
        """Files the attacks would have written outside the workspace (removed if found)."""
        found = []
        for folder in self.folders().values():
            path = Path(folder) / self.escape_name
            if path.exists():
                found.append(str(path))
                path.unlink()
        return found

    def daemons(self) -> list[int]:
        """Live processes started by the daemon attack."""
        out = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                zombie = proc.info["status"] == psutil.STATUS_ZOMBIE
                if self.marker in (proc.info["cmdline"] or ()) and not zombie:
                    out.append(proc.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def bystander_alive(self) -> bool:
        return self.bystander.poll() is None

    def close(self) -> None:
        for pid in self.daemons():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.escaped_files()
        if self.bystander.poll() is None:
            self.bystander.kill()
        self.bystander.wait()
        self.tcp.close()
        self.abstract.close()


@pytest.fixture
def targets(tmp_path):
    """Listeners, a bystander process and an outside folder for hostile code; all stopped at the end."""
    t = Targets(tmp_path)
    try:
        yield t
    finally:
        t.close()


def broken(outcomes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The attacks that succeeded, with their details."""
    return {name: o["detail"] for name, o in outcomes.items() if o["succeeded"]}


def table(outcomes: dict[str, dict[str, Any]]) -> str:
    """One line per attack: held/BROKE, its name, how it ended (printed by the tests for the record)."""
    return "\n".join(f"{'BROKE' if o['succeeded'] else 'held '}  {name}: {o['detail'][:140]}"
                     for name, o in outcomes.items())
