"""What a command implementation is given and may return, and the ports it may call.

A command takes a :class:`CommandContext` and its arguments as keywords, and
returns the observation text for the model, raises :class:`CommandError` (an
error observation) or returns :class:`Finished` (``task_complete``). It
reaches the world outside its agent only through ``ctx.ports``
(:class:`AgentPorts`, implemented over the bus by ``agents.ports.BusPorts``)
and ``ctx.workspace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Protocol

from swarm_core.catalog import Port


class CommandError(Exception):
    """A command failed in a way the model should hear about."""


@dataclass(frozen=True)
class Finished:
    """Returned by ``task_complete``: the agent's final result."""

    result: str


class AgentPorts(Protocol):
    """What commands may ask of the world outside the agent (the bus adapter)."""

    def start_agent(self, name: str, task: str, prompt: str, role: str, budget: int = 0) -> str: ...
    def message_agent(self, key: str, message: str) -> str: ...
    def list_agents(self) -> list[dict[str, Any]]: ...
    def delete_agent(self, key: str) -> str: ...
    def memory_add(self, text: str) -> int: ...
    def memory_search(self, query: str, k: int) -> list[dict[str, Any]]: ...
    def keep_alive(self, seconds: float) -> None: ...
    def wait_for_news(self, seconds: float) -> bool: ...


# which AgentPorts methods each catalog port stands for; the workspace is ctx.workspace, not a port call
PORT_METHODS: Mapping[Port, tuple[str, ...]] = MappingProxyType({
    Port.SUPERVISOR: ("start_agent", "list_agents", "delete_agent"),
    Port.PEERS: ("message_agent",),
    Port.MEMORY: ("memory_add", "memory_search"),
    Port.INBOX: ("wait_for_news",),
    Port.HEARTBEAT: ("keep_alive",),
    Port.WORKSPACE: (),
})


@dataclass
class CommandContext:
    """Everything a command may use: who runs it, where, and through which ports."""

    agent_id: str
    role: str
    ports: Any  # AgentPorts
    workspace: Any = None  # agents.workspace.Workspace
    settings: dict[str, Any] = field(default_factory=dict)
    log: Any = None
