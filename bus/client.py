"""A DEALER client of the broker: requests, events, handlers, heartbeats.

The client is single-threaded and driven by its owner's loop: ``poll`` (or a
blocking ``request``) receives, dispatches handlers and sends heartbeats, so
a peer that stops running its loop stops heartbeating and is declared dead by
the broker. Other threads hand work to the loop with ``call_soon_threadsafe``.

* ``request(dst, body, timeout)`` waits for the reply with that correlation
  id until an absolute deadline; stale replies are discarded and the wait
  never restarts.
* ``send_request(dst, body, timeout, callback)`` does not wait: ``callback``
  gets the reply in ``poll``, or a ``deadline_exceeded`` error reply once the
  deadline has passed (judged at each heartbeat, so at most one interval
  late); see ``bus/pending.py``.
* ``send(dst, body)`` is fire-and-forget (an event).
* ``handle(BodyClass, fn)`` registers a handler by message type. For a
  request the handler's return value is the reply body; a raised SwarmError
  becomes an error reply; returning ``DEFERRED`` means the handler will call
  ``reply`` later (``bus/dispatch.py``). Handlers must not call ``request``.
* A malformed request (its body does not decode) is answered with a
  ``protocol_error`` reply naming the reason; a malformed reply fails the
  request it answers with one. Nobody waits out a timeout for it.
* Sends never block for ever: when nothing takes messages (broker down, a
  CurveZMQ handshake refused, our queue full) a send waits at most until the
  request's deadline (else the liveness window) and raises BusError;
  heartbeats and Bye are not waited for at all.
* If the broker goes silent for ``liveness`` heartbeat intervals the client
  reconnects with backoff (the broker restarts; the identity stays). When
  the broker's heartbeats name a new incarnation (it was restarted while
  our socket reconnected by itself), every pending request fails at once
  with ``bus_error``: its answer cannot come. (One sent to the new broker
  just before its first heartbeat fails too: callers that change state
  retry under their request id, ``bus/retry.py``, model calls under their
  call id.)
* Identity: the client presents its ``credential`` (``bus.credentials``) at
  every handshake; without a live one the broker never lets it connect and
  sends fail as above. ``identity`` is the peer id every header carries as
  ``src`` (the broker checks it against the credential on every message);
  the socket's routing id is random per socket, never the name.
* A reply is taken only from the peer the request went to (or the broker,
  which answers for peers it cannot reach); anything else with a matching
  correlation id is dropped and logged (``reply_from_wrong_peer``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import zmq

from bus import messages as m
from bus.dispatch import DEFERRED, Dispatcher, Handler
from bus.pending import PendingRequests, unwrap
from bus.protocol import (
    DEFAULT_MAX_BYTES,
    Kind,
    Message,
    decode,
    decode_header,
    encode_body,
    make_header,
    new_id,
    pack_header,
)
from bus.sockets import configure_socket
from bus.wakeup import LoopCalls
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import (
    BusError,
    DeadlineExceeded,
    ProtocolError,
    Stopped,
    SwarmError,
)
from swarm_core.peers import BROADCAST, BROKER
from swarm_core.tracing import CURRENT as _current_trace

_ABSENT = object()

# plain ints: pyzmq's enum flags cost an Enum construction per use in the hot path
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | _NOBLOCK
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
# a routing id is the name (for the broker's debugging), a separator no UTF-8 text has, and 12 random
# bytes: unguessable, so nobody can aim at a connection but through the broker's name table
_RANDOM_BYTES = 12
MAX_ID_BYTES = 255 - 1 - _RANDOM_BYTES


class BusClient:
    """One peer's connection to the broker (DEALER, identity = peer id)."""

    def __init__(
        self,
        endpoint: str,
        identity: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        liveness: int = LIVENESS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        credential: Any = None,
        context: zmq.Context | None = None,
        log: Any = None,
        reconnect_max: float = 8.0,
        sndhwm: int = 10_000,
    ) -> None:
        if not identity or len(identity.encode()) > MAX_ID_BYTES:
            raise ValueError(f"a peer identity must be 1..{MAX_ID_BYTES} bytes")
        self.endpoint = endpoint
        self.identity = identity
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.max_bytes = max_bytes
        self.credential = credential
        self._ctx = context or zmq.Context.instance()
        self._log = log
        self._reconnect_max = reconnect_max
        self._sndhwm = sndhwm
        self._dispatcher = Dispatcher(identity, self.reply, self.reply_error, log)
        self._dispatch = self._dispatcher.dispatch
        self._sock: zmq.Socket | None = None
        self._poller: zmq.Poller | None = None
        self._book = PendingRequests(identity)
        # the receive path uses these two dicts directly: no method call per reply
        self._pending = self._book.callbacks
        self._replies = self._book.replies
        self._loop_calls = LoopCalls()
        self._calls = self._loop_calls.calls
        self._wake_r = self._loop_calls.fd
        self._next_heartbeat = 0.0
        self._broker_seen = 0.0
        self._broker = ""  # the incarnation of the broker we speak to (from its heartbeats)
        self._backoff = heartbeat_interval
        self._closed = False
        self.reconnects = 0
        self.bad_frames = 0

    # ------------------------------------------------------------ lifecycle

    def _open_socket(self) -> zmq.Socket:
        """A DEALER with our identity and options, connected to the broker."""
        sock = self._ctx.socket(zmq.DEALER)
        configure_socket(sock, sndhwm=self._sndhwm)
        sock.setsockopt(zmq.ROUTING_ID, self.identity.encode() + b"\xff" + os.urandom(_RANDOM_BYTES))
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_bytes + 4096)
        if self.credential is not None:
            self.credential.apply_client(sock)
        sock.connect(self.endpoint)
        return sock

    def connect(self) -> "BusClient":
        """Open the DEALER socket and announce ourselves with a heartbeat."""
        sock = self._sock = self._open_socket()
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._wake_r, zmq.POLLIN)
        now = time.monotonic()
        self._broker_seen = now
        self._heartbeat(now)
        return self

    def close(self, bye: bool = True) -> None:
        """Say goodbye to the broker (optional) and close the socket (linger 0)."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            if bye:
                try:
                    self._raw_send(Kind.EVENT, m.Bye(), BROKER, wait=0)
                except (zmq.ZMQError, SwarmError):
                    pass
            self._sock.close(linger=0)
            self._sock = None
        self._loop_calls.close()

    def __enter__(self) -> "BusClient":
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- handlers

    def handle(self, body_cls: type, fn: Handler) -> None:
        """Register ``fn`` for messages whose body is ``body_cls``."""
        self._dispatcher.handlers[body_cls.TYPE] = fn

    def authorize_with(self, check: Callable[[Message], "str | None"] | None) -> None:
        """Run ``check`` on every request and event before its handler (see ``bus/dispatch.py``)."""
        self._dispatcher.authorize = check

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread at its next poll (any thread may call)."""
        self._loop_calls.call_soon(fn)

    # -------------------------------------------------------------- sending

    def _raw_send(self, kind: Kind, body: Any, dst: str, *, corr_id: str = "",
                  deadline: float = 0.0, msg_id: str | None = None, wait: float | None = None) -> str:
        """Send one message; never blocks past ``wait`` seconds (default: the request's
        deadline, else the liveness window), raising BusError instead."""
        sock = self._sock
        if sock is None:
            raise SwarmError("bus client is not connected")
        msg_id = msg_id or new_id()
        # the span this thread is in travels with the message (W3C trace context)
        header = pack_header(kind, body.TYPE, msg_id, corr_id, self.identity, dst, deadline,
                             _current_trace.get())
        payload = encode_body(body)
        size = len(header) + len(payload)
        if size > self.max_bytes:
            raise ProtocolError(f"message of {size} bytes exceeds the limit of {self.max_bytes}",
                                type=body.TYPE)
        # two plain sends cost a third of send_multipart's Python-level loop
        try:
            sock.send(header, _SNDMORE_NOBLOCK)
        except zmq.Again:
            self._send_when_writable(sock, header, body, dst, deadline, wait)
        sock.send(payload, copy=size <= 65536)  # once the first part is in, the rest never waits
        return msg_id

    def _send_when_writable(self, sock: zmq.Socket, header: bytes, body: Any, dst: str,
                            deadline: float, wait: float | None) -> None:
        # no connection takes messages (broker down, handshake refused) or our queue
        # is full: wait a bounded time, never for ever, then say so
        if wait is None:
            wait = deadline - time.time() if deadline else self.heartbeat_interval * self.liveness
        if wait > 0 and sock.poll(int(wait * 1000), zmq.POLLOUT):
            try:
                sock.send(header, _SNDMORE_NOBLOCK)
                return
            except zmq.Again:
                pass
        raise BusError(f"cannot send {body.TYPE} to {dst}: the bus is not accepting messages "
                       "(broker unreachable or our send queue full)", dst=dst, type=body.TYPE)

    def send(self, dst: str, body: Any) -> None:
        """Fire-and-forget event to ``dst`` (``"*"`` publishes to every subscriber)."""
        self._raw_send(Kind.EVENT, body, dst)

    def reply(self, request: Message, body: Any) -> None:
        """Answer ``request`` with ``body`` (for handlers that returned DEFERRED)."""
        self._raw_send(Kind.REPLY, body, request.header.src, corr_id=request.header.msg_id)

    def reply_error(self, request: Message, err: SwarmError) -> None:
        """Answer ``request`` with an error reply carrying ``err``'s code."""
        self._raw_send(Kind.ERROR, m.ErrorReply.of(err), request.header.src, corr_id=request.header.msg_id)

    def send_request(self, dst: str, body: Any, timeout: float,
                     callback: Callable[[Message], None] | None = None) -> str:
        """Send a request without waiting; ``callback`` gets the reply in ``poll``.

        Without a reply by the deadline (``timeout`` seconds from now) the
        callback gets a ``deadline_exceeded`` error reply instead, once.
        """
        deadline = time.time() + timeout
        msg_id = self._raw_send(Kind.REQUEST, body, dst, deadline=deadline)
        self._pending[msg_id] = (dst, callback, deadline)
        return msg_id

    def request(self, dst: str, body: Any, timeout: float,
                abort: Callable[[], bool] | None = None) -> Any:
        """Send a request and return the reply body, or raise the remote SwarmError.

        Raises DeadlineExceeded when no reply arrives before ``timeout``
        seconds from now; the deadline is absolute and never restarts.
        ``abort`` is checked while waiting: when it returns True the wait
        ends with Stopped (a stop request arrived meanwhile).
        """
        deadline_wall = time.time() + timeout
        deadline = time.monotonic() + timeout
        msg_id = self._raw_send(Kind.REQUEST, body, dst, deadline=deadline_wall)
        self._pending[msg_id] = (dst, None, deadline_wall)
        try:
            while True:
                reply = self._replies.pop(msg_id, None)
                if reply is not None:
                    return unwrap(reply)
                if abort is not None and abort():
                    raise Stopped(f"stopped while waiting for {dst}", dst=dst)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(
                        f"no reply from {dst} to {body.TYPE} within {timeout:g}s",
                        dst=dst, type=body.TYPE,
                    )
                self._poll_once(min(remaining, 0.25) if abort is not None else remaining)
        finally:
            self._pending.pop(msg_id, None)
            self._replies.pop(msg_id, None)

    # ------------------------------------------------------------- receiving

    def poll(self, timeout: float = 0.0, until: Callable[[], bool] | None = None) -> None:
        """Receive and dispatch for up to ``timeout`` seconds (heartbeats included).

        With ``until``, return as soon as it is true (checked after every batch).
        """
        end = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return
            self._poll_once(max(0.0, end - time.monotonic()))
            if time.monotonic() >= end:
                return

    def _poll_once(self, timeout: float) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._heartbeat(now)
            if self._pending:
                self._book.expire(time.time())
        wait = min(timeout, max(0.0, self._next_heartbeat - now))
        if self._poller is None:
            raise SwarmError("bus client is not connected")
        events = dict(self._poller.poll(int(wait * 1000) if wait > 0 else 0))
        if self._wake_r in events:
            self._loop_calls.clear_wakeups()
        if self._calls:
            self._loop_calls.run()
        sock = self._sock
        if sock is not None and sock in events:
            # drain what is there without blocking, bounded to stay fair; asking
            # EVENTS costs less than the zmq.Again an empty recv raises
            recv, getsockopt = sock.recv, sock.getsockopt
            for _ in range(256):
                try:
                    frames = [recv(_NOBLOCK)]
                except zmq.Again:
                    break
                # the parts of a message arrive together: these recvs never wait
                while getsockopt(_RCVMORE):
                    frames.append(recv(_NOBLOCK))
                self._on_frames(frames)
                if self._sock is not sock or not getsockopt(_EVENTS) & _POLLIN:
                    break
        elif time.monotonic() - self._broker_seen > self.heartbeat_interval * self.liveness:
            # judged only when nothing is waiting: what queued up while our owner
            # did not poll is not silence (and a reconnect would drop it)
            self._reconnect(time.monotonic())

    def _on_frames(self, frames: list[bytes]) -> None:
        self._broker_seen = time.monotonic()
        self._backoff = self.heartbeat_interval
        try:
            msg = decode(frames, self.max_bytes)
        except ProtocolError as exc:
            self.bad_frames += 1
            if self._log is not None:
                self._log.warning("bad_frame_dropped", error=str(exc))
            self._answer_bad_frame(frames, exc)
            return
        kind = msg.header.kind
        if kind is Kind.HEARTBEAT:
            self._broker_incarnation(msg.body.broker)
            return
        if kind in (Kind.REPLY, Kind.ERROR):
            self._on_reply(msg)
            return
        self._dispatch(msg)

    def _on_reply(self, msg: Message) -> None:
        """Hand a reply to its pending request, taken only from the peer asked (or the broker)."""
        corr = msg.header.corr_id
        entry = self._pending.get(corr, _ABSENT)
        if entry is _ABSENT:  # a stale reply: its request already gave up
            if msg.header.kind is Kind.ERROR and self._log is not None:
                self._log.warning("error_event", code=msg.body.code, message=msg.body.message)
            return
        src = msg.header.src
        if src != entry[0] and src != BROKER:  # type: ignore[index]
            if self._log is not None:
                self._log.warning("reply_from_wrong_peer", src=src, asked=entry[0])  # type: ignore[index]
            return
        callback = entry[1]  # type: ignore[index]
        if callback is None:
            self._replies[corr] = msg
        else:
            del self._pending[corr]
            callback(msg)

    def _answer_bad_frame(self, frames: list[bytes], exc: ProtocolError) -> None:
        """A malformed request gets a protocol_error reply, a malformed reply fails its request: nobody
        waits out a timeout. (A header we cannot read names nobody to answer.)"""
        try:
            header = decode_header(frames[0]) if len(frames) == 2 else None
        except ProtocolError:
            header = None
        if header is None:
            return
        if header.kind is Kind.REQUEST and not (header.deadline and header.deadline < time.time()):
            try:
                self._raw_send(Kind.ERROR, m.ErrorReply.of(exc), header.src, corr_id=header.msg_id)
            except (BusError, zmq.ZMQError):
                pass  # the sender is gone or the bus is full: the warning above stands
        elif header.kind in (Kind.REPLY, Kind.ERROR):
            self._on_reply(self._book.error(header.corr_id, ProtocolError.code,
                                            f"malformed reply from {header.src}: {exc.message}", header.src))

    # ------------------------------------------------------ heartbeat/reconnect

    def _broker_incarnation(self, incarnation: str) -> None:
        """A broker that is not the one we spoke to: what we asked the old one is lost, say so now
        (the caller may try again) instead of when each request's deadline passes."""
        if not incarnation or incarnation == self._broker:
            return
        if self._broker and self._pending:
            if self._log is not None:
                self._log.warning("broker_restarted", pending=len(self._pending))
            self._book.fail_all("the broker restarted; the request may not have arrived", BROKER)
        self._broker = incarnation

    def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self.heartbeat_interval
        if self._sock is not None:
            try:
                self._raw_send(Kind.HEARTBEAT, m.Heartbeat(), BROKER, wait=0)
            except BusError:
                pass  # nothing takes messages now; the liveness check handles a lost broker

    def _reconnect(self, now: float) -> None:
        if self._log is not None:
            self._log.warning("broker_silent_reconnecting", backoff=self._backoff)
        if self._sock is not None:
            self._poller.unregister(self._sock)  # type: ignore[union-attr]
            self._sock.close(linger=0)
            self._sock = None
        self.reconnects += 1
        sock = self._sock = self._open_socket()
        self._poller.register(sock, zmq.POLLIN)  # type: ignore[union-attr]
        # give the new connection a backoff window before judging it silent
        self._broker_seen = now + self._backoff
        self._backoff = min(self._backoff * 2, self._reconnect_max)
        self._heartbeat(now)
        # its reply can no longer come
        self._book.fail_all("the connection to the broker was lost; the request may not have arrived",
                            BROKER)


__all__ = ["BusClient", "BROKER", "BROADCAST", "DEFERRED", "make_header"]
