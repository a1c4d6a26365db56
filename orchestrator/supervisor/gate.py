"""The broker's policy gate: it runs on the broker thread, once per routed message.

Requests and events of a blocked (ended) agent are refused; the services'
and operators' traffic is never throttled; every other peer passes the
flood check. Keep it cheap: a set lookup, a prefix test, a token bucket.
"""

from __future__ import annotations

import time
from typing import Callable

from bus.protocol import Header, Kind
from orchestrator.supervisor.table import AgentTable
from swarm_core.peers import OPERATOR_PREFIX, SERVICES

_HELD = (Kind.REQUEST, Kind.EVENT)  # replies still flow: a stopped agent may answer a question


class Gate:
    """``gate(header) -> None`` (let it through) or the reason it is refused."""

    def __init__(self, table: AgentTable, flood_check: Callable[[str, float], str | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._flood_check = flood_check
        self._clock = clock

    def __call__(self, header: Header) -> str | None:
        src = header.src
        if src in self._table.blocked and header.kind in _HELD:
            return f"agent {src} was stopped"
        if src in SERVICES or src.startswith(OPERATOR_PREFIX):
            return None
        return self._flood_check(src, self._clock())
