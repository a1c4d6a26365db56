"""The broker's sockets: ROUTER and PUB with our options, CurveZMQ's ZAP handler, a wake-up line.

* :meth:`BrokerSockets.open` creates and binds everything or nothing (a
  failure closes what it made) and returns the endpoints actually bound (a
  ``tcp://host:*`` gets its port here).
* :meth:`BrokerSockets.wake` (any thread) sends one message from an
  unguessable identity to an inproc endpoint the ROUTER also binds, so a
  loop blocked in ``recv`` sees its stop flag at once; the loop recognises
  it by :attr:`wake_id`.
* :meth:`BrokerSockets.close` closes the sockets (linger 0), stops the
  authenticator and terminates the context when it is ours; idempotent.
"""

from __future__ import annotations

import os
from typing import Any

import zmq

from bus.sockets import configure_socket


class BrokerSockets:
    """The sockets and the zmq context of one broker."""

    def __init__(self, context: zmq.Context | None, curve: Any) -> None:
        self._own_ctx = context is None
        self.ctx = context if context is not None else zmq.Context()
        self._curve = curve
        self.router: zmq.Socket | None = None
        self.pub: zmq.Socket | None = None
        self._auth: Any = None
        self.wake_id = b"\x00stop-" + os.urandom(12)
        self._wake_endpoint = f"inproc://swarm-broker-wake-{self.wake_id[6:].hex()}"
        self.closed = False

    def open(self, endpoint: str, pub_endpoint: str, *, peer_queue: int,
             max_msg_size: int) -> tuple[str, str]:
        """Create and bind the ROUTER and the PUB; return the endpoints they bound."""
        router = self.ctx.socket(zmq.ROUTER)
        pub = self.ctx.socket(zmq.PUB)
        try:
            configure_socket(router, sndhwm=peer_queue)
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.setsockopt(zmq.ROUTER_HANDOVER, 1)
            router.setsockopt(zmq.MAXMSGSIZE, max_msg_size)
            configure_socket(pub)
            if self._curve is not None:
                self._auth = self._curve.start_authenticator(self.ctx)
                self._curve.apply_server(router)
                self._curve.apply_server(pub)
            router.bind(endpoint)
            bound = router.getsockopt(zmq.LAST_ENDPOINT).decode()
            router.bind(self._wake_endpoint)
            pub.bind(pub_endpoint)
            bound_pub = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        except Exception:
            router.close(linger=0)
            pub.close(linger=0)
            self._stop_auth()
            raise
        self.router, self.pub = router, pub
        return bound, bound_pub

    def wake(self) -> None:
        """Wake a loop blocked in the ROUTER's recv (any thread; best effort)."""
        try:
            sock = self.ctx.socket(zmq.DEALER)
        except zmq.ZMQError:
            return  # the context is gone: the loop has stopped
        try:
            sock.setsockopt(zmq.IDENTITY, self.wake_id)
            sock.setsockopt(zmq.LINGER, 100)
            sock.connect(self._wake_endpoint)
            sock.send(b"stop", zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        """Close the sockets and the authenticator, and the context if ours (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for sock in (self.router, self.pub):
            if sock is not None:
                sock.close(linger=0)
        self.router = self.pub = None
        self._stop_auth()
        if self._own_ctx:
            self.ctx.term()

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
