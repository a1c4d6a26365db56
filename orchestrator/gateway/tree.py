"""The agent tree and its budgets, read from the supervisor's registry (read-only).

The supervisor writes an agent's record (parent, budget) before it starts
the agent, so the first call of any agent finds it. Nodes are kept once
read; :meth:`RegistryTree.forget` drops them when a budget may have changed
(the supervisor's ``BudgetChanged``, or before a call is refused). The
gateway reads these columns of the registry's ``agents`` table: ``id``,
``parent``, ``budget_tokens``, ``budget_usd``, ``budget_override``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable

from orchestrator.gateway.spend import Limit, Node

_QUERY = "SELECT parent, budget_tokens, budget_usd, budget_override FROM agents WHERE id = ?"


class RegistryTree:
    """:class:`~orchestrator.gateway.spend.Tree` over ``registry.db`` (no file: no tree, no budgets)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._nodes: dict[str, Node] = {}
        self.reads = 0  # registry reads so far (a test counts them)

    def node(self, agent: str) -> Node:
        node = self._nodes.get(agent)
        if node is None:
            node = self._read(agent)
            if node is not None:
                self._nodes[agent] = node
            else:
                node = Node(agent)  # the registry could not be read now: ask again next time
        return node

    def forget(self, agents: Iterable[str]) -> None:
        for agent in agents:
            self._nodes.pop(agent, None)

    def _read(self, agent: str) -> Node | None:
        conn = self._connect()
        if conn is None:
            return Node(agent)
        self.reads += 1
        try:
            row = conn.execute(_QUERY, (agent,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return Node(agent)
        parent, tokens, usd, override = row
        budget = Limit(tokens, usd) if tokens is not None or usd is not None else None
        return Node(agent, parent, budget, bool(override))

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5,
                                         check_same_thread=False)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
