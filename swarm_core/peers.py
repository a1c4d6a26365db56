"""Peer ids with a meaning on the bus, and the kinds of peer a swarm has."""

from __future__ import annotations

from enum import StrEnum

SUPERVISOR = "supervisor"
GATEWAY = "gateway"
MEMORY = "memory"
BROKER = "broker"  # the destination of heartbeats, Bye and Ping
BROADCAST = "*"  # the destination of published events

SERVICES = frozenset({SUPERVISOR, GATEWAY, MEMORY})
# an agent may never be named like these (it would receive their traffic)
RESERVED_IDS = SERVICES | {BROKER}
OPERATOR_PREFIX = "cli-"


class PeerKind(StrEnum):
    """Who a peer is, as far as authorization cares."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    GATEWAY = "gateway"
    MEMORY = "memory"
    AGENT = "agent"


def is_reserved_name(name: str) -> bool:
    """Whether an agent may not take ``name`` (a service's id or the operator prefix)."""
    return name in RESERVED_IDS or name.lower().startswith(OPERATOR_PREFIX)
