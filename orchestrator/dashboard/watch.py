"""Changes of one run directory's registry, read incrementally (no full-table scans per tick).

:class:`RegistryWatch` keeps the last view of every agent it has seen and,
on each :meth:`RegistryWatch.poll`, reads only the agent rows updated since
the newest change it saw and the event rows after the last one it saw, and
the (short) list of pending approval requests, reported when it changed. A
new swarm in the same run directory (``swarm up`` replaces the registry
file) is noticed by the file's identity and reported as a reset.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.runctl import REGISTRY
from orchestrator.supervisor.approvals import ApprovalBook
from orchestrator.supervisor.registry import Registry, ps_view

# rows are re-read from a little before the newest change seen: two writes in
# the same clock tick must not hide each other; the cache drops repeats
_OVERLAP_S = 0.5


@dataclass
class Changes:
    """What one poll found."""

    reset: bool = False  # a different registry file (a new swarm) or none any more
    agents: list[dict[str, Any]] = field(default_factory=list)  # changed agents, ps --json fields
    events: list[dict[str, Any]] = field(default_factory=list)  # new registry event rows
    meta: dict[str, Any] = field(default_factory=dict)  # state, name, pub_endpoint when they changed
    approvals: list[dict[str, Any]] | None = None  # every pending request, when that list changed


class RegistryWatch:
    """Incremental reader of ``RUN_DIR/registry.db`` (read-only)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / REGISTRY
        self._reg: Registry | None = None
        self._ident: tuple[int, int] | None = None
        self._since = 0.0
        self._event_seq = 0
        self._views: dict[str, dict[str, Any]] = {}
        self._meta: dict[str, Any] = {}
        self._approvals: list[dict[str, Any]] = []

    def poll(self) -> Changes:
        """The changes since the last poll (everything, with ``reset``, after a new swarm)."""
        out = Changes()
        ident = _identity(self.path)
        if ident != self._ident:
            self._reopen(ident)
            out.reset = True
        if self._reg is None:
            return out
        try:
            out.agents = self._changed_agents()
            out.events = self._new_events()
            out.meta = self._changed_meta()
            out.approvals = self._changed_approvals()
        except sqlite3.Error:
            self._close()  # a registry being replaced under us: the next poll reopens it
            self._ident = None
        return out

    def views(self) -> list[dict[str, Any]]:
        """The last view of every agent, in registry order."""
        return list(self._views.values())

    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def approvals(self) -> list[dict[str, Any]]:
        """The pending approval requests as last read (``swarm approvals --json`` items)."""
        return list(self._approvals)

    def close(self) -> None:
        self._close()

    # ------------------------------------------------------------ internals

    def _reopen(self, ident: tuple[int, int] | None) -> None:
        self._close()
        self._ident, self._since, self._event_seq = ident, 0.0, 0
        self._views, self._meta, self._approvals = {}, {}, []
        if ident is not None:
            try:
                self._reg = Registry(self.path, readonly=True)
            except sqlite3.Error:
                self._ident = None

    def _close(self) -> None:
        if self._reg is not None:
            self._reg.close()
            self._reg = None

    def _changed_agents(self) -> list[dict[str, Any]]:
        if self._reg is None:
            return []
        changed = []
        for rec in self._reg.updated_since(self._since - _OVERLAP_S):
            self._since = max(self._since, rec.updated_at)
            view = ps_view(rec)
            if self._views.get(rec.id) != view:
                self._views[rec.id] = view
                changed.append(view)
        return changed

    def _new_events(self) -> list[dict[str, Any]]:
        if self._reg is None:
            return []
        rows = self._reg.events(after=self._event_seq)
        if rows:
            self._event_seq = rows[-1]["seq"]
        return rows

    def _changed_meta(self) -> dict[str, Any]:
        if self._reg is None:
            return {}
        changed = {}
        for key in ("name", "state", "pub_endpoint", "supervisor_pid"):
            value = self._reg.meta(key)
            if self._meta.get(key) != value:
                self._meta[key] = changed[key] = value
        return changed


    def _changed_approvals(self) -> list[dict[str, Any]] | None:
        # the pending list is short (people decide it): reading it whole is cheaper than tracking changes
        if self._reg is None:
            return None
        pending = [a.listing() for a in ApprovalBook(self._reg.connection, readonly=True).pending()]
        if pending == self._approvals:
            return None
        self._approvals = pending
        return pending


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's (device, inode), or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
