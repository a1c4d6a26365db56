"""The broker's sockets: ROUTER and PUB with our options, their ZAP handler, a wake-up line.

* :meth:`BrokerSockets.open` creates and binds everything or nothing (a
  failure closes what it made) and returns the endpoints actually bound (a
  ``tcp://host:*`` gets its port here). Both sockets are servers of the
  keyring's mechanism (PLAIN or CURVE) in their own ZAP domain (``bus``,
  ``events``), answered by a :class:`~bus.zap.ZapHandler`: a peer without a
  live credential never completes a handshake (those ZAP never hears of,
  a missing credential for one, are logged by a :class:`~bus.handshakes.HandshakeWatch`).
  ``ROUTER_HANDOVER`` stays off: no connection can take over another's
  routing id.
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

from bus.handshakes import HandshakeWatch
from bus.keyring import BUS_DOMAIN, EVENTS_DOMAIN, Keyring
from bus.sockets import configure_socket
from bus.zap import ZapHandler


class BrokerSockets:
    """The sockets and the zmq context of one broker."""

    def __init__(self, context: zmq.Context | None, keyring: Keyring, log: Any) -> None:
        self._own_ctx = context is None
        self.ctx = context if context is not None else zmq.Context()
        self.keyring = keyring
        self._log = log
        self.router: zmq.Socket | None = None
        self.pub: zmq.Socket | None = None
        self.zap: ZapHandler | None = None
        self.watch: HandshakeWatch | None = None
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
            router.setsockopt(zmq.MAXMSGSIZE, max_msg_size)
            configure_socket(pub)
            self.zap = ZapHandler(self.ctx, self.keyring, ipc=endpoint.startswith("ipc://"), log=self._log)
            self.zap.start()
            self.keyring.apply_server(router, BUS_DOMAIN)
            self.keyring.apply_server(pub, EVENTS_DOMAIN)
            self.watch = HandshakeWatch(router, self._log)
            router.bind(endpoint)
            bound = router.getsockopt(zmq.LAST_ENDPOINT).decode()
            router.bind(self._wake_endpoint)
            pub.bind(pub_endpoint)
            bound_pub = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        except Exception:
            self._stop_auth()
            router.close(linger=0)
            pub.close(linger=0)
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
        self._stop_auth()
        for sock in (self.router, self.pub):
            if sock is not None:
                sock.close(linger=0)
        self.router = self.pub = None
        if self._own_ctx:
            self.ctx.term()

    def refused(self) -> int:
        """Handshakes refused so far: by the ZAP handler, or by libzmq before it."""
        return (self.zap.refused if self.zap is not None else 0) + (self.watch.failed if self.watch else 0)

    def _stop_auth(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.zap is not None:
            self.zap.stop()
            self.zap = None
