"""The broker's ZAP handler: pyzmq's authenticator thread, deciding with a :class:`~bus.keyring.Keyring`.

ZeroMQ asks the handler (``inproc://zeromq.zap.01`` in the broker's
context) about every connection to a PLAIN or CURVE server socket before
the connection carries a single message. :class:`ZapHandler` keeps pyzmq's
``ThreadAuthenticator`` machinery (its thread, its start and stop) and
replaces only the decision (:meth:`ZapHandler.decide`, a plain function of
the request frames, unit-tested without sockets):

* the keyring's verdict; on ``ipc://`` the request's address is
  ``localhost:UID:GID:PID`` from the kernel (``SO_PEERCRED``): a peer of
  another user is refused, and the pid goes to the keyring (a
  one-process credential must come from its process);
* an accepted connection's ``User-Id`` is the credential's key id; libzmq
  then stamps it on every message that connection delivers, which the
  broker checks;
* every refusal is counted (``refused``) and logged, rate limited, as
  ``bus_auth_refused`` with what was claimed, the peer's pid and the rule.
"""

from __future__ import annotations

import os
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from bus.keyring import Keyring, Refused
from bus.ratelimit import RateLimitedWarnings

VERSION = b"1.0"


def peer_process(address: str) -> tuple[int | None, int | None]:
    """``(uid, pid)`` of an ipc peer from a ZAP address ``localhost:UID:GID:PID``; Nones when absent."""
    parts = address.rsplit(":", 3)
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return None, None
    return int(parts[1]), int(parts[3])


class ZapHandler(ThreadAuthenticator):
    """Answers ZAP requests for one broker's sockets from ``keyring`` (``start()`` / ``stop()``)."""

    def __init__(self, context: zmq.Context, keyring: Keyring, *, ipc: bool, log: Any,
                 uid: int | None = None) -> None:
        super().__init__(context)
        self.keyring = keyring
        self.ipc = ipc
        self.uid = os.getuid() if uid is None else uid
        self.refused = 0
        self._warn = RateLimitedWarnings(log)

    async def handle_zap_message(self, msg: list[bytes]) -> None:  # called on the ZAP thread
        self.zap_socket.send_multipart(self.decide(msg))

    def decide(self, msg: list[bytes]) -> list[bytes]:
        """The ZAP reply frames for request ``msg``."""
        if len(msg) < 6 or msg[0] != VERSION:
            request_id = msg[1] if len(msg) > 1 else b""
            return self._refuse(request_id, Refused("malformed ZAP request", ""), "", None)
        _version, request_id, domain, address, _server_id, mechanism = msg[:6]
        where = address.decode("utf-8", "replace")
        uid, pid = peer_process(where) if self.ipc else (None, None)
        if uid is not None and uid != self.uid:
            return self._refuse(request_id, Refused(f"a process of uid {uid} may not join", ""), where, pid)
        verdict = self.keyring.authenticate(domain.decode("utf-8", "replace"),
                                            mechanism.decode("ascii", "replace").lower(), msg[6:], pid)
        if isinstance(verdict, Refused):
            return self._refuse(request_id, verdict, where, pid)
        return [VERSION, request_id, b"200", b"OK", verdict.key_id.encode(), b""]

    def _refuse(self, request_id: bytes, why: Refused, address: str, pid: int | None) -> list[bytes]:
        self.refused += 1
        self._warn("bus_auth_refused", key=f"{why.claimed}|{pid}|{why.reason}", claimed=why.claimed,
                   address=address, pid=pid, rule=why.reason)
        return [VERSION, request_id, b"400", why.reason.encode()[:255], b"", b""]
