"""Server-sent events for every connected page: one watcher thread, one queue per client.

The watcher wakes on anything the swarm's broker publishes (lifecycle
events: spawned, ready, done, killed...) and at least every ``interval``
seconds, reads what changed in the registry (:class:`RegistryWatch`) and
hands each client:

* ``snapshot`` — on connect and after a new swarm: ``{swarm, agents, approvals}``;
* ``agent`` — one changed agent (the fields of ``swarm ps --json``);
* ``event`` — one new registry event row ``{seq, ts, agent_id, event, detail}``;
* ``swarm`` — the swarm's state changed (``running``, ``down``...);
* ``approvals`` — the pending approval requests changed (one was made,
  decided, timed out or cancelled): the whole pending list, the items of
  ``swarm approvals --json``.

When the swarm is down the bus subscription has nothing to say and the
registry stays readable; when a swarm comes back (same or new registry) the
watcher subscribes to its new publisher endpoint.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

from orchestrator.dashboard.source import RunSource
from orchestrator.dashboard.watch import Changes, RegistryWatch

_BURST = 1000  # published events folded into one registry read at most
CLIENT_QUEUE = 1000  # events a slow client may fall behind before it is dropped


class Client:
    """One connected SSE client: a bounded queue of encoded events."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue(CLIENT_QUEUE)
        self.dropped = False

    def put(self, data: bytes | None) -> None:
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            self.dropped = True  # the writer sees it and closes the stream; the page reconnects


def encode(kind: str, data: Any) -> bytes:
    """One SSE frame: ``event: KIND`` and the JSON data."""
    text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    return f"event: {kind}\ndata: {text}\n\n".encode()


class EventHub:
    """Fans registry and bus changes out to SSE clients (owned by the server)."""

    def __init__(self, run_dir: Path, log: Any, interval: float = 0.25) -> None:
        self.run_dir = Path(run_dir)
        self.log = log
        self.interval = interval
        self.source = RunSource(run_dir)
        self._watch = RegistryWatch(run_dir)
        self._clients: set[Client] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bus = _BusWakeup(self.run_dir, log)
        self._swarm: dict[str, Any] = {}

    # ------------------------------------------------------------ clients

    def connect(self) -> Client:
        """A new client, its first event a snapshot of the whole swarm."""
        client = Client()
        with self._lock:
            client.put(self._snapshot())
            self._clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def _broadcast(self, frames: list[bytes]) -> None:
        for client in self._clients:  # the caller holds the lock
            for frame in frames:
                client.put(frame)

    # ------------------------------------------------------------ the watcher

    def start(self) -> None:
        """Read the registry once (so the first snapshot is whole), then watch in a thread."""
        self._update()
        self._thread = threading.Thread(target=self._run, name="dashboard-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher and end every client's stream."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._bus.close()
        self._watch.close()
        with self._lock:
            for client in self._clients:
                client.put(None)
            self._clients.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._bus.wait(self.interval, self._stop)
                self._update()
            except Exception:  # thread boundary: log it, keep watching
                self.log.exception("dashboard_watch_failed")
                self._stop.wait(self.interval)

    def _update(self) -> None:
        # under the lock: a client connecting meanwhile gets a snapshot and then only later changes
        with self._lock:
            self._apply(self._watch.poll())

    def _apply(self, ch: Changes) -> None:
        frames: list[bytes] = []
        if ch.meta or ch.reset:
            self._swarm = self.source.swarm()
            meta = self._watch.meta()
            self._bus.follow(meta.get("pub_endpoint"))
        if ch.reset:
            frames.append(self._snapshot())
        else:
            if ch.meta:
                frames.append(encode("swarm", self._swarm))
            frames.extend(encode("agent", view) for view in ch.agents)
            if ch.approvals is not None:
                frames.append(encode("approvals", ch.approvals))
        frames.extend(encode("event", row) for row in ch.events)
        if frames:
            self._broadcast(frames)

    def _snapshot(self) -> bytes:
        return encode("snapshot", {"swarm": self._swarm, "agents": self._watch.views(),
                                   "approvals": self._watch.approvals()})

    def swarm(self) -> dict[str, Any]:
        return dict(self._swarm)


class _BusWakeup:
    """A subscription to the broker's published events, used only to wake the watcher early."""

    def __init__(self, run_dir: Path, log: Any) -> None:
        self.run_dir = run_dir
        self.log = log
        self._endpoint: str | None = None
        self._sub: Any = None

    def follow(self, endpoint: str | None) -> None:
        """Subscribe to ``endpoint`` (a swarm's publisher), dropping an older subscription."""
        if endpoint == self._endpoint:
            return
        self.close()
        self._endpoint = endpoint
        if not endpoint:
            return
        from bus.events import EventSubscriber
        from orchestrator.runctl import operator_credential

        try:  # the broker's event socket admits the operator's credential (and the supervisor's) only
            self._sub = EventSubscriber(endpoint, credential=operator_credential(self.run_dir))
        except Exception as exc:  # keys missing or unreadable: poll the registry alone
            self.log.warning("dashboard_bus_unavailable", endpoint=endpoint, error=str(exc))
            self._sub = None

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when the bus published something, ``stop`` is set, or after ``timeout`` seconds."""
        if self._sub is None:
            stop.wait(timeout)
            return
        if self._sub.recv(timeout) is not None:
            for _ in range(_BURST):  # one registry read covers a burst of events
                if self._sub.recv(0) is None:
                    break

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self._endpoint = None
