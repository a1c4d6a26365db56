"""Peer ids with a meaning on the bus, the kinds of peer a swarm has, and which names each kind may use.

A peer's *kind* comes from its credential (issued by the supervisor, checked
by the broker at the handshake and on every message). The broker lets a
credential speak only under names its kind may use (:func:`may_use`): an
agent or a service under exactly the id it was issued for, an operator
session under a ``cli-`` name of its choosing. Because of that rule, and
only because of it, the kind of an *authenticated* peer id can be read back
from the id (:func:`kind_of`): a ``cli-`` id was admitted with an operator
credential, ``gateway`` with the gateway's, any other id with an agent's
(agent names may never take a service's id or the operator prefix).
"""

from __future__ import annotations

from enum import StrEnum

SUPERVISOR = "supervisor"
GATEWAY = "gateway"
MEMORY = "memory"
OPERATOR = "operator"  # the operator credential's principal; its sessions use cli-... names
BROKER = "broker"  # the destination of heartbeats, Bye and Ping
BROADCAST = "*"  # the destination of published events

SERVICES = frozenset({SUPERVISOR, GATEWAY, MEMORY})
# an agent may never be named like these (it would receive their traffic or take their credential)
RESERVED_IDS = SERVICES | {BROKER, OPERATOR}
OPERATOR_PREFIX = "cli-"


class PeerKind(StrEnum):
    """Who a peer is, as far as authorization cares (from its credential, never from its name)."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    GATEWAY = "gateway"
    MEMORY = "memory"
    AGENT = "agent"


_SERVICE_KINDS = {SUPERVISOR: PeerKind.SUPERVISOR, GATEWAY: PeerKind.GATEWAY, MEMORY: PeerKind.MEMORY}


def is_reserved_name(name: str) -> bool:
    """Whether an agent may not take ``name`` (a service's id, the operator's, or the operator prefix)."""
    return name in RESERVED_IDS or name.lower().startswith(OPERATOR_PREFIX)


def kind_of(peer_id: str) -> PeerKind:
    """The kind of an authenticated peer id (see the module docstring for why this is sound)."""
    service = _SERVICE_KINDS.get(peer_id)
    if service is not None:
        return service
    if peer_id.startswith(OPERATOR_PREFIX):
        return PeerKind.OPERATOR
    return PeerKind.AGENT


def may_use(kind: str, principal: str, name: str) -> str | None:
    """Why a credential of ``kind`` issued for ``principal`` may not speak as ``name`` (None: it may)."""
    if not name or name in (BROKER, BROADCAST):
        return f"{name!r} is not a peer id"
    if kind == PeerKind.OPERATOR:
        if not name.startswith(OPERATOR_PREFIX) or len(name) == len(OPERATOR_PREFIX):
            return f"an operator session must use a {OPERATOR_PREFIX}... id, not {name!r}"
        return None
    if name != principal:
        return f"the credential of {principal!r} may not speak as {name!r}"
    if kind_of(name) != kind:
        return f"a {kind} credential may not use the id {name!r}"
    return None
