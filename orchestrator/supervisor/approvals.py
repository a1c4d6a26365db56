"""Approval requests, kept in the registry file (table ``approvals``) beside the agents.

A request is created ``pending`` and decided once: ``approved``, ``denied``
(by the operator, or by the timeout guard with reason ``timeout``) or
``cancelled`` (its agent ended, or moved on to another step). Being in the
registry, a request survives a ``kill -9`` of the supervisor: after ``swarm
up --resume`` the new supervisor answers the waiting agent from here, and
``swarm approvals`` reads it even while no supervisor runs.

Two kinds: ``command`` (a command the configuration says needs approval,
held before it runs) and ``budget`` (an agent frozen because ``budget_of``'s
budget cannot cover its next model call). The supervisor is the only writer.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    seq INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    args TEXT NOT NULL DEFAULT '{}',
    thoughts TEXT NOT NULL DEFAULT '',
    budget_of TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    since REAL NOT NULL,
    state TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    decided_at REAL
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state);
"""
ID_PREFIX = "req-"


class Kind(StrEnum):
    """What a request asks for."""

    COMMAND = "command"
    BUDGET = "budget"


class State(StrEnum):
    """Where a request is: pending, or how it was decided."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Approval:
    """One request; ``text`` is the operator's note (approved) or the reason (denied, cancelled)."""

    id: str
    agent: str
    kind: Kind
    since: float
    command: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    thoughts: str = ""
    budget_of: str | None = None
    step: int = 0
    state: State = State.PENDING
    text: str = ""
    decided_at: float | None = None

    def listing(self) -> dict[str, Any]:
        """The ``swarm approvals --json`` item: id, agent, kind, command, args, since (+ budget_of)."""
        d: dict[str, Any] = {"id": self.id, "agent": self.agent, "kind": str(self.kind),
                             "command": self.command, "args": self.args, "since": self.since,
                             "thoughts": self.thoughts}
        if self.kind is Kind.BUDGET:
            d["budget_of"] = self.budget_of
        return d


def _approval(row: sqlite3.Row) -> Approval:
    try:
        args = json.loads(row["args"])
    except ValueError:
        args = {"raw": row["args"]}
    return Approval(id=row["id"], agent=row["agent"], kind=Kind(row["kind"]), since=row["since"],
                    command=row["command"], args=args if isinstance(args, dict) else {"value": args},
                    thoughts=row["thoughts"], budget_of=row["budget_of"], step=row["step"],
                    state=State(row["state"]), text=row["text"], decided_at=row["decided_at"])


class ApprovalBook:
    """The approval requests of one registry (its connection; read-only for the CLI)."""

    def __init__(self, conn: sqlite3.Connection, *, readonly: bool = False) -> None:
        self._conn = conn
        if not readonly:
            conn.executescript(_SCHEMA)

    def add(self, agent: str, kind: Kind, since: float, *, command: str = "", args: dict[str, Any] | None = None,
            thoughts: str = "", budget_of: str | None = None, step: int = 0) -> Approval:
        """Record a new pending request; its id is ``req-N`` (never reused in one swarm)."""
        row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM approvals").fetchone()
        rid = f"{ID_PREFIX}{row[0]}"
        text_args = json.dumps(args or {}, ensure_ascii=False, sort_keys=True, default=str)
        self._conn.execute(
            "INSERT INTO approvals (seq, id, agent, kind, command, args, thoughts, budget_of, step, since, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], rid, agent, str(kind), command, text_args, thoughts, budget_of, step, since,
             str(State.PENDING)))
        return self.get(rid)  # type: ignore[return-value]

    def get(self, request_id: str) -> Approval | None:
        try:
            row = self._conn.execute("SELECT * FROM approvals WHERE id = ?", (request_id,)).fetchone()
        except sqlite3.OperationalError:  # a registry from before approvals existed
            return None
        return _approval(row) if row else None

    def pending(self, *, agent: str | None = None, kind: Kind | None = None,
                budget_of: str | None = None) -> list[Approval]:
        """Pending requests, oldest first (only those of ``agent``, ``kind``, ``budget_of`` if given)."""
        q, params = "SELECT * FROM approvals WHERE state = ?", [str(State.PENDING)]
        for column, value in (("agent", agent), ("kind", kind), ("budget_of", budget_of)):
            if value is not None:
                q += f" AND {column} = ?"
                params.append(str(value))
        try:
            return [_approval(r) for r in self._conn.execute(q + " ORDER BY seq", params)]
        except sqlite3.OperationalError:
            return []

    def decide(self, request_id: str, state: State, text: str, at: float) -> bool:
        """Decide a pending request; False when it is unknown or was decided already."""
        cur = self._conn.execute(
            "UPDATE approvals SET state = ?, text = ?, decided_at = ? WHERE id = ? AND state = ?",
            (str(state), text, at, request_id, str(State.PENDING)))
        return cur.rowcount == 1

    def cancel(self, agent: str, reason: str, at: float, kind: Kind | None = None) -> list[str]:
        """Cancel ``agent``'s pending requests (of ``kind``, if given); their ids."""
        ids = [a.id for a in self.pending(agent=agent, kind=kind)]
        for rid in ids:
            self.decide(rid, State.CANCELLED, reason, at)
        return ids
