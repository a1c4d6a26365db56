"""CurveZMQ for ``tcp://`` buses: keys in the run directory, server and client sides.

Layout under ``<run_dir>/keys`` (every directory 0700, secret files 0600)::

    server.key  server.key_secret      the broker's keypair
    clients/<name>.key[_secret]        client keypairs handed to our processes
    allowed/<name>.key                 public keys the broker accepts
    issued/<name>.key[_secret]         keypairs made where the process runs (a Ray node's host)

The broker applies :class:`CurveServer` to its sockets and runs a ZAP
authenticator (``zmq.auth.thread.ThreadAuthenticator``) that accepts only the
public keys of its :class:`KeyRing`: those found in ``allowed/`` at start and
those allowed since (:meth:`CurveServer.allow`). A client with any other key
(or none) never completes the handshake and gets nothing. A keypair can be
issued where its process runs (:func:`issue_key`): only the public key
leaves that machine, to be allowed by the broker. ``ipc://`` buses use no curve
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


def issue_key(directory: str | os.PathLike[str], name: str) -> tuple[Path, str]:
    """A fresh keypair ``name`` in ``directory`` (0700; secret 0600): its secret file and public key (z85)."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid curve client name {name!r}", field="name")
    _, secret_file = _create(secure_dir(directory), name)
    public, _ = _load(secret_file, True)
    return secret_file, public.decode("ascii")


def write_public_key(path: Path, public: str) -> None:
    """Write a public-key certificate file (the format ``zmq.auth.load_certificate`` reads)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f'curve\n    public-key = "{public}"\n')
    os.replace(tmp, path)


class KeyRing:
    """The public keys (z85) the broker accepts; the ZAP handler asks :meth:`callback` per handshake."""

    def __init__(self, keys: set[bytes] | None = None) -> None:
        self._keys: frozenset[bytes] = frozenset(keys or ())  # swapped whole: read without a lock

    @classmethod
    def from_dir(cls, directory: Path) -> "KeyRing":
        """Every public key certificate in ``directory``."""
        return cls({pub for pub, _ in (_load(p, False) for p in sorted(directory.glob("*.key")))})

    def add(self, public: bytes) -> None:
        self._keys = self._keys | {public}

    def discard(self, public: bytes) -> None:
        self._keys = self._keys - {public}

    def callback(self, domain: str, key: bytes) -> bool:
        """pyzmq's credentials-provider hook: whether client ``key`` (z85) may connect."""
        return key in self._keys


@dataclass(frozen=True)
class CurveServer:
    """The broker's keypair, the directory of allowed client keys and the ring read from it."""

    public: bytes
    secret: bytes
    allowed_dir: Path
    ring: KeyRing

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike[str]) -> "CurveServer":
        """Load (creating if missing) the server keys of a run directory."""
        root = ensure_keys(run_dir)
        public, secret = _load(root / "server.key_secret", True)
        return cls(public, secret, root / "allowed", KeyRing.from_dir(root / "allowed"))  # type: ignore[arg-type]

    def allow(self, name: str, public: str) -> None:
        """Accept client key ``public`` (z85) from now on, as ``name`` (kept in ``allowed/`` for a resume)."""
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"invalid curve client name {name!r}", field="name")
        write_public_key(self.allowed_dir / f"{name}.key", public)
        self.ring.add(public.encode("ascii"))

    def revoke(self, name: str) -> None:
        """Refuse the key allowed as ``name`` from now on (sessions already open stay)."""
        path = self.allowed_dir / f"{name}.key"
        try:
            public, _ = _load(path, False)
            path.unlink()
        except (ConfigError, FileNotFoundError):
            return
        self.ring.discard(public)

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
        auth.configure_curve_callback(domain="*", credentials_provider=self.ring)
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
    def from_files(cls, secret_file: str | os.PathLike[str], server_public: str) -> "CurveClient":
        """A keypair issued for this process (:func:`issue_key`) and the broker's public key (z85)."""
        public, secret = _load(Path(secret_file), True)
        return cls(public, secret, server_public.encode("ascii"))  # type: ignore[arg-type]

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


def client_for(endpoint: str, run_dir: str | os.PathLike[str], name: str = DEFAULT_CLIENT,
               credential: str = "", server_key: str = "") -> CurveClient | None:
    """The curve config a client of ``endpoint`` uses: keys for tcp://, None for ipc://.

    With ``credential`` (a secret-key file issued for this process) and ``server_key`` (the broker's
    public key, z85) the client uses those and reads nothing of the run directory.
    """
    if not endpoint.startswith("tcp://"):
        return None
    if credential:
        return CurveClient.from_files(credential, server_key)
    return CurveClient.from_run_dir(run_dir, name)


def server_public(run_dir: str | os.PathLike[str]) -> str:
    """The broker's public key (z85) of a run directory."""
    public, _ = _load(keys_dir(run_dir) / "server.key", False)
    return public.decode("ascii")
