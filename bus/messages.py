"""The bus's own message bodies: heartbeats, errors, acknowledgements, peer events, ping.

Domain messages (agents, supervisor, gateway, memory) live in
``swarm_core.messages``; the bus carries them without knowing them.
Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm_core.errors import SwarmError
from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Liveness signal between a peer and the broker (kind HEARTBEAT).

    The broker's carry its incarnation (``broker``, random per broker
    start): a peer that sees it change knows its pending requests went to a
    broker that is gone.
    """

    TYPE = "heartbeat"
    broker: str = ""


@message
@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error crossing the wire as data: rebuilt with errors.from_wire."""

    TYPE = "error"
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, err: SwarmError) -> "ErrorReply":
        """The reply carrying ``err``; detail values that are not plain scalars travel as text."""
        code, message, details = err.to_wire()
        safe = {str(k): v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                for k, v in details.items()}
        return cls(code, message, safe)


@message
@dataclass(frozen=True, slots=True)
class Ok:
    """A generic positive acknowledgement with optional facts."""

    TYPE = "ok"
    info: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class Bye:
    """A peer leaving cleanly (sent to the broker before closing)."""

    TYPE = "bye"


@message
@dataclass(frozen=True, slots=True)
class PeerEvent:
    """Published by the broker: a peer joined or left (``reason``: bye, dead)."""

    TYPE = "peer_event"
    event: str
    peer: str
    reason: str = ""


@message
@dataclass(frozen=True, slots=True)
class Ping:
    """Ask a peer to answer with Pong (benchmarks, health checks)."""

    TYPE = "ping"
    payload: bytes = b""


@message
@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to Ping carrying the same payload."""

    TYPE = "pong"
    payload: bytes = b""
