"""The direct path the benchmarks measure: a service's own authenticated ROUTER, no broker in between.

:class:`DirectServer` gives a service (the real ``MemoryService`` or
``GatewayService``, unchanged) the bus-client port it expects (``handle``,
``authorize_with``, ``reply``, ``reply_error``, ``send``,
``call_soon_threadsafe``, ``poll``), served from a ROUTER the service binds
itself. It keeps the policy the broker path has: the same ZAP handler and
keyring (PLAIN on ipc; a copied credential from another process is refused
there too), the same per-message identity check (the ``User-Id`` of every
message must be a live credential that may speak as its ``src``, one name
per connection: ``bus.admission``), then the same dispatch with the same
authorization table (``swarm_core.authz``, installed by the service).
``send`` (the gateway's usage reports) goes to a broker client, as it would
in a swarm. Clients use :class:`DirectClient`: a ``BusClient`` whose
"broker" is the service.

This is the benchmarks' prototype, not the swarm's wiring (see the README:
the swarm keeps the broker path).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import zmq

from bus import messages as bm
from bus.admission import Admission
from bus.client import BusClient
from bus.credentials import read_credential, write_file
from bus.dispatch import Dispatcher
from bus.keyring import BUS_DOMAIN, Keyring, stored_peers
from bus.peers import Binding
from bus.protocol import Kind, Message, decode, encode_body, new_id, pack_header, route_info
from bus.ratelimit import RateLimitedWarnings
from bus.sockets import configure_socket
from bus.wakeup import LoopCalls
from bus.zap import ZapHandler

_HEARTBEAT = int(Kind.HEARTBEAT)


class _Joins:
    """Admission's liveness port: the direct server keeps only the bindings."""

    def __init__(self, binds: dict[bytes, Binding]) -> None:
        self.binds = binds

    def join(self, ident: bytes, binding: Binding, now: float) -> None:
        self.binds[ident] = binding


class DirectServer:
    """A service's own ROUTER: authenticated, identity-checked, dispatched like the broker path."""

    def __init__(self, endpoint: str, identity: str, keys: Keyring, log: Any, upstream: Any = None) -> None:
        self.identity = identity
        self.ctx = zmq.Context()
        self.zap = ZapHandler(self.ctx, keys, ipc=endpoint.startswith("ipc://"), log=log)
        self.zap.start()
        sock = self.sock = self.ctx.socket(zmq.ROUTER)
        configure_socket(sock, sndhwm=1000)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        keys.apply_server(sock, BUS_DOMAIN)
        sock.bind(endpoint)
        self._principals = keys.principals
        self._binds: dict[bytes, Binding] = {}
        self._admission = Admission(self._principals, RateLimitedWarnings(log))
        self._admission.bind(_Joins(self._binds), self._refuse)
        self._dispatcher = Dispatcher(identity, self.reply, self.reply_error, log)
        self._ident_of: dict[str, bytes] = {}  # request msg_id -> the connection to answer
        self._calls = LoopCalls()
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._calls.fd, zmq.POLLIN)
        self._upstream = upstream

    # ------------------------------------------------------------ the port a service expects

    def handle(self, body_cls: type, fn: Callable[[Message], Any]) -> None:
        self._dispatcher.handlers[body_cls.TYPE] = fn

    def authorize_with(self, check: Callable[[Message], "str | None"] | None) -> None:
        self._dispatcher.authorize = check

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        self._calls.call_soon(fn)

    def reply(self, request: Message, body: Any) -> None:
        self._answer(request, Kind.REPLY, body)

    def reply_error(self, request: Message, err: Any) -> None:
        self._answer(request, Kind.ERROR, bm.ErrorReply.of(err))

    def send(self, dst: str, body: Any) -> None:
        if self._upstream is not None:
            self._upstream.send(dst, body)

    def _answer(self, request: Message, kind: Kind, body: Any) -> None:
        ident = self._ident_of.pop(request.header.msg_id, None)
        if ident is None:
            return
        h = request.header
        hdr = pack_header(kind, body.TYPE, new_id(), h.msg_id, self.identity, h.src, 0.0)
        try:
            self.sock.send_multipart((ident, hdr, encode_body(body)), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _refuse(self, ident: bytes, src: str, msg_id: str, err: Any) -> None:
        hdr = pack_header(Kind.ERROR, bm.ErrorReply.TYPE, new_id(), msg_id, self.identity, src, 0.0)
        self.sock.send_multipart((ident, hdr, encode_body(bm.ErrorReply.of(err))), zmq.NOBLOCK)

    # ------------------------------------------------------------ the loop

    def poll(self, timeout: float = 0.0, until: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + timeout
        while until is None or not until():
            events = dict(self._poller.poll(max(0, int((end - time.monotonic()) * 1000))))
            if self._calls.fd in events:
                self._calls.clear_wakeups()
            if self._calls.calls:
                self._calls.run()
            if self.sock in events:
                for _ in range(256):
                    try:
                        parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._on(parts)
            if time.monotonic() >= end:
                return

    def _on(self, parts: list[zmq.Frame]) -> None:
        if len(parts) != 3:
            return
        uid = parts[0].get("User-Id")
        ident, hdr, body = parts[0].bytes, parts[1].bytes, parts[2].bytes
        info = route_info(hdr)
        kind, _type, msg_id, _corr, src, _dst, _deadline, _traceparent = info
        bound = self._binds.get(ident)
        if bound is None or bound[0] != uid or bound[1] != src or uid not in self._principals:
            if self._admission.admit(ident, uid, bound, info, time.monotonic()) is None:
                return
        if _dst == "broker":  # the client's heartbeats and Bye: a heartbeat back keeps it from reconnecting
            if kind == _HEARTBEAT:
                hb = pack_header(Kind.HEARTBEAT, bm.Heartbeat.TYPE, new_id(), "", "broker", src, 0.0)
                self.sock.send_multipart((ident, hb, encode_body(bm.Heartbeat())), zmq.NOBLOCK)
            return
        msg = decode([hdr, body])
        if msg.header.kind is Kind.REQUEST:
            self._ident_of[msg_id] = ident
        self._dispatcher.dispatch(msg)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.zap.stop()
        self._calls.close()
        self.ctx.term()


def direct_client(endpoint: str, identity: str, credential: Any) -> BusClient:
    """A bus client of a :class:`DirectServer` (its heartbeats to "broker" are ignored there)."""
    return BusClient(endpoint, identity, credential=credential).connect()


class BenchKeys:
    """The credentials of a benchmark's peers: issued into a keyring store, one 0600 file each."""

    def __init__(self, tmp: Path, mechanism: str = "plain", **peers: str) -> None:
        self.store = tmp / f"keys-{mechanism}.json"
        self.keys = Keyring(mechanism, store=self.store)
        self.files = {name: write_file(tmp / f"{name}-{mechanism}.cred", self.keys.issue(name, kind))
                      for name, kind in peers.items()}

    def credential(self, name: str) -> Any:
        return read_credential(self.files[name])


def stored_keys(store: str) -> Keyring:
    """The keyring of a benchmark's store (in a service process: the verifiers, never the secrets)."""
    return Keyring.load(store, keep=stored_peers(store))
