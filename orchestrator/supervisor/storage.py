"""When the registry cannot be written (a full or read-only run dir): say so, refuse changes, serve reads.

Every bus handler runs inside :meth:`StorageWatch.guard`, and the loop's own
work (the reconcile tick, reaped exits) inside :meth:`StorageWatch.run`. A
write SQLite refuses (``database or disk is full``, ``attempt to write a
readonly database``, ``disk I/O error``) puts the supervisor in a degraded
state, logged once as ``registry_storage_failed``: from then on every
request but the reads (list, inspect, status) and ``down`` is refused with a
:class:`StorageError` that says what is wrong, before anything is done. A
probe write every ``PROBE_EVERY`` seconds ends the state (logged as
``registry_storage_recovered``). What was committed before stays: SQLite
never acknowledges a write it did not make durable.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable

from bus import messages as bm
from bus.protocol import Message
from orchestrator.supervisor.table import AgentTable
from swarm_core import messages as m
from swarm_core.errors import StorageError

PROBE_EVERY = 2.0  # seconds between probe writes while the registry refuses them
READS = frozenset({m.ListAgents, m.Inspect, m.SwarmStatus, m.Down, bm.Ping})  # served while degraded

Handler = Callable[[Message], Any]


class StorageWatch:
    """Whether the registry takes writes, and the guard that refuses changes while it does not."""

    def __init__(self, table: AgentTable, log: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.log = log
        self.clock = clock
        self.problem = ""  # why the registry refuses writes ("" while it takes them)
        self._next_probe = 0.0

    def guard(self, body_type: type, handler: Handler) -> Handler:
        """``handler``, refused up front while degraded (unless it only reads), its refused writes typed."""
        reads = body_type in READS

        def guarded(msg: Message) -> Any:
            if self.problem and not reads:
                raise StorageError(self.message())
            try:
                return handler(msg)
            except sqlite3.Error as exc:
                self.failed(exc)
                raise StorageError(self.message()) from None

        return guarded

    def run(self, work: Callable[[], Any]) -> None:
        """Run the loop's own work; a refused write degrades the supervisor instead of ending it."""
        try:
            work()
        except sqlite3.Error as exc:
            self.failed(exc)

    def failed(self, exc: BaseException) -> None:
        """A write was refused: say so once."""
        if not self.problem:
            self.log.error("registry_storage_failed", error=str(exc), registry=str(self.table.registry.path))
        self.problem = str(exc) or type(exc).__name__

    def probe(self) -> None:
        """While degraded, try one small write now and then; when it works, changes are taken again."""
        now = self.clock()
        if not self.problem or now < self._next_probe:
            return
        self._next_probe = now + PROBE_EVERY
        try:
            self.table.set_meta("storage_probe", time.time())
        except sqlite3.Error:
            return
        self.log.warning("registry_storage_recovered", was=self.problem)
        self.problem = ""

    def message(self) -> str:
        """The one line an operator (or an agent) is told while degraded."""
        return (f"the swarm's registry {self.table.registry.path} cannot be written ({self.problem}); "
                "nothing was changed; swarm ps, inspect and logs still work; free space or make the "
                "run directory writable")
