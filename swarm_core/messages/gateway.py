"""Message bodies: Agent ↔ gateway (model calls) and gateway → supervisor (usage, breaker).

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class Complete:
    """An agent asks the gateway for one model completion."""

    TYPE = "complete"
    agent_id: str
    prompt: str
    commands: list[str]
    max_tokens: int = 256
    messages: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""  # the name given to start_agent (replay cassettes are keyed by it)
    context: dict[str, Any] = field(default_factory=dict)  # structured prompt parts (local model)
    call_id: str = ""  # the same for a retry of this call: the gateway counts it once


@message
@dataclass(frozen=True, slots=True)
class Completion:
    """The gateway's answer: text plus the usage counted from the provider."""

    TYPE = "completion"
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    cost_usd: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class Usage:
    """Gateway → supervisor: an agent's usage and gateway-side status."""

    TYPE = "usage"
    agent_id: str
    tokens: int
    requests: int
    cost_usd: float
    status: str = ""  # throttled | waiting | running | ""
    stop_reason: str = ""  # set when the gateway wants the agent stopped


@message
@dataclass(frozen=True, slots=True)
class BreakerTripped:
    """Gateway → supervisor: risky words in consecutive outputs; the agent's calls are now held."""

    TYPE = "breaker_tripped"
    agent_id: str
    words: list[str]
    streak: int


@message
@dataclass(frozen=True, slots=True)
class Embed:
    """Ask the gateway's provider for embeddings of texts."""

    TYPE = "embed"
    texts: list[str]


@message
@dataclass(frozen=True, slots=True)
class Embeddings:
    """Reply to Embed: one vector per text."""

    TYPE = "embeddings"
    vectors: list[list[float]]
