"""Pure policy functions of the supervisor: no sockets, no processes.

``check_spawn`` decides a ``start_agent`` before anything is spawned; depth
comes from the lineage the registry holds, never from the requester.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from orchestrator.config import Limits
from swarm_core.peers import is_reserved_name

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


@dataclass(frozen=True)
class Allow:
    """The request may proceed; ``agent_id``/``depth``/``role`` as decided."""

    agent_id: str
    depth: int
    role: str


@dataclass(frozen=True)
class Deny:
    """The request is refused; ``reason`` is told to the model verbatim."""

    reason: str


@dataclass(frozen=True)
class SpawnState:
    """What the policy needs to know about the swarm at the time of a request."""

    lineage: Sequence[str]  # ancestors of the requester, root first, requester last
    requester_role: str
    can_start: Sequence[str]  # roles the requester may start
    roles: Sequence[str]  # every defined role
    live_agents: int  # agents not in a terminal state
    live_children: int  # the requester's children not in a terminal state
    used_ids: frozenset[str]
    limits: Limits


def allocate_id(name: str, used: frozenset[str] | set[str]) -> str:
    """The name itself if unused, else ``name-2``, ``name-3``, … (never reused)."""
    if name not in used:
        return name
    n = 2
    while f"{name}-{n}" in used:
        n += 1
    return f"{name}-{n}"


def choose_role(name: str, role: str, can_start: Sequence[str], roles: Sequence[str]) -> str | Deny:
    """The role for a new agent: ``role`` if given, else the role named like ``name``."""
    allowed = ", ".join(can_start) or "none"
    chosen = role or (name if name in roles else "")
    if not chosen:
        return Deny(f"no role given and no role is named {name!r}; roles you may start: {allowed}")
    if chosen not in roles:
        return Deny(f"unknown role {chosen!r}; roles you may start: {allowed}")
    if chosen not in can_start:
        return Deny(f"you may not start role {chosen!r}; roles you may start: {allowed}")
    return chosen


def check_spawn(state: SpawnState, name: str, role: str = "") -> Allow | Deny:
    """Decide a start_agent request: depth, counts, role permission, name."""
    if not isinstance(name, str) or not _ID_RE.match(name):
        return Deny(f"invalid agent name {name!r}: use 1-48 letters, digits, '.', '_' or '-'")
    if is_reserved_name(name):
        return Deny(f"the name {name!r} is reserved for the swarm's own processes; choose another")
    chosen = choose_role(name, role, state.can_start, state.roles)
    if isinstance(chosen, Deny):
        return chosen
    depth = len(state.lineage)  # the requester is at len(lineage) - 1
    if depth > state.limits.max_depth:
        return Deny(f"max_depth {state.limits.max_depth} reached: an agent at depth {depth - 1} "
                    "may not start sub-agents; do the work yourself")
    if state.live_agents >= state.limits.max_agents:
        return Deny(f"max_agents {state.limits.max_agents} reached: wait for an agent to finish "
                    "or delete one")
    if state.live_children >= state.limits.max_children:
        return Deny(f"max_children {state.limits.max_children} reached: wait for a sub-agent to "
                    "finish or delete one")
    return Allow(allocate_id(name, state.used_ids), depth, chosen)


def lineage_of(agent_id: str, parents: Mapping[str, str | None]) -> list[str]:
    """Ancestors of ``agent_id`` from the root down, ``agent_id`` last."""
    chain = []
    seen = set()
    cur: str | None = agent_id
    while cur is not None and cur not in seen:
        seen.add(cur)
        chain.append(cur)
        cur = parents.get(cur)
    return list(reversed(chain))
