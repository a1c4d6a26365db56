"""A bus credential: what one process proves when it connects, and how its socket uses it.

The supervisor issues one :class:`Credential` per process (``bus.keyring``):
each agent incarnation, the gateway, the memory service, the supervisor
itself, and one for the operator that every CLI session shares. A
credential names its *principal* (``peer``: the agent id, the service's id,
or ``operator``) and its *kind*; ``key_id`` names this issue of it and is
what the broker's ZAP handler returns as the connection's ``User-Id``, so a
revoked or replaced credential is told apart from its successor.

Two ZeroMQ mechanisms, chosen per bus by the supervisor:

* ``plain`` (``ipc://`` buses): ZeroMQ's PLAIN, username = ``key_id``,
  password = a 256-bit random secret. It travels in clear, but only through
  a Unix socket: the kernel, never a network, carries it, and the agents'
  sandbox lets no process read another's memory. Per message it costs
  nothing (``bench/bus.py`` measures it against CURVE).
* ``curve`` (``tcp://`` buses): CurveZMQ, a client keypair of its own and
  the broker's public key (the handshake proves the secret key; every
  message is encrypted).

A credential travels as a small JSON object: inside an agent's spec (in
memory), on a service's stdin, or in the operator's 0600 file
``RUN_DIR/operator.cred`` (:func:`write_file`, :func:`read_credential`).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from swarm_core.errors import ConfigError
from swarm_core.peers import PeerKind

PLAIN, CURVE = "plain", "curve"
MECHANISMS = (PLAIN, CURVE)
OPERATOR_FILE = "operator.cred"


@dataclass(frozen=True)
class Credential:
    """One process's proof of who it is on one swarm's bus."""

    peer: str  # the principal: agent id, service id, or "operator"
    kind: str  # a PeerKind value
    key_id: str  # this issue; the connection's ZAP User-Id
    mechanism: str  # plain | curve
    secret: str  # plain: the password; curve: the client's secret key (z85)
    public: str = ""  # curve: the client's public key (z85)
    server: str = ""  # curve: the broker's public key (z85)

    def apply_client(self, sock: Any) -> None:
        """Make ``sock`` (not yet connected) present this credential."""
        if self.mechanism == CURVE:
            sock.curve_secretkey = self.secret.encode()
            sock.curve_publickey = self.public.encode()
            sock.curve_serverkey = self.server.encode()
        else:
            sock.plain_username = self.key_id.encode()
            sock.plain_password = self.secret.encode()

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "credential") -> "Credential":
        """Rebuild a credential; ConfigError naming ``where`` on anything malformed."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: a credential must be a JSON object", file=where)
        fields = {"peer", "kind", "key_id", "mechanism", "secret", "public", "server"}
        bad = sorted(k for k, v in d.items() if k not in fields or not isinstance(v, str))
        missing = sorted({"peer", "kind", "key_id", "mechanism", "secret"} - set(d))
        if bad or missing:
            raise ConfigError(f"{where}: not a bus credential (bad keys {bad}, missing {missing})",
                              file=where)
        if d["mechanism"] not in MECHANISMS or d["kind"] not in set(PeerKind):
            raise ConfigError(f"{where}: unknown mechanism {d['mechanism']!r} or kind {d['kind']!r}",
                              file=where)
        return cls(**d)

    @classmethod
    def from_json(cls, text: str, where: str = "credential") -> "Credential":
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not JSON ({exc})", file=where) from None
        return cls.from_dict(raw, where)

    def __repr__(self) -> str:  # never print a secret into a log or a traceback
        return f"Credential(peer={self.peer!r}, kind={self.kind!r}, key_id={self.key_id!r})"


def write_file(path: str | os.PathLike[str], cred: Credential) -> Path:
    """Write ``cred`` to ``path`` with mode 0600, atomically (a reader never sees half of it)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, cred.to_json().encode())
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def read_credential(source: str | os.PathLike[str]) -> Credential:
    """The credential in file ``source``, or on stdin when ``source`` is ``-`` (one JSON line)."""
    if str(source) == "-":
        return Credential.from_json(sys.stdin.readline(), "stdin")
    try:
        text = Path(source).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the bus credential {source}: {exc.strerror}",
                          file=str(source)) from None
    return Credential.from_json(text, str(source))
