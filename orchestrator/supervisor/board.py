"""The state of the supervisor's helper processes, kept where ``swarm ps`` reads it.

One registry meta entry, ``services``: a mapping name → ``{state, pid,
reason, restarts, since}`` for the LLM gateway, the memory service and the
zygote. ``state`` is ``up``, ``restarting`` (it died and a new process is
coming up), ``given_up`` (it died once more than its restart intensity
allows; ``reason`` says how it ended) or ``stopped``. The supervisor's loop
is the only writer; ps reads it even when the supervisor is gone (and then
checks the pids itself).
"""

from __future__ import annotations

import time
from typing import Any, Callable

UP, RESTARTING, GIVEN_UP, STOPPED = "up", "restarting", "given_up", "stopped"
KEY = "services"


class ServiceBoard:
    """Read-modify-write of the ``services`` meta entry of one agent table."""

    def __init__(self, table: Any, wall: Callable[[], float] = time.time) -> None:
        self.table = table
        self.wall = wall

    def state(self, name: str) -> str | None:
        """The recorded state of ``name`` (None when nothing is recorded)."""
        return (self.table.meta(KEY, {}) or {}).get(name, {}).get("state")

    def set(self, name: str, state: str, *, pid: int | None = None, reason: str = "",
            restarts: int = 0) -> None:
        """Record ``name``'s state (and its pid, the reason, how often it was restarted)."""
        entries = dict(self.table.meta(KEY, {}) or {})
        entries[name] = {"state": state, "pid": pid, "reason": reason, "restarts": restarts,
                         "since": round(self.wall(), 3)}
        self.table.set_meta(KEY, entries)
