"""The gateway's spend ledger: usage, reservations and rate windows in SQLite (``RUN_DIR/ledger.db``).

A restarted gateway (after a ``kill -9``, or a new one after ``swarm up
--resume``) loads it, so spend, running reservations and rate windows never
start from zero.

Durability: every change is one transaction, committed before the reply
leaves (WAL, ``synchronous=NORMAL``: once a commit returns its pages are in
the operating system, so it survives a ``kill -9`` of the gateway). No fsync
sits on the reply path (one costs 0.2-0.6 ms on these disks, more than the
0.1 ms an ordinary call may lose): a checkpointer thread syncs the WAL in
batches, every :data:`SYNC_SECONDS` while there were commits (a PASSIVE
checkpoint fsyncs the WAL first), so a power loss costs at most that window.

Tables: ``spend`` (each agent's own tokens, requests, cost), ``calls`` (a
call's reservation while it runs, ``reserved``; then its usage and answer,
``done``, kept a while so a retry of the same call id gets the same answer
and is counted once), ``rates`` (token bucket levels and stamps).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.gateway.spend import Cost
from swarm_core import messages as m

SYNC_SECONDS = 0.2
# WITHOUT ROWID: the key is the table's own b-tree, so a commit writes half the pages (40 -> 26 us here)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (agent TEXT PRIMARY KEY, tokens INTEGER NOT NULL, requests INTEGER NOT NULL,
                                  cost_usd REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (call_id TEXT PRIMARY KEY, agent TEXT NOT NULL, msg_id TEXT NOT NULL,
                                  state TEXT NOT NULL, tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
                                  text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, model TEXT,
                                  ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rates (key TEXT PRIMARY KEY, level REAL NOT NULL, stamp REAL NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class InFlight:
    """A call that was running: its agent, the request's message id (to answer it), its reservation."""

    agent: str
    msg_id: str
    cost: Cost


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished call's answer, as it was (or would have been) replied."""

    agent: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    cost_usd: float

    def completion(self) -> m.Completion:
        """The ``Completion`` reply it was."""
        return m.Completion(self.text, self.prompt_tokens, self.completion_tokens, self.model, self.cost_usd)


@dataclass
class LedgerState:
    """What a gateway finds at start: spend per agent, running calls, finished call ids, rate buckets."""

    spent: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)  # call id -> when it finished
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)


class NullLedger:
    """No ledger (tests, benchmarks without a run directory): remembers nothing."""

    def load(self) -> LedgerState:
        return LedgerState()

    def reserve(self, call_id: str, agent: str, msg_id: str, cost: Cost, rates: dict[str, Any]) -> None:
        return None

    def settle(self, call_id: str, answer: Answer, own: tuple[int, int, float], rates: dict[str, Any]) -> None:
        return None

    def release(self, call_id: str) -> None:
        return None

    def answer(self, call_id: str) -> Answer | None:
        return None

    def prune(self, before: float) -> None:
        return None

    def close(self) -> None:
        return None


class Ledger(NullLedger):
    """The ledger file of one run directory; one writer (the gateway's loop thread)."""

    def __init__(self, path: str | Path, wall: Any = time.time) -> None:
        self.path = Path(path)
        self._wall = wall
        self._conn = self._open()
        self._conn.executescript(_SCHEMA)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the reply path
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="ledger-sync", daemon=True)
        self._syncer.start()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._dirty.set()

    # ------------------------------------------------------------ writing

    def reserve(self, call_id: str, agent: str, msg_id: str, cost: Cost, rates: dict[str, Any]) -> None:
        """A call was admitted: its reservation (and the rate buckets it took from)."""
        self._write(("INSERT OR REPLACE INTO calls (call_id, agent, msg_id, state, tokens, cost_usd, ts)"
                     " VALUES (?, ?, ?, 'reserved', ?, ?, ?)",
                     (call_id, agent, msg_id, cost.tokens, cost.usd, self._wall())),
                    *_rate_rows(rates))

    def settle(self, call_id: str, answer: Answer, own: tuple[int, int, float], rates: dict[str, Any]) -> None:
        """A call finished: its usage and answer replace the reservation; the agent's new totals."""
        a = answer
        self._write(("INSERT OR REPLACE INTO calls (call_id, agent, msg_id, state, tokens, cost_usd, text,"
                     " prompt_tokens, completion_tokens, model, ts) VALUES (?, ?, '', 'done', ?, ?, ?, ?, ?, ?, ?)",
                     (call_id, a.agent, a.prompt_tokens + a.completion_tokens, a.cost_usd, a.text, a.prompt_tokens,
                      a.completion_tokens, a.model, self._wall())),
                    ("INSERT OR REPLACE INTO spend (agent, tokens, requests, cost_usd) VALUES (?, ?, ?, ?)",
                     (a.agent, *own)),
                    *_rate_rows(rates))

    def release(self, call_id: str) -> None:
        """A call failed: its reservation is given back."""
        self._write(("DELETE FROM calls WHERE call_id = ? AND state = 'reserved'", (call_id,)))

    def prune(self, before: float) -> None:
        """Forget the answers of calls finished before ``before`` (wall clock)."""
        self._write(("DELETE FROM calls WHERE state = 'done' AND ts < ?", (before,)))

    # ------------------------------------------------------------ reading

    def load(self) -> LedgerState:
        """Everything a starting gateway needs."""
        state = LedgerState()
        conn = self._conn
        for agent, tokens, requests, usd in conn.execute("SELECT agent, tokens, requests, cost_usd FROM spend"):
            state.spent[agent] = (tokens, requests, usd)
        for call_id, agent, msg_id, call_state, tokens, usd, ts in conn.execute(
                "SELECT call_id, agent, msg_id, state, tokens, cost_usd, ts FROM calls"):
            if call_state == "reserved":
                state.in_flight[call_id] = InFlight(agent, msg_id, Cost(tokens, usd))
            else:
                state.done[call_id] = ts
        for key, level, stamp in conn.execute("SELECT key, level, stamp FROM rates"):
            state.rates[key] = (level, stamp)
        return state

    def answer(self, call_id: str) -> Answer | None:
        """The recorded answer of a finished call, if it is still kept."""
        row = self._conn.execute("SELECT agent, text, prompt_tokens, completion_tokens, model, cost_usd FROM calls"
                                 " WHERE call_id = ? AND state = 'done'", (call_id,)).fetchone()
        return Answer(*row) if row else None

    # ------------------------------------------------------------ syncing

    def _sync_loop(self) -> None:
        """Checkpoint (fsync) the WAL while there were commits; a connection of this thread's own."""
        conn = self._open()
        try:
            while not self._closing.wait(SYNC_SECONDS):
                self._sync(conn)
            self._sync(conn)
        finally:
            conn.close()

    def _sync(self, conn: sqlite3.Connection) -> None:
        if self._dirty.is_set():
            self._dirty.clear()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Sync what is left and close."""
        self._closing.set()
        self._syncer.join(10)
        self._conn.close()


def _rate_rows(rates: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    return [("INSERT OR REPLACE INTO rates (key, level, stamp) VALUES (?, ?, ?)", (key, level, stamp))
            for key, (level, stamp) in rates.items()]
