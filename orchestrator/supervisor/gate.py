"""The broker's policy gate: it runs on the broker thread, once per routed message.

In order: the authorization table (``swarm_core.authz.check_header``: who
may send this type to whom, an agent's messages only within its subtree;
deny by default), then the agents the supervisor stopped (their requests
and events are refused; replies still flow), then the flood check (agents
only: the services and operator sessions are never throttled). The
sender's kind comes from its credential (the broker authenticated it).
Keep it cheap: dict lookups, a short walk up the agent tree, a token bucket.
"""

from __future__ import annotations

import time
from typing import Callable

from bus.protocol import Header, Kind
from orchestrator.supervisor.table import AgentTable
from swarm_core import authz
from swarm_core.peers import PeerKind

_HELD = (Kind.REQUEST, Kind.EVENT)  # replies still flow: a stopped agent may answer a question
_TRAVEL = tuple(k.name.lower() for k in Kind)  # by Kind value: request, reply, event, error, heartbeat


class Gate:
    """``gate(header, sender_kind) -> None`` (let it through) or the reason it is refused."""

    def __init__(self, table: AgentTable, flood_check: Callable[[str, float], str | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._flood_check = flood_check
        self._clock = clock

    def __call__(self, header: Header, sender_kind: str) -> str | None:
        src = header.src
        reason = authz.check_header(_TRAVEL[header.kind], header.type, src, sender_kind, header.dst,
                                    self._table.is_below)
        if reason is not None:
            return reason
        if src in self._table.blocked and header.kind in _HELD:
            return f"agent {src} was stopped"
        if sender_kind != PeerKind.AGENT:
            return None
        return self._flood_check(src, self._clock())
