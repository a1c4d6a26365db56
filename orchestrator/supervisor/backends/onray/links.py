"""The supervisor's side of one host actor: its state, its signals, and a thread on its exits.

A link is ``ready``, ``restarting`` (Ray reported the actor died; it
restarts it on the same node and the agents, each in its own session, keep
running) or ``lost`` (it did not answer a kill within
:data:`KILL_ANSWER` seconds, or nothing for :data:`POLL_ANSWER`, or a
restart took longer than :data:`RESTART_TIMEOUT`, or Ray says its node
died). The thread long-polls the host's exits and tells the owner, through
the :class:`LinkEvents` it was given, of exits, of a restart (the owner has
the new incarnation adopt the survivors), of a loss (the owner ends the
agents ``node_unreachable``) and of a lost host that answers again (the
owner sweeps what it gave up). Signals sent while the host restarts are
kept and sent again once it has adopted its agents.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

READY, RESTARTING, LOST = "ready", "restarting", "lost"
KILL_ANSWER = 0.5  # seconds a host has to answer a kill before its node counts as unreachable
POLL_WAIT = 0.25  # the host holds an exits poll this long when it has nothing to say
POLL_ANSWER = 3.0  # seconds beyond POLL_WAIT without any answer: unreachable
RESTART_TIMEOUT = 30.0  # a host restarting longer than this is lost
TICK = 0.05  # how often the thread looks at pending kills while it waits


class LinkEvents(Protocol):
    """What a link tells its owner (called on the link's thread)."""

    def exits(self, link: "HostLink", events: list[list[Any]]) -> None: ...

    def restarted(self, link: "HostLink") -> None: ...

    def lost(self, link: "HostLink") -> None: ...

    def back(self, link: "HostLink") -> None: ...


@dataclass
class _Pending:
    ref: Any
    deadline: float
    pgids: list[int]
    sig: int


@dataclass
class HostLink:
    """One host actor as the supervisor sees it."""

    node_id: str
    node: str  # the short name shown as ``node`` in ``swarm ps``
    actor: Any
    events: LinkEvents
    log: Any
    clock: Callable[[], float] = time.monotonic
    state: str = READY
    incarnation: str | None = None
    since: float = 0.0  # when the current state began
    _pending: list[_Pending] = field(default_factory=list)
    _deferred: list[tuple[list[int], int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching the host (after its first answer: ``incarnation`` is set)."""
        self._thread = threading.Thread(target=self._watch, name=f"host-{self.node}", daemon=True)
        self._thread.start()

    def call(self, method: str, *args: Any, timeout: float) -> Any:
        """Call ``method`` on the host and wait for its answer (Ray's errors propagate)."""
        return ray.get(getattr(self.actor, method).remote(*args), timeout=timeout)

    def signal(self, pgids: list[int], sig: int) -> bool:
        """Ask the host to signal ``pgids`` (no wait); False when the host is lost."""
        with self._lock:
            if self.state == LOST:
                return False
            if self.state == RESTARTING:
                self._deferred.append((pgids, sig))
                return True
            ref = self.actor.signal.remote(pgids, sig)
            self._pending.append(_Pending(ref, self.clock() + KILL_ANSWER, pgids, sig))
        return True

    def set_state(self, state: str) -> None:
        with self._lock:
            if state != self.state:
                self.state, self.since = state, self.clock()

    def take_deferred(self) -> list[tuple[list[int], int]]:
        """Signals kept while the host restarted (the owner sends them once it adopted)."""
        with self._lock:
            out, self._deferred = self._deferred, []
        return out

    # ------------------------------------------------------------ the thread

    def _watch(self) -> None:
        cursor = 0
        while not self._stop.is_set():
            ref = self.actor.poll.remote(self.incarnation, cursor, POLL_WAIT)
            asked = self.clock()
            answer = self._await(ref, asked)
            if answer is None:
                continue
            cursor = self._take(answer, cursor)

    def _await(self, ref: Any, asked: float) -> dict[str, Any] | None:
        """Wait for a poll's answer, minding pending kills and how long the host has been silent."""
        while not self._stop.is_set():
            done, _ = ray.wait([ref], timeout=TICK)
            self._check_kills()
            if done:
                try:
                    return ray.get(ref)
                except RayActorError:
                    self._restarting()
                    self._stop.wait(TICK)
                    return None
                except RayError as exc:
                    self.log.warning("host_poll_failed", node=self.node, error=str(exc))
                    self._stop.wait(0.5)
                    return None
            now = self.clock()
            if self.state == READY and now - asked > POLL_WAIT + POLL_ANSWER:
                self._lose("no answer to an exits poll")
            elif self.state == RESTARTING and now - self.since > RESTART_TIMEOUT:
                self._lose("restart took too long")
        return None

    def _take(self, answer: dict[str, Any], cursor: int) -> int:
        """Handle one poll answer; return the new cursor."""
        incarnation, events = answer["incarnation"], answer["events"]
        if incarnation != self.incarnation:
            self.incarnation, cursor = incarnation, 0
            self.log.warning("host_restarted", node=self.node, incarnation=incarnation)
            self.events.restarted(self)
        if self.state == LOST:
            self.log.warning("host_back", node=self.node)
            self.events.back(self)
        self.set_state(READY)
        if events:
            self.events.exits(self, events)
            cursor = max(cursor, max(int(e[0]) for e in events))
        return cursor

    def _restarting(self) -> None:
        if self.state == READY:
            self.log.warning("host_restarting", node=self.node)
            self.set_state(RESTARTING)

    def _check_kills(self) -> None:
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return
        done, _ = ray.wait([p.ref for p in pending], num_returns=len(pending), timeout=0)
        finished = {id(r) for r in done}
        now, late, failed = self.clock(), [], []
        for p in pending:
            if id(p.ref) in finished:
                try:
                    ray.get(p.ref, timeout=0)
                except (RayActorError, GetTimeoutError):
                    failed.append(p)
                except RayError as exc:
                    self.log.warning("host_signal_failed", node=self.node, error=str(exc))
            elif now > p.deadline:
                late.append(p)
        with self._lock:
            gone = {id(p) for p in failed + late} | {id(p) for p in pending if id(p.ref) in finished}
            self._pending = [p for p in self._pending if id(p) not in gone]
        if failed:
            self._restarting()
        if (failed or late) and self.state == RESTARTING:
            with self._lock:
                self._deferred += [(p.pgids, p.sig) for p in failed + late]
        elif late and self.state == READY:
            self._lose(f"a kill was not answered within {KILL_ANSWER:g}s")

    def _lose(self, why: str) -> None:
        if self.state == LOST:
            return
        self.log.error("host_unreachable", node=self.node, why=why)
        self.set_state(LOST)
        with self._lock:
            self._pending.clear()
            self._deferred.clear()
        self.events.lost(self)

    def lose(self, why: str) -> None:
        """Declare the host lost from outside (Ray says its node died)."""
        self._lose(why)

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=POLL_WAIT + 2 * TICK + 1.0)
