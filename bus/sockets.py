"""Endpoints and socket hygiene shared by the broker and its clients."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from swarm_core.errors import ConfigError

# sockaddr_un.sun_path is 108 bytes including the NUL
MAX_IPC_PATH = 107


def secure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) and make it private to this user (0700)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o700)
    return p


def ipc_endpoint(run_dir: str | os.PathLike[str], name: str, create: bool = True) -> str:
    """The ``ipc://`` endpoint for socket ``name`` of the swarm in ``run_dir``.

    The socket lives under ``<run_dir>/sock`` (mode 0700). When that path is
    longer than a Unix socket path may be, a short private directory under
    the system temp dir, named by a hash of the run dir, is used instead.
    With ``create`` false the directory is not made (a lookup, not a bind).
    """
    run = Path(run_dir).resolve()
    path = run / "sock" / f"{name}.ipc"
    if len(str(path).encode()) > MAX_IPC_PATH:
        digest = hashlib.sha1(str(run).encode()).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"swarm-{os.getuid()}-{digest}"
        path = short / f"{name}.ipc"
        if len(str(path).encode()) > MAX_IPC_PATH:
            raise ConfigError(
                f"run directory {run} gives an ipc socket path longer than {MAX_IPC_PATH} bytes; "
                "use a shorter --run-dir or TMPDIR",
                field="run_dir",
            )
    if create:
        secure_dir(path.parent)
    return f"ipc://{path}"


def ipc_path(endpoint: str) -> Path | None:
    """The filesystem path of an ``ipc://`` endpoint, or None for other transports."""
    return Path(endpoint[len("ipc://"):]) if endpoint.startswith("ipc://") else None


def configure_socket(sock, *, linger: int = 0, sndhwm: int | None = None, rcvhwm: int | None = None) -> None:
    """Apply the options every socket of ours has (linger 0: never hang on exit)."""
    import zmq

    sock.setsockopt(zmq.LINGER, linger)
    if sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, sndhwm)
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
