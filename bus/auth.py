"""CurveZMQ for ``tcp://`` buses: keys in the run directory, server and client sides.

Layout under ``<run_dir>/keys`` (every directory 0700, secret files 0600)::

    server.key  server.key_secret      the broker's keypair
    clients/<name>.key[_secret]        client keypairs handed to our processes
    allowed/<name>.key                 public keys the broker accepts

The broker applies :class:`CurveServer` to its sockets and runs a ZAP
authenticator (``zmq.auth.thread.ThreadAuthenticator``) that accepts only the
public keys found in ``allowed/``: a client with any other key (or none)
never completes the handshake and gets nothing. ``ipc://`` buses use no curve
(the 0700 socket directory is the access control): :func:`server_for` and
:func:`client_for` return None for them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from bus.sockets import secure_dir
from swarm_core.errors import ConfigError

DEFAULT_CLIENT = "swarm"


def keys_dir(run_dir: str | os.PathLike[str]) -> Path:
    """Where the run's CurveZMQ keys live."""
    return Path(run_dir) / "keys"


def _create(directory: Path, name: str) -> tuple[Path, Path]:
    public, secret = (Path(p) for p in zmq.auth.create_certificates(directory, name))
    os.chmod(secret, 0o600)
    return public, secret


def ensure_keys(run_dir: str | os.PathLike[str], clients: tuple[str, ...] = (DEFAULT_CLIENT,)) -> Path:
    """Create the server keypair and the named client keypairs if missing; allow those clients."""
    root = secure_dir(keys_dir(run_dir))
    if not (root / "server.key_secret").exists():
        _create(root, "server")
    secure_dir(root / "clients")
    secure_dir(root / "allowed")
    for name in clients:
        add_client(run_dir, name)
    return root


def add_client(run_dir: str | os.PathLike[str], name: str) -> Path:
    """Create (if missing) client keypair ``name`` and allow it; returns its secret file."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid curve client name {name!r}", field="name")
    root = keys_dir(run_dir)
    clients = secure_dir(root / "clients")
    secret = clients / f"{name}.key_secret"
    if not secret.exists():
        _create(clients, name)
    allowed = secure_dir(root / "allowed") / f"{name}.key"
    if not allowed.exists():
        shutil.copyfile(clients / f"{name}.key", allowed)
    return secret


def _load(path: Path, want_secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read CurveZMQ key {path}: {exc}", file=str(path)) from None
    if want_secret and not secret:
        raise ConfigError(f"CurveZMQ key {path} has no secret key", file=str(path))
    return public, secret


@dataclass(frozen=True)
class CurveServer:
    """The broker's keypair and the directory of client public keys it accepts."""

    public: bytes
    secret: bytes
    allowed_dir: Path

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike[str]) -> "CurveServer":
        """Load (creating if missing) the server keys of a run directory."""
        root = ensure_keys(run_dir)
        public, secret = _load(root / "server.key_secret", True)
        return cls(public, secret, root / "allowed")  # type: ignore[arg-type]

    def apply_server(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CurveZMQ server (before bind)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def start_authenticator(self, context: zmq.Context) -> Any:
        """Start a ZAP handler on ``context`` accepting only the allowed public keys.

        Returns the authenticator; the caller stops it (``.stop()``) when it
        closes its sockets. One per context.
        """
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(context)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.allowed_dir))
        return auth


@dataclass(frozen=True)
class CurveClient:
    """A client keypair and the server public key it expects."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike[str], name: str = DEFAULT_CLIENT) -> "CurveClient":
        """Load client keypair ``name`` of a run directory (creating and allowing it if missing)."""
        ensure_keys(run_dir, clients=())
        secret_file = add_client(run_dir, name)
        public, secret = _load(secret_file, True)
        server_public, _ = _load(keys_dir(run_dir) / "server.key", False)
        return cls(public, secret, server_public)  # type: ignore[arg-type]

    @classmethod
    def generate(cls, directory: str | os.PathLike[str], name: str, server_public: bytes) -> "CurveClient":
        """A fresh keypair in ``directory`` that no broker has allowed (yet)."""
        _, secret_file = _create(secure_dir(directory), name)
        public, secret = _load(secret_file, True)
        return cls(public, secret, server_public)  # type: ignore[arg-type]

    def apply_client(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CurveZMQ client of the server (before connect)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = self.server_public


def server_for(endpoint: str, run_dir: str | os.PathLike[str]) -> CurveServer | None:
    """The curve config a broker on ``endpoint`` uses: keys for tcp://, None for ipc://."""
    return CurveServer.from_run_dir(run_dir) if endpoint.startswith("tcp://") else None


def client_for(endpoint: str, run_dir: str | os.PathLike[str],
               name: str = DEFAULT_CLIENT) -> CurveClient | None:
    """The curve config a client of ``endpoint`` uses: keys for tcp://, None for ipc://."""
    return CurveClient.from_run_dir(run_dir, name) if endpoint.startswith("tcp://") else None
