"""First outcomes of idempotent requests, kept in the registry beside the state they changed.

A request that changes state (start_agent, delete, an operator's message...)
may carry a request id; its requester sends the same id again when it
retries after a time-out or a crash. The handler records the outcome under
``(requester, request_id)`` in the same transaction as the change it made
(``Registry.atomic``), so a retry finds it and answers with it instead of
acting twice.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    requester TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (requester, request_id)
);
"""

MAX_REQUEST_ID = 128  # characters: longer ids are refused by the handlers


class OutcomeBook:
    """The ``outcomes`` table of a registry (the supervisor is its only writer)."""

    def __init__(self, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self._conn = conn
        if not readonly:
            conn.executescript(_SCHEMA)

    def get(self, requester: str, request_id: str, kind: str) -> dict[str, Any] | None:
        """The outcome recorded for this request (None: it was never carried out)."""
        if not request_id:
            return None
        row = self._conn.execute(
            "SELECT outcome FROM outcomes WHERE requester = ? AND request_id = ? AND kind = ?",
            (requester, request_id, kind)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, requester: str, request_id: str, kind: str, outcome: dict[str, Any], now: float) -> None:
        """Record the outcome of a request that was carried out (nothing without a request id)."""
        if not request_id:
            return
        self._conn.execute(
            "INSERT OR REPLACE INTO outcomes (requester, request_id, kind, outcome, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (requester, request_id, kind, json.dumps(outcome), now))

    def count(self) -> int:
        """How many outcomes are kept."""
        return int(self._conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])
