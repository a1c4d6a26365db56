"""The bus broker: a ROUTER that routes ``[header, body]`` by authenticated peer id.

Contract:

* Identity is never self-declared. Every peer connects with a credential
  (``bus.credentials``) the ZAP handler checks against the
  :class:`~bus.keyring.Keyring` (no live credential: no connection), and
  libzmq stamps its key id (``User-Id``) on every message. On *every*
  message the broker reads it (a ``copy=False`` receive of the routing-id
  frame) and requires a live credential that may speak as the header's
  ``src``, under the one name its connection was admitted with; anything
  else is refused, counted and logged (``bus/admission.py``).
* Routing ids are random per client socket and never names: a name routes
  to the latest connection admitted under it (``bus/peers.py``), and
  ``ROUTER_HANDOVER`` is off, so no connection can take over another's
  traffic. The broker reads only the header frame and forwards
  ``[routing id, header, body]`` unchanged; it never decodes a routed body.
* Sends are non-blocking with ``ROUTER_MANDATORY``: an unknown (or declared
  dead) destination is answered with an ``unknown_destination`` error reply,
  a full per-peer queue (``peer_queue`` = SNDHWM) with ``peer_busy``. Error
  replies go only to REQUESTs; anything else undeliverable is logged. One
  slow peer never stalls the loop.
* Liveness: any message from a peer marks it alive; the broker heartbeats
  every known peer each ``heartbeat_interval``; a peer silent for
  ``interval * liveness`` is declared dead and forgotten. Joins and leaves
  are published as ``PeerEvent`` on the PUB socket (topic = message type).
* ``dst == "broker"``: heartbeats, Bye and Ping (answered with Pong) are
  handled here. ``dst == "*"``: the message is published on PUB.
* ``interceptor(header, sender_kind) -> None | str``: the policy gate on
  every routed or published message, told the kind of the sender's
  credential; a reason string denies it (a REQUEST gets a
  ``policy_denied`` error reply, anything else is dropped and logged).
* Bad input (frame count, junk or oversized header, wrong version, ...) is
  counted, logged (rate limited) and dropped, with an error reply when the
  header still shows a request id. The broker never crashes on input.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import zmq

from bus.admission import Admission
from bus.broker_sockets import BrokerSockets
from bus.keyring import Keyring, default_mechanism
from bus.liveness import Liveness
from bus.outbox import Outbox
from bus.peers import PeerTable
from bus.protocol import DEFAULT_MAX_BYTES, Header, Kind, request_id_of, route_info
from bus.ratelimit import RateLimitedWarnings
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import (
    PeerBusy,
    PolicyDenied,
    ProtocolError,
    SwarmError,
    UnknownDestination,
)
from swarm_core.peers import BROADCAST, BROKER

_REQUEST = int(Kind.REQUEST)
_KINDS = tuple(Kind(i) for i in range(len(Kind)))
# frames bigger than this are refused by libzmq itself (the connection is dropped);
# between max_bytes and this the broker answers with an error
_MAXMSGSIZE_HEADROOM = 64 * 1024
_DRAIN_BATCH = 512
# plain ints: pyzmq's enum flags cost an Enum construction per use in the hot path
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
USER_ID = "User-Id"

Interceptor = Callable[[Header, str], "str | None"]


class Broker:
    """ROUTER broker with heartbeats, a PUB socket for events and a policy hook.

    ``bind()`` then ``run()`` (blocking) or ``start_thread()``; ``stop()``
    from any thread. ``peers()`` and the counters (``routed``, ``published``,
    ``bad_frames``, ``denied``, ``undeliverable``, ``errors_sent``) may be
    read from any thread. The broker owns its zmq context unless given one.
    """

    def __init__(
        self,
        endpoint: str,
        pub_endpoint: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        liveness: int = LIVENESS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        peer_queue: int = 1000,
        keyring: Keyring | None = None,
        interceptor: Interceptor | None = None,
        log: Any = None,
        clock: Callable[[], float] = time.monotonic,
        context: zmq.Context | None = None,
    ) -> None:
        self.table = PeerTable(heartbeat_interval, liveness)
        if peer_queue < 1:
            raise ValueError("peer_queue must be >= 1")
        self.endpoint = endpoint
        self.pub_endpoint = pub_endpoint
        # what bind() resolved (a tcp://host:* endpoint gets its port here)
        self.bound_endpoint = endpoint
        self.bound_pub_endpoint = pub_endpoint
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.max_bytes = max_bytes
        self.peer_queue = peer_queue
        self.interceptor = interceptor
        self.keyring = keyring if keyring is not None else Keyring(default_mechanism(endpoint))
        self._clock = clock
        if log is None:
            import structlog

            log = structlog.get_logger("swarm.bus.broker")
        self._log = log
        self._sockets = BrokerSockets(context, self.keyring, log)
        self._principals = self.keyring.principals  # read on every message (revocation is a removal)
        self._wake_id = self._sockets.wake_id
        self._router: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._out: Outbox | None = None
        self._live: Liveness | None = None  # both made at bind(), with the sockets
        self._next_tick = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None
        self._running = False
        self._warn = RateLimitedWarnings(log)
        self._admission = Admission(self._principals, self._warn)
        # counters (read from any thread; written only by the loop)
        self.routed = 0
        self.published = 0
        self.bad_frames = 0
        self.denied = 0
        self.undeliverable = 0
        self.errors_sent = 0

    # ------------------------------------------------------------ lifecycle

    def bind(self) -> "Broker":
        """Create and bind the sockets (idempotent); errors surface to the caller."""
        if self._router is not None:
            return self
        if self._sockets.closed:
            raise SwarmError("broker is closed")
        self.bound_endpoint, self.bound_pub_endpoint = self._sockets.open(
            self.endpoint, self.pub_endpoint, peer_queue=self.peer_queue,
            max_msg_size=self.max_bytes + _MAXMSGSIZE_HEADROOM)
        router, pub = self._router, self._pub = self._sockets.router, self._sockets.pub
        self._out = Outbox(router, pub, self._warn)
        self._live = Liveness(self.table, self._out, self._log, self.max_bytes)
        self._admission.bind(self._live, self._reply_error)
        self._next_tick = self._clock() + self.heartbeat_interval
        self._log.info("broker_bound", endpoint=self.bound_endpoint, pub=self.bound_pub_endpoint,
                       mechanism=self.keyring.mechanism)
        return self

    def run(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Route until ``stop()`` (any thread) or ``should_stop()``; then close everything.

        ``should_stop`` is checked at every heartbeat tick and whenever the
        bus is idle for a receive timeout (at most 0.1 s).
        """
        self.bind()
        self._running = True
        self._loop_thread = threading.current_thread()
        router: zmq.Socket = self._router  # type: ignore[assignment]  # bind() set it
        # a blocking receive with a timeout (not poll + NOBLOCK): the cheapest
        # wait pyzmq offers, and the timeout bounds how late a tick can be
        router.setsockopt(zmq.RCVTIMEO, max(1, min(100, int(self.heartbeat_interval * 200))))
        recv, getsockopt, handle, clock = router.recv, router.getsockopt, self._handle, self._clock
        RCVMORE, Again = _RCVMORE, zmq.Again
        try:
            while not self._stopping:
                try:
                    # a Frame, not bytes: it carries the connection's User-Id
                    ident = recv(copy=False)
                except Again:  # idle for a receive timeout
                    if should_stop is not None and should_stop():
                        break
                    now = clock()
                    if now >= self._next_tick:
                        self.tick(now)
                    continue
                # a ROUTER identity is always followed by at least one frame, and
                # parts of a message arrive together: these recvs never wait
                hdr = recv()
                if getsockopt(RCVMORE):
                    body = recv()
                    frames = [hdr, body]
                    while getsockopt(RCVMORE):
                        frames.append(recv())
                else:
                    frames = [hdr]
                now = clock()
                try:
                    handle(ident, frames, now)
                except zmq.ContextTerminated:
                    raise
                except Exception:  # a bug on one message must not take the bus down
                    self.bad_frames += 1
                    self._log.exception("broker_handle_failed")
                if now >= self._next_tick:
                    self.tick(now)
                    if should_stop is not None and should_stop():
                        break
        except zmq.ContextTerminated:
            pass  # someone terminated our context: nothing left to route
        except Exception:  # process boundary: the loop must say why it died
            self._log.exception("broker_loop_failed")
            raise
        finally:
            self._running = False
            self._close()

    def step(self, timeout: float) -> int:
        """Handle what arrives within ``timeout`` seconds, without ticking (tests drive ticks).

        For a broker driven by its owner instead of ``run()`` (a fake clock
        in tests): returns the number of messages handled.
        """
        router = self._router
        if router is None:
            return 0
        n = 0
        if router.poll(int(timeout * 1000), zmq.POLLIN):
            while n < _DRAIN_BATCH and router.poll(0, zmq.POLLIN):
                parts = router.recv_multipart(copy=False)
                self._handle(parts[0], [f.bytes for f in parts[1:]], self._clock())
                n += 1
        return n

    def start_thread(self) -> threading.Thread:
        """Bind here (so bind errors raise now), then run the loop in a daemon thread."""
        self.bind()
        t = threading.Thread(target=self.run, name="bus-broker", daemon=True)
        self._thread = t
        t.start()
        return t

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to stop (any thread, a signal handler too) and wait for it; idempotent."""
        self._stopping = True
        me = threading.current_thread()
        if self._running and self._loop_thread is not me:
            self._sockets.wake()  # the loop also sees the flag within a receive timeout
        t = self._thread
        if t is not None and t is not me:
            t.join(timeout)
        elif not self._running:
            self._close()

    def _close(self) -> None:
        if self._sockets.closed:
            return
        self._sockets.close()
        self._router = self._pub = None
        self._log.info("broker_closed", routed=self.routed, bad_frames=self.bad_frames,
                       denied=self.denied, refused=self.refused)

    @property
    def refused(self) -> int:
        """Messages refused because their claimed sender was not the authenticated one."""
        return self._admission.refused

    @property
    def handshakes_refused(self) -> int:
        """Connections refused at the handshake: no, a forged, a revoked or a misplaced credential."""
        return self._sockets.refused()

    def peers(self) -> list[str]:
        """A snapshot of the peer ids on the bus (any thread)."""
        return self.table.ids()

    # ------------------------------------------------------------- routing

    def _handle(self, ident_frame: zmq.Frame, frames: list[bytes], now: float) -> None:
        try:
            uid = ident_frame.get(USER_ID)
        except zmq.ZMQError:  # a connection without a security handshake (our inproc wake-up line)
            uid = None
        ident = ident_frame.bytes
        if len(frames) != 2:
            if ident == self._wake_id:
                return  # stop() woke us; the loop sees the flag
            self._bad(ident, frames[0] if frames else None,
                      f"expected 2 frames (header, body), got {len(frames)}")
            return
        hdr, body = frames
        if len(hdr) + len(body) > self.max_bytes:
            self._bad(ident, hdr, f"message of {len(hdr) + len(body)} bytes exceeds "
                                  f"the limit of {self.max_bytes}")
            return
        try:
            info = route_info(hdr)
        except ProtocolError as exc:
            self._bad(ident, hdr, exc.message)
            return
        kind, type_name, msg_id, _corr, src, dst, _deadline, _trace = info
        table = self.table
        bound = table.binds.get(ident)
        # the identity check of every message: the same live credential, the same name
        if bound is None or bound[0] != uid or bound[1] != src or uid not in self._principals:
            bound = self._admission.admit(ident, uid, bound, info, now)
            if bound is None:
                return
        table.last_seen[ident] = now
        if dst == BROKER:
            err = self._live.for_broker(ident, kind, type_name, msg_id, body)  # type: ignore[union-attr]
            if err is not None:
                if isinstance(err, ProtocolError):
                    self.bad_frames += 1
                self._reply_error(ident, src, msg_id, err)
            return
        if self.interceptor is not None and self._denied(ident, info, bound[2]):
            return
        self._forward(ident, hdr, body, info)

    def _denied(self, ident: bytes, info: tuple, sender_kind: str) -> bool:
        """Ask the policy gate; a refused REQUEST gets a policy_denied reply."""
        reason = self._intercept(info, sender_kind)
        if reason is None:
            return False
        kind, type_name, msg_id, _corr, src, dst, _deadline, _trace = info
        self.denied += 1
        if kind == _REQUEST:
            self._reply_error(ident, src, msg_id, PolicyDenied(reason, dst=dst, type=type_name))
        self._warn("message_denied", key=f"{src}|{dst}|{reason}", src=src, kind=sender_kind, dst=dst,
                   type=type_name, reason=reason)
        return True

    def _forward(self, ident: bytes, hdr: bytes, body: bytes, info: tuple) -> None:
        """Publish a broadcast, or route to the destination's connection (refusing unknown, busy)."""
        kind, type_name, msg_id, _corr, src, dst, _deadline, _trace = info
        if dst == BROADCAST:
            self._pub.send_multipart((type_name.encode(), hdr, body))  # type: ignore[union-attr]
            self.published += 1
            return
        table = self.table
        dst_ident = table.route.get(dst)
        # only to a connection whose credential is still live (a revoked peer gets nothing)
        if dst_ident is None or table.binds[dst_ident][0] not in self._principals:
            self._undeliverable(ident, src, kind, msg_id, dst, type_name, "unknown")
            return
        send = self._router.send  # type: ignore[union-attr]
        try:
            # ROUTER checks the destination and its queue on the first part only
            send(dst_ident, _SNDMORE_NOBLOCK)
        except zmq.Again:
            self._undeliverable(ident, src, kind, msg_id, dst, type_name, "busy")
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._undeliverable(ident, src, kind, msg_id, dst, type_name, "unknown")
            return
        send(hdr, _SNDMORE_NOBLOCK)
        send(body, _NOBLOCK)
        self.routed += 1

    def _intercept(self, info: tuple, sender_kind: str) -> str | None:
        kind, type_name, msg_id, corr_id, src, dst, deadline, traceparent = info
        header = Header(_KINDS[kind], type_name, msg_id, corr_id, src, dst, float(deadline), traceparent)
        try:
            reason = self.interceptor(header, sender_kind)  # type: ignore[misc]
        except Exception as exc:  # the policy is a boundary: fail closed, keep routing
            self._log.exception("interceptor_failed", src=src, dst=dst, type=type_name)
            return f"policy check failed: {type(exc).__name__}"
        return None if reason is None else str(reason)

    def _undeliverable(self, ident: bytes, src: str, kind: int, msg_id: str, dst: str,
                       type_name: str, why: str) -> None:
        self.undeliverable += 1
        if why == "busy":
            err: SwarmError = PeerBusy(f"the queue of {dst} is full", dst=dst, type=type_name)
        else:
            err = UnknownDestination(f"no live peer {dst!r}", dst=dst, type=type_name)
        if kind == _REQUEST:
            self._reply_error(ident, src, msg_id, err)
        else:
            self._warn("message_undeliverable", src=src, dst=dst, type=type_name, code=err.code)

    # ------------------------------------------------------------ liveness

    def tick(self, now: float | None = None) -> None:
        """Expire silent peers and heartbeat the others (the loop calls it each interval)."""
        if now is None:
            now = self._clock()
        self._next_tick = now + self.heartbeat_interval
        if self._live is not None:
            self._live.tick(now)

    def _reply_error(self, ident: bytes, src: str, msg_id: str, err: SwarmError) -> None:
        if self._out is not None and self._out.reply_error(ident, src, msg_id, err):
            self.errors_sent += 1

    # ---------------------------------------------------------- bad input

    def _bad(self, ident: bytes, hdr: bytes | None, reason: str) -> None:
        self.bad_frames += 1
        peer = ident.decode("utf-8", "backslashreplace")
        self._warn("bad_frame_dropped", peer=peer, reason=reason)
        msg_id = request_id_of(hdr) if hdr is not None else None
        if msg_id is not None:
            self._reply_error(ident, peer, msg_id, ProtocolError(reason))
