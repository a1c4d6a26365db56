"""Message bodies: Control of the swarm: stop, freeze, kill, inspect, down, and published lifecycle events.

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class Stop:
    """Ask a process to stop cleanly, with the reason it is recorded under."""

    TYPE = "stop"
    reason: str = "stopped"


@message
@dataclass(frozen=True, slots=True)
class Freeze:
    """Freeze (``frozen=True``) or thaw an agent, or every agent when empty."""

    TYPE = "freeze"
    agent_id: str = ""
    frozen: bool = True
    reason: str = "operator"


@message
@dataclass(frozen=True, slots=True)
class ServiceRestarted:
    """Supervisor → agents: ``service`` died and was started again; a request to it may be lost."""

    TYPE = "service_restarted"
    service: str


@message
@dataclass(frozen=True, slots=True)
class KillAll:
    """Stop every agent (services keep running)."""

    TYPE = "kill_all"
    reason: str = "kill_all"


@message
@dataclass(frozen=True, slots=True)
class OperatorMessage:
    """``swarm send``: a person's message for an agent's inbox."""

    TYPE = "operator_message"
    agent_id: str
    text: str
    request_id: str = ""  # the same for a retry: the message is kept (and delivered) once


@message
@dataclass(frozen=True, slots=True)
class Inspect:
    """Ask the supervisor for everything it knows about one agent."""

    TYPE = "inspect"
    agent_id: str


@message
@dataclass(frozen=True, slots=True)
class InspectReply:
    """Reply to Inspect."""

    TYPE = "inspect_reply"
    info: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class Down:
    """Stop everything: agents, services, the supervisor itself."""

    TYPE = "down"
    reason: str = "down"


@message
@dataclass(frozen=True, slots=True)
class SwarmStatus:
    """Ask the supervisor for the swarm's state (root status, result)."""

    TYPE = "swarm_status"


@message
@dataclass(frozen=True, slots=True)
class SwarmState:
    """Reply to SwarmStatus."""

    TYPE = "swarm_state"
    info: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Published event: an agent changed state (spawned, done, killed, crashed...)."""

    TYPE = "lifecycle"
    agent_id: str
    event: str
    status: str
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)
