"""What the broker says itself: heartbeats, error replies, Pong, published events.

Every send here is non-blocking and never raises: a peer that is gone or
whose queue is full is reported to ``warn`` (a rate-limited logger) and the
broker's loop carries on.
"""

from __future__ import annotations

from typing import Any, Callable

import zmq

from bus import messages as m
from bus.protocol import Header, Kind, encode_body, encode_header, new_id
from swarm_core.errors import SwarmError
from swarm_core.peers import BROADCAST, BROKER

_NOBLOCK = int(zmq.NOBLOCK)


class Outbox:
    """Sends broker-authored messages on the broker's ROUTER and PUB sockets."""

    def __init__(self, router: zmq.Socket, pub: zmq.Socket, warn: Callable[..., None]) -> None:
        self._router = router
        self._pub = pub
        self._warn = warn

    def send(self, ident: bytes, kind: Kind, body: Any, dst: str, *, corr_id: str = "",
             quiet: bool = False) -> bool:
        """Send ``body`` from "broker" to the peer with ROUTER identity ``ident``."""
        header = encode_header(Header(kind, body.TYPE, new_id(), corr_id, BROKER, dst, 0.0))
        try:
            self._router.send_multipart((ident, header, encode_body(body)), _NOBLOCK)
        except zmq.ZMQError as exc:
            if not quiet:
                self._warn("broker_send_failed", dst=dst, type=body.TYPE, error=exc.strerror)
            return False
        return True

    def reply_error(self, ident: bytes, dst: str, msg_id: str, err: SwarmError) -> bool:
        """Answer request ``msg_id`` of ``dst`` with an error reply carrying ``err``."""
        return self.send(ident, Kind.ERROR, m.ErrorReply.of(err), dst, corr_id=msg_id)

    def publish(self, body: Any) -> None:
        """Publish ``body`` as an event from "broker" (topic = its type)."""
        header = encode_header(Header(Kind.EVENT, body.TYPE, new_id(), "", BROKER, BROADCAST, 0.0))
        try:
            self._pub.send_multipart((body.TYPE.encode(), header, encode_body(body)), _NOBLOCK)
        except zmq.ZMQError as exc:
            self._warn("publish_failed", type=body.TYPE, error=exc.strerror)
