"""What every provider of the gateway is: ``complete(Request) -> Result``.

A provider turns one completion request into text plus the token usage it
counted, and says beforehand the most a request may count
(``usage_bound(req) -> (prompt tokens, completion tokens)``): the gateway
reserves that against budgets, so the bound must hold (:func:`default_bound`
holds for any tokenizer whose tokens are at least one byte). It raises a :class:`~swarm_core.errors.ProviderError` (or a
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

    def text(self) -> str:
        """The messages' contents, joined (for a request that has no prompt)."""
        return " ".join(str(x.get("content", "")) for x in self.messages)

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

    def usage_bound(self, req: Request) -> tuple[int, int]: ...

    def close(self) -> None: ...


MESSAGE_OVERHEAD = 8  # tokens a chat template may add around one message
REPLY_OVERHEAD = 16  # ... and around the whole conversation


def text_bound(text: str) -> int:
    """At most this many tokens: a token is at least one byte of the UTF-8 text."""
    return len(text.encode("utf-8", "surrogatepass"))


def default_bound(req: Request, extra: str = "") -> tuple[int, int]:
    """The most ``req`` may count on a real model: every byte of what is sent, plus ``max_tokens``."""
    if req.messages:
        prompt = sum(text_bound(str(m.get("content", ""))) + MESSAGE_OVERHEAD for m in req.messages)
    else:
        prompt = text_bound(req.prompt) + 2 * MESSAGE_OVERHEAD
    return prompt + text_bound(extra) + REPLY_OVERHEAD, req.max_tokens


def usage_bound(provider: Any, req: Request) -> tuple[int, int]:
    """``provider``'s bound for ``req``, or :func:`default_bound` for a provider that gives none."""
    bound = getattr(provider, "usage_bound", None)
    return bound(req) if bound is not None else default_bound(req)
