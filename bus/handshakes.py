"""Handshakes ZAP never sees: a connection with no credential, or a CURVE key that fails its proof.

libzmq refuses such a connection inside the handshake (the mechanisms do
not match; a CURVE client cannot prove its key) before asking ZAP, so the
ZAP handler cannot log it. :class:`HandshakeWatch` reads the socket's
monitor on a thread of its own and logs each as ``bus_handshake_failed``
(rate limited) with the rule libzmq gives (a protocol error such as
``PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH``, else the system error that
ended the connection) and the endpoint, and counts it in ``failed``.
libzmq tells no more: such a peer proved nothing, so there is no identity
to name. Refusals ZAP decided are logged by ``bus.zap``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus.ratelimit import RateLimitedWarnings

_EVENTS = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


_PROTOCOL_ERRORS = {int(getattr(zmq, n)): n for n in dir(zmq) if n.startswith("PROTOCOL_ERROR_")}


def describe(event: int, value: int) -> str:
    """What ended a handshake: the protocol error libzmq names, or the system error."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return _PROTOCOL_ERRORS.get(value, f"protocol error {value}")
    return f"handshake failed: {os.strerror(value) if 0 < value < 4096 else value}"


class HandshakeWatch:
    """Logs the failed handshakes of one socket until ``stop()``."""

    def __init__(self, sock: zmq.Socket, log: Any) -> None:
        self.failed = 0
        self._sock = sock
        self._monitor = sock.get_monitor_socket(_EVENTS)
        self._warn = RateLimitedWarnings(log)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-handshakes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        monitor = self._monitor
        try:
            while not self._stopping.is_set():
                if not monitor.poll(100):
                    continue
                event = recv_monitor_message(monitor)
                self.failed += 1
                rule = describe(int(event["event"]), int(event["value"]))
                self._warn("bus_handshake_failed", key=rule, rule=rule,
                           endpoint=event["endpoint"].decode("utf-8", "replace"))
        except zmq.ZMQError:
            pass  # the context is going away
        finally:
            monitor.close(linger=0)

    def stop(self) -> None:
        """Stop watching (before the socket closes); idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._thread.join(5)
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
