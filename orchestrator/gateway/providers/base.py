"""What every provider of the gateway is: ``complete(Request) -> Result``.

A provider turns one completion request into text plus the token usage it
counted. It raises a :class:`~swarm_core.errors.ProviderError` (or a
subclass) with a one-line message for anything a person should fix, never a
raw library exception. ``concurrency`` is how many calls it can run at once
(0 = no limit): the gateway queues calls beyond it (``local`` runs one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """One completion request, as the gateway hands it to a provider."""

    agent_id: str
    prompt: str
    commands: tuple[str, ...] = ()
    max_tokens: int = 256
    messages: tuple[dict[str, Any], ...] = ()
    name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    deadline: float = 0.0  # absolute time.time(); 0 = none

    def remaining(self, default: float) -> float:
        """Seconds left before the deadline (``default`` when there is none)."""
        if not self.deadline:
            return default
        return min(default, max(0.0, self.deadline - time.time()))


@dataclass(frozen=True, slots=True)
class Result:
    """A provider's answer and the usage it counted."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class Provider(Protocol):
    """A model provider (replay, record, openai, local)."""

    name: str
    concurrency: int

    def complete(self, req: Request) -> Result: ...

    def close(self) -> None: ...
