"""The book of live bus credentials: issue, bind to a process, revoke, and the handshake's verdict.

The supervisor owns one :class:`Keyring` per swarm (the broker runs in its
process). It issues a fresh :class:`~bus.credentials.Credential` for each
process before starting it and revokes it when the process ends; issuing
for a peer that already has one replaces (revokes) the old one, so each
principal has at most one live credential.

* :meth:`Keyring.authenticate` is the ZAP decision (``bus.zap`` calls it on
  its thread for every handshake): the credential must be live, proven
  (PLAIN: the secret's SHA-256 matches, compared in constant time; CURVE:
  the handshake proved the key), allowed in the socket's ZAP domain
  (``bus``: every kind; ``events``, the broker's PUB socket: supervisor and
  operator only) and, for a credential issued ``one_process``, presented by
  that process: on ``ipc://`` the kernel tells the peer's pid
  (``SO_PEERCRED``), so a credential copied out of an agent is useless to
  any other process. The first process to use such a credential binds it
  (only the process it was issued to holds it then); :meth:`bind_pid`,
  called by the supervisor as soon as it learns the pid, confirms the
  binding or revokes the credential.
* A key pair can also be made where the process runs (a Ray node's host,
  ``orchestrator/supervisor/backends/hostnode.py``): :meth:`Keyring.enroll`
  registers its public key, the only part that travels, as that peer's
  credential; from there on it is the same credential as an issued one
  (replaced, bound, revoked, stored the same way).
* :attr:`Keyring.principals` (key id → :class:`Principal`, live ones only)
  is what the broker reads on every message: revoking removes the entry,
  so a revoked credential's open connection is refused from its next
  message on.
* With a ``store`` path, every change is written there (mode 0600):
  verifiers only (a hash of each secret, CURVE public keys) and, on tcp,
  the broker's key pair; a one-process credential once its pid is bound.
  A supervisor resumed after a crash reopens it (:meth:`Keyring.load`) and
  keeps the credentials of the agents it adopts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bus.credentials import CURVE, MECHANISMS, PLAIN, Credential
from swarm_core.errors import ConfigError
from swarm_core.peers import PeerKind

BUS_DOMAIN = "bus"
EVENTS_DOMAIN = "events"
# who may connect to which of the broker's sockets (None: any live credential)
DOMAINS: dict[str, frozenset[str] | None] = {
    BUS_DOMAIN: None,
    EVENTS_DOMAIN: frozenset({PeerKind.SUPERVISOR, PeerKind.OPERATOR}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a live credential speaks for."""

    peer: str
    kind: str


class Admitted(NamedTuple):
    key_id: str
    principal: Principal


class Refused(NamedTuple):
    reason: str
    claimed: str  # what the peer presented (a key id, a key's prefix), for the log


@dataclass
class _Entry:
    key_id: str
    peer: str
    kind: str
    verifier: str  # plain: SHA-256 of the secret (hex); curve: the client's public key (z85)
    one_process: bool = False
    pid: int | None = None


def default_mechanism(endpoint: str) -> str:
    """CURVE on ``tcp://`` (a network carries the bytes); PLAIN on ``ipc://`` (only the kernel does).

    Both authenticate every connection the same way; CURVE also encrypts
    every message, which a Unix socket does not need (``bench/bus.py``
    measures what each costs).
    """
    return CURVE if endpoint.startswith("tcp://") else PLAIN


def _digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


