"""Subscribe to what the broker publishes (peer joins/leaves, lifecycle events, ``"*"`` sends).

Each published message is ``[topic, header, body]`` with topic = the message
type as bytes; only the exact types asked for are returned (all when none
are given). ``EventSubscriber.recv(timeout)`` returns the next decoded
:class:`~bus.protocol.Message` or None when nothing arrived in time; a bad
frame is counted (``bad_frames``) and skipped, never raised. Like any SUB
socket it misses what is published before its subscription reaches the
broker. The broker's PUB socket admits only supervisor and operator
credentials (``credential``, see ``bus.keyring``).
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import zmq

from bus.protocol import DEFAULT_MAX_BYTES, Message, decode
from bus.sockets import configure_socket
from swarm_core.errors import ProtocolError


class EventSubscriber:
    """A SUB socket on the broker's PUB endpoint, filtered by message types."""

    def __init__(
        self,
        pub_endpoint: str,
        topics: Iterable[str] = (),
        *,
        credential: Any = None,
        context: zmq.Context | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self.bad_frames = 0
        ctx = context or zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        configure_socket(sock)
        if credential is not None:
            credential.apply_client(sock)
        topics = list(topics)
        # ZeroMQ matches topic prefixes ("mem_stats" also matches "mem_stats_reply"):
        # recv() keeps only the exact types asked for
        self._types = frozenset(topics)
        for t in topics or [""]:
            sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        sock.connect(pub_endpoint)
        self._sock: zmq.Socket | None = sock

    def recv(self, timeout: float) -> Message | None:
        """The next event within ``timeout`` seconds, or None."""
        sock = self._sock
        if sock is None:
            return None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if not sock.poll(max(0, int(remaining * 1000)), zmq.POLLIN):
                return None
            frames = sock.recv_multipart(zmq.NOBLOCK)
            try:
                if len(frames) != 3:
                    raise ProtocolError(f"expected 3 frames (topic, header, body), got {len(frames)}")
                msg = decode(frames[1:], self.max_bytes)
            except ProtocolError:
                self.bad_frames += 1
            else:
                if not self._types or msg.header.type in self._types:
                    return msg
            if time.monotonic() >= deadline:
                return None  # a stream of skipped messages must not hold us past the deadline

    def close(self) -> None:
        """Close the socket (linger 0); idempotent."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def __enter__(self) -> "EventSubscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
