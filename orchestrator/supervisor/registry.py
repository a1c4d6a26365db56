"""The agent tree, persisted in SQLite in the run directory.

The supervisor is the only writer. The CLI opens the same file read-only, so
``swarm ps`` works while the supervisor is busy, and after it died.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from swarm_core.status import Status, is_terminal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    parent TEXT,
    depth INTEGER NOT NULL,
    pid INTEGER,
    status TEXT NOT NULL,
    steps INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    task TEXT NOT NULL DEFAULT '',
    result TEXT,
    reason TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    updated_at REAL NOT NULL,
    seq INTEGER NOT NULL,
    node TEXT,
    budget_tokens INTEGER,
    budget_usd REAL,
    budget_override INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    agent_id TEXT,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""

# columns added after the first release, with their declarations (the ALTER TABLE of an old registry)
_ADDED_COLUMNS = (("node", "TEXT"), ("budget_tokens", "INTEGER"), ("budget_usd", "REAL"),
                  ("budget_override", "INTEGER NOT NULL DEFAULT 0"))
PS_FIELDS = ("id", "name", "role", "parent", "depth", "pid", "status", "steps", "tokens", "requests", "node")


@dataclass
class AgentRecord:
    """One agent as the registry knows it."""

    id: str
    name: str
    role: str
    parent: str | None
    depth: int
    status: Status = Status.STARTING
    pid: int | None = None
    steps: int = 0
    tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    task: str = ""
    result: str | None = None
    reason: str | None = None
    restarts: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float = field(default_factory=time.time)
    seq: int = 0
    node: str | None = None  # the Ray node it runs on (None: this machine, the local backend)
    # the subtree budget (own spend + all descendants'); the gateway reads these three columns
    budget_tokens: int | None = None
    budget_usd: float | None = None
    budget_override: bool = False  # set by the operator: replaces quotas.agent (quotas.swarm for the root)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # the registry file holds plain strings
        self.budget_override = bool(self.budget_override)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    def public(self) -> dict[str, Any]:
        """The ``ps --json`` view plus the extra facts ``inspect`` shows."""
        return asdict(self)


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


class Registry:
    """Read/write access to the registry file of one run directory."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path, readonly)
        if not readonly:
            self._conn.executescript(_SCHEMA)
            self._add_missing_columns()
        self._seq = self._max_seq()

    def _add_missing_columns(self) -> None:
        """A registry written before a column existed gets it (``up --resume`` of an older run)."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(agents)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._conn.execute(f"ALTER TABLE agents ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for the tables kept beside the agents' (approval requests, inbox, request
        outcomes)."""
        return self._conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every write inside is committed together, or (on an exception) none is."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _max_seq(self) -> int:
        try:
            row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM agents").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0])

    # ------------------------------------------------------------ writing

    def add(self, rec: AgentRecord) -> AgentRecord:
        self._seq += 1
        rec.seq = self._seq
        d = asdict(rec)
        cols = ", ".join(d)
        marks = ", ".join("?" for _ in d)
        self._conn.execute(f"INSERT INTO agents ({cols}) VALUES ({marks})", tuple(d.values()))
        return rec

    def update(self, agent_id: str, **fields: Any) -> None:
        if not fields:
            return
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._conn.execute(f"UPDATE agents SET {sets} WHERE id = ?", (*fields.values(), agent_id))

    def set_meta(self, key: str, value: Any) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def log_event(self, agent_id: str | None, event: str, detail: str = "") -> None:
        self._conn.execute("INSERT INTO events (ts, agent_id, event, detail) VALUES (?, ?, ?, ?)",
                           (time.time(), agent_id, event, detail))

    # ------------------------------------------------------------ reading

    def get(self, agent_id: str) -> AgentRecord | None:
        row = self._conn.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
        return AgentRecord(**dict(row)) if row else None

    def all(self) -> list[AgentRecord]:
        try:
            rows = self._conn.execute("SELECT * FROM agents ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return []
        return [AgentRecord(**dict(r)) for r in rows]

    def updated_since(self, ts: float) -> list[AgentRecord]:
        """Agents whose record changed at or after ``ts`` (time.time()), in registry order."""
        try:
            rows = self._conn.execute("SELECT * FROM agents WHERE updated_at >= ? ORDER BY seq",
                                      (ts,)).fetchall()
        except sqlite3.OperationalError:
            return []
        return [AgentRecord(**dict(r)) for r in rows]

    def children(self, agent_id: str) -> list[AgentRecord]:
        rows = self._conn.execute("SELECT * FROM agents WHERE parent = ? ORDER BY seq", (agent_id,))
        return [AgentRecord(**dict(r)) for r in rows]

    def subtree(self, agent_id: str) -> list[AgentRecord]:
        """The agent and all its descendants, parents before children."""
        out: list[AgentRecord] = []
        root = self.get(agent_id)
        if root is None:
            return out
        queue = [root]
        while queue:
            rec = queue.pop(0)
            out.append(rec)
            queue.extend(self.children(rec.id))
        return out

    def meta(self, key: str, default: Any = None) -> Any:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return default
        return json.loads(row[0]) if row else default

    def events(self, agent_id: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        q = "SELECT * FROM events WHERE seq > ?"
        args: Iterable[Any] = (after,)
        if agent_id:
            q += " AND agent_id = ?"
            args = (after, agent_id)
        try:
            return [dict(r) for r in self._conn.execute(q + " ORDER BY seq", tuple(args))]
        except sqlite3.OperationalError:
            return []


def ps_view(rec: AgentRecord, subtree: tuple[int, float] | None = None) -> dict[str, Any]:
    """The contract fields of ``swarm ps --json`` (plus a few helpful extras).

    ``subtree`` is the agent's (tokens, cost) with all its descendants'
    (:func:`subtree_spend`); without it, the agent's own.
    """
    d = {k: getattr(rec, k) for k in PS_FIELDS}
    d["reason"] = rec.reason
    d["cost_usd"] = round(rec.cost_usd, 6)
    tokens, cost = subtree if subtree is not None else (rec.tokens, rec.cost_usd)
    d["subtree_tokens"] = tokens
    d["subtree_cost_usd"] = round(cost, 6)
    return d


def ps_views(recs: list[AgentRecord]) -> list[dict[str, Any]]:
    """``ps_view`` of every record, with subtree totals."""
    spend = subtree_spend(recs)
    return [ps_view(r, spend[r.id]) for r in recs]


def subtree_spend(recs: list[AgentRecord]) -> dict[str, tuple[int, float]]:
    """Each agent's tokens and cost plus those of all its descendants (records in registry order)."""
    totals = {r.id: [r.tokens, r.cost_usd] for r in recs}
    for r in reversed(recs):  # children come after their parents: add each up once, bottom first
        if r.parent in totals:
            totals[r.parent][0] += totals[r.id][0]
            totals[r.parent][1] += totals[r.id][1]
    return {k: (int(v[0]), float(v[1])) for k, v in totals.items()}


def inspect_view(reg: Any, agent_id: str) -> dict[str, Any] | None:
    """The fields of ``swarm inspect --json``: the record, its subtree's spend, its children, its last 20 events.

    ``reg`` is anything with the registry's ``get``, ``subtree``, ``children`` and ``events``
    (the registry itself, or the supervisor's agent table).
    """
    rec = reg.get(agent_id)
    if rec is None:
        return None
    info = rec.public()
    tokens, cost = subtree_spend(reg.subtree(agent_id))[agent_id]
    info.update(subtree_tokens=tokens, subtree_cost_usd=round(cost, 6))
    info["children"] = [c.id for c in reg.children(agent_id)]
    info["events"] = reg.events(agent_id)[-20:]
    return info