class Keyring:
    """Live credentials of one swarm (thread-safe; the hot-path table is lock-free to read)."""

    def __init__(self, mechanism: str = PLAIN, *, store: str | os.PathLike[str] | None = None,
                 server_keys: tuple[bytes, bytes] | None = None) -> None:
        if mechanism not in MECHANISMS:
            raise ConfigError(f"unknown bus auth mechanism {mechanism!r}", field="mechanism")
        self.mechanism = mechanism
        self.store = Path(store) if store is not None else None
        self.server_public = self.server_secret = b""
        if mechanism == CURVE:
            import zmq

            self.server_public, self.server_secret = server_keys or zmq.curve_keypair()
        self.principals: dict[str, Principal] = {}
        self._entries: dict[str, _Entry] = {}
        self._current: dict[str, str] = {}  # peer -> key id of its live credential
        self._by_public: dict[str, str] = {}  # curve public key (z85) -> key id
        self._lock = threading.Lock()

    # ------------------------------------------------------------ issuing

    def issue(self, peer: str, kind: str, *, one_process: bool = False) -> Credential:
        """A fresh credential for ``peer`` (its earlier one, if any, is revoked)."""
        key_id = f"{peer}.{secrets.token_hex(6)}"
        if self.mechanism == CURVE:
            import zmq

            public, secret = zmq.curve_keypair()
            cred = Credential(peer, str(kind), key_id, CURVE, secret.decode(), public.decode(),
                              self.server_public.decode())
            verifier = cred.public
        else:
            cred = Credential(peer, str(kind), key_id, PLAIN, secrets.token_urlsafe(32))
            verifier = _digest(cred.secret.encode())
        with self._lock:
            self._drop(self._current.get(peer))
            self._add(_Entry(key_id, peer, str(kind), verifier, one_process))
        if not one_process:  # a process's credential is stored with its pid (bind_pid): one write, not two
            self._save()
        return cred

    def enroll(self, peer: str, kind: str, public: str) -> Credential:
        """Register a CURVE key pair made where ``peer``'s process runs (a Ray node): only ``public``
        (z85) came here. The credential returned has no secret: the maker puts its own in before the
        process starts. Like :meth:`issue` it replaces ``peer``'s earlier credential, it is bound to
        one process (:meth:`bind_pid`) and :meth:`revoke` ends it.
        """
        if self.mechanism != CURVE:
            raise ConfigError("a key made on another machine needs a tcp bus (CurveZMQ)",
                              field="bus.transport")
        if len(public) != 40:
            raise ConfigError(f"{peer}: not a CurveZMQ public key (z85, 40 characters)", field="public")
        key_id = f"{peer}.{secrets.token_hex(6)}"
        cred = Credential(peer, str(kind), key_id, CURVE, "", public, self.server_public.decode())
        with self._lock:
            self._drop(self._current.get(peer))
            self._add(_Entry(key_id, peer, str(kind), public, True))
        return cred

    def retain(self, peers: set[str]) -> None:
        """Revoke every credential but those of ``peers`` (a resume keeps the adopted agents')."""
        with self._lock:
            for key_id in [k for k, e in self._entries.items() if e.peer not in peers]:
                self._drop(key_id)
        self._save()

    def bind_pid(self, peer: str, pid: int) -> bool:
        """The supervisor learned ``peer``'s pid: confirm its credential's process; False if revoked.

        A credential already used by another process (the first to connect
        binds it) is revoked: it leaked.
        """
        with self._lock:
            entry = self._entries.get(self._current.get(peer, ""))
            if entry is None:
                return False
            if entry.pid is not None and entry.pid != pid:
                self._drop(entry.key_id)
                leaked = True
            else:
                entry.pid, leaked = pid, False
        self._save()
        return not leaked

    def revoke(self, peer: str) -> None:
        """``peer``'s credential is no good any more (its process ended); idempotent."""
        with self._lock:
            self._drop(self._current.get(peer))
        self._save()

    def current(self, peer: str) -> Principal | None:
        """The principal of ``peer``'s live credential, if it has one."""
        key_id = self._current.get(peer)
        return self.principals.get(key_id) if key_id else None

    def _add(self, entry: _Entry) -> None:
        self._entries[entry.key_id] = entry
        self._current[entry.peer] = entry.key_id
        if self.mechanism == CURVE:
            self._by_public[entry.verifier] = entry.key_id
        self.principals[entry.key_id] = Principal(entry.peer, entry.kind)

    def _drop(self, key_id: str | None) -> None:
        entry = self._entries.pop(key_id, None) if key_id else None
        if entry is None:
            return
        self.principals.pop(entry.key_id, None)
        self._by_public.pop(entry.verifier, None)
        if self._current.get(entry.peer) == entry.key_id:
            del self._current[entry.peer]

    # ------------------------------------------------------------ the handshake

    def authenticate(self, domain: str, mechanism: str, credentials: list[bytes],
                     pid: int | None = None) -> Admitted | Refused:
        """The ZAP verdict on one handshake (``pid``: the peer's process when the transport tells it)."""
        if mechanism != self.mechanism:
            return Refused(f"mechanism {mechanism or 'NULL'} is not this bus's ({self.mechanism})", "")
        entry, claimed = self._presented(credentials)
        if entry is None:
            return Refused("unknown, forged or revoked credential", claimed)
        allowed = DOMAINS.get(domain, frozenset())
        if allowed is not None and entry.kind not in allowed:
            return Refused(f"a {entry.kind} may not connect to the {domain or '?'} socket", entry.key_id)
        if entry.one_process and pid is not None:
            with self._lock:
                if entry.pid is None:
                    entry.pid = pid  # the first user is the process it was issued to (see bind_pid)
                elif entry.pid != pid:
                    return Refused(f"credential of {entry.peer} (pid {entry.pid}) presented by pid {pid}",
                                   entry.key_id)
        principal = self.principals.get(entry.key_id)
        if principal is None:  # revoked meanwhile
            return Refused("revoked credential", entry.key_id)
        return Admitted(entry.key_id, principal)

    def _presented(self, credentials: list[bytes]) -> tuple[_Entry | None, str]:
        """The live entry the frames prove, and what they claimed (for the log)."""
        if self.mechanism == CURVE:
            if len(credentials) != 1 or len(credentials[0]) != 32:
                return None, "malformed curve key"
            from zmq.utils import z85

            public = z85.encode(credentials[0]).decode()
            return self._entries.get(self._by_public.get(public, "")), f"curve key {public[:8]}..."
        if len(credentials) != 2:
            return None, "malformed plain credentials"
        key_id = credentials[0].decode("utf-8", "backslashreplace")[:200]
        entry = self._entries.get(key_id)
        if entry is None or not hmac.compare_digest(_digest(credentials[1]), entry.verifier):
            return None, key_id
        return entry, key_id

    def apply_server(self, sock: Any, domain: str) -> None:
        """Make ``sock`` (before bind) require this keyring's mechanism, in ZAP ``domain``."""
        sock.zap_domain = domain.encode()
        if self.mechanism == CURVE:
            sock.curve_secretkey = self.server_secret
            sock.curve_publickey = self.server_public
            sock.curve_server = True
        else:
            sock.plain_server = True

    # ------------------------------------------------------------ the store

    def _save(self) -> None:
        if self.store is None:
            return
        with self._lock:
            data = {"mechanism": self.mechanism, "server_public": self.server_public.decode(),
                    "server_secret": self.server_secret.decode(),
                    "entries": [asdict(e) for e in self._entries.values()]}
        tmp = self.store.with_name(f".{self.store.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(data).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.store)

    @classmethod
    def load(cls, store: str | os.PathLike[str], keep: set[str]) -> "Keyring":
        """Reopen a swarm's store keeping only the credentials of the peers in ``keep`` (a resume)."""
        path = Path(store)
        try:
            data = json.loads(path.read_text())
            keys = (data["server_public"].encode(), data["server_secret"].encode())
            curve = data["mechanism"] == CURVE
            ring = cls(data["mechanism"], store=path, server_keys=keys if curve else None)
            for raw in data["entries"]:
                if raw["peer"] in keep:
                    ring._add(_Entry(**raw))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot reopen the bus credentials {path}: {exc}", file=str(path)) from None
        ring._save()
        return ring


def stored_peers(store: str | os.PathLike[str]) -> set[str]:
    """The peers a keyring store holds credentials for (to reopen it whole); empty when unreadable."""
    try:
        return {e["peer"] for e in json.loads(Path(store).read_text())["entries"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
