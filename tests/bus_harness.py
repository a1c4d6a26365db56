"""What the bus's integration tests build on (the ``bus`` fixture): real brokers, clients and sockets.

Every broker the factory starts shares one :class:`~bus.keyring.Keyring`
(so a client's credential survives a broker restart); ``client(identity)``
and ``raw(identity)`` present a credential issued for that identity (an
operator's for ``cli-...`` ids), unless told otherwise. Everything is
recorded and torn down at the end, even when the test fails.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import zmq

from bus import messages as bm
from bus.broker import Broker
from bus.client import BusClient
from bus.credentials import Credential
from bus.events import EventSubscriber
from bus.keyring import Keyring
from bus.sockets import ipc_endpoint
from swarm_core.peers import OPERATOR, PeerKind, kind_of
from tests.support import wait_until

_DEFAULT = object()


class RecordingLog:
    """A structlog-shaped logger port that keeps every event (the broker logs through it)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.events.append((level, event, fields))
        return log

    def named(self, event: str) -> list[dict[str, Any]]:
        return [f for _, e, f in list(self.events) if e == event]


class Bus:
    """Factory for brokers, clients, raw sockets and subscribers; closes all of them at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.endpoint = ipc_endpoint(tmp_path, "bus")
        self.pub_endpoint = ipc_endpoint(tmp_path, "pub")
        self.ctx = zmq.Context()
        self.keys = Keyring()
        self._creds: dict[str, Credential] = {}
        self.brokers: list[Broker] = []
        self.clients: list[BusClient] = []
        self.raws: list[zmq.Socket] = []
        self.subs: list[EventSubscriber] = []
        self.servers: list[tuple[threading.Thread, threading.Event]] = []

    def credential(self, identity: str) -> Credential:
        """The credential this identity connects with (issued once; the operator's for cli- ids)."""
        kind = kind_of(identity)
        principal = OPERATOR if kind is PeerKind.OPERATOR else identity
        if principal not in self._creds:
            self._creds[principal] = self.keys.issue(principal, kind)
        return self._creds[principal]

    def broker(self, **kw: Any) -> Broker:
        kw.setdefault("log", RecordingLog())
        kw.setdefault("heartbeat_interval", 0.25)  # clients judge the broker on the same interval
        kw.setdefault("keyring", self.keys)
        b = Broker(kw.pop("endpoint", self.endpoint), kw.pop("pub_endpoint", self.pub_endpoint), **kw)
        self.brokers.append(b)
        b.start_thread()
        return b

    def client(self, identity: str, credential: Any = _DEFAULT, **kw: Any) -> BusClient:
        kw.setdefault("heartbeat_interval", 0.25)
        cred = self.credential(identity) if credential is _DEFAULT else credential
        c = BusClient(kw.pop("endpoint", self.endpoint), identity, context=self.ctx, credential=cred, **kw)
        self.clients.append(c)
        return c.connect()

    def serve(self, client: BusClient, each: Callable[[], None] | None = None) -> None:
        """Run ``client``'s loop in a thread until teardown (``each`` runs every turn, in that thread)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                client.poll(0.01)
                if each is not None:
                    each()

        t = threading.Thread(target=loop, name=f"serve-{client.identity}", daemon=True)
        self.servers.append((t, stop))
        t.start()

    def worker(self, identity: str = "worker", **kw: Any) -> BusClient:
        """A served client answering Ping with Pong."""
        w = self.client(identity, **kw)
        w.handle(bm.Ping, lambda msg: bm.Pong(msg.body.payload))
        self.serve(w)
        return w

    def raw(self, identity: str, endpoint: str | None = None, credential: Any = _DEFAULT,
            routing_id: bytes | None = None, **opts: int) -> zmq.Socket:
        """A bare DEALER (for junk, spoofing and peers that never read), routing id = ``identity``."""
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, routing_id if routing_id is not None else identity.encode())
        cred = self.credential(identity) if credential is _DEFAULT else credential
        if cred is not None:
            cred.apply_client(s)
        for name, value in opts.items():
            s.setsockopt(getattr(zmq, name), value)
        s.connect(endpoint or self.endpoint)
        self.raws.append(s)
        return s

    def subscriber(self, topics: tuple[str, ...] = (), credential: Any = _DEFAULT) -> EventSubscriber:
        cred = self.credential("supervisor") if credential is _DEFAULT else credential
        s = EventSubscriber(self.pub_endpoint, topics, context=self.ctx, credential=cred)
        self.subs.append(s)
        return s

    def synced_subscriber(self, via: BusClient, topics: tuple[str, ...] = ()) -> EventSubscriber:
        """A subscriber proven connected: ``via`` publishes probes until one arrives."""
        sub = self.subscriber(topics + ((bm.Ping.TYPE,) if topics else ()))

        def probe() -> bool:
            via.send("*", bm.Ping(b"probe"))
            msg = sub.recv(0.05)
            return msg is not None and msg.body == bm.Ping(b"probe")

        wait_until(probe, what="the subscription to reach the broker")
        return sub

    def close(self) -> None:
        for _, stop in self.servers:
            stop.set()
        for t, _ in self.servers:
            t.join(5)
        for c in self.clients:
            c.close()
        for s in self.subs:
            s.close()
        for s in self.raws:
            s.close(linger=0)
        for b in self.brokers:
            b.stop()
        self.ctx.term()
