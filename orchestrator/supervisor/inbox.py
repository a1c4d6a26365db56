"""The durable inbox: every message accepted for an agent, kept in the registry until it is read.

A message is written (and committed) here before its sender gets an answer.
It stays *unread* until its agent acknowledges it (``InboxAck``: it entered
a prompt); the supervisor pushes unread messages again until then, so a
message survives a lost push, a restarted agent and a supervisor crash.

A message posted with a request key (``sender:request_id``) is kept once:
posting the same key again returns the message kept the first time, in the
same statement (SQLite's unique index decides), so a retry after a crash or
a time-out never delivers twice.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    reply_to TEXT NOT NULL DEFAULT '',
    request_key TEXT UNIQUE,
    created_at REAL NOT NULL,
    acked_at REAL,
    acked_pid INTEGER
);
CREATE INDEX IF NOT EXISTS inbox_unread ON inbox (acked_at, agent_id);
"""


@dataclass(frozen=True)
class Note:
    """One kept message."""

    id: str
    agent_id: str
    sender: str
    kind: str
    text: str
    reply_to: str
    created_at: float
    acked_at: float | None = None
    acked_pid: int | None = None
    request_key: str | None = None
    seq: int = 0

    @property
    def read(self) -> bool:
        return self.acked_at is not None


def _note(row: sqlite3.Row) -> Note:
    return Note(**dict(row))


class InboxBook:
    """The ``inbox`` table of a registry (the supervisor is its only writer)."""

    def __init__(self, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self._conn = conn
        if not readonly:
            conn.executescript(_SCHEMA)

    def post(self, agent_id: str, sender: str, kind: str, text: str, now: float, *,
             reply_to: str = "", request_key: str | None = None) -> tuple[Note, bool]:
        """Keep a message for ``agent_id``; return it and whether it is new (False: a retried key)."""
        note_id = os.urandom(8).hex()
        cur = self._conn.execute(
            "INSERT INTO inbox (id, agent_id, sender, kind, text, reply_to, request_key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_key) DO NOTHING",
            (note_id, agent_id, sender, kind, text, reply_to, request_key or None, now))
        if cur.rowcount == 1:
            return self._get("id", note_id), True
        return self._get("request_key", request_key), False

    def _get(self, column: str, value: Any) -> Note:
        row = self._conn.execute(f"SELECT * FROM inbox WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            raise KeyError(f"no inbox message with {column} {value!r}")
        return _note(row)

    def get(self, note_id: str) -> Note | None:
        """The message kept under ``note_id`` (None when there is none)."""
        try:
            return self._get("id", note_id)
        except KeyError:
            return None

    def by_request(self, request_key: str) -> Note | None:
        """The message kept under ``request_key`` (None when that request never posted one)."""
        try:
            return self._get("request_key", request_key)
        except KeyError:
            return None

    def ack(self, agent_id: str, ids: list[str], pid: int | None, now: float) -> int:
        """Mark ``agent_id``'s messages ``ids`` read (others' ids are ignored); return how many changed."""
        changed = 0
        for note_id in ids:
            cur = self._conn.execute(
                "UPDATE inbox SET acked_at = ?, acked_pid = ? WHERE id = ? AND agent_id = ? "
                "AND acked_at IS NULL", (now, pid, note_id, agent_id))
            changed += cur.rowcount
        return changed

    def unread(self, agent_id: str | None = None) -> list[Note]:
        """Messages not yet acknowledged (of one agent, or of all), oldest first."""
        q, args = "SELECT * FROM inbox WHERE acked_at IS NULL", ()
        if agent_id is not None:
            q, args = q + " AND agent_id = ?", (agent_id,)
        return [_note(r) for r in self._conn.execute(q + " ORDER BY seq", args)]

    def all(self) -> list[Note]:
        """Every message kept, oldest first."""
        try:
            return [_note(r) for r in self._conn.execute("SELECT * FROM inbox ORDER BY seq")]
        except sqlite3.OperationalError:  # a registry from before the inbox existed
            return []
