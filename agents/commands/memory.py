"""Long-term memory commands: ``memory_add`` and ``memory_search``.

They go through ``ctx.ports`` (the agent's bus adapter, which talks to the
memory service): ``memory_add(text) -> id`` stores in the swarm's shared
memory, ``memory_search(query, k) -> hits`` searches shared plus the agent's
private namespace. Bad arguments and service errors become error
observations (CommandError); nothing here imports numpy or faiss.
"""

from __future__ import annotations

from typing import Any

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError
from swarm_core.errors import SwarmError

MAX_K = 100
SNIPPET = 300  # characters of each hit shown to the model


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CommandError(f"{what} must be a non-empty string")
    return value.strip()


def _k(value: Any) -> int:
    """k as an int in 1..MAX_K; small models often send numbers as strings."""
    if isinstance(value, bool):
        raise CommandError(f"k must be a whole number from 1 to {MAX_K}, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise CommandError(f"k must be a whole number from 1 to {MAX_K}, got {value!r}")
    return value


@implements("memory_add")
def memory_add(ctx: CommandContext, text: str) -> str:
    """Store ``text`` in long-term memory; the observation gives its id."""
    body = _text(text, "text")
    try:
        item_id = ctx.ports.memory_add(body)
    except SwarmError as exc:
        raise CommandError(f"memory: {exc}") from None
    return f"Remembered as memory #{item_id}."


@implements("memory_search")
def memory_search(ctx: CommandContext, query: str, k: Any = 5) -> str:
    """The ``k`` memories closest in meaning to ``query``, best first, one per line."""
    q = _text(query, "query")
    n = _k(k)
    try:
        hits = ctx.ports.memory_search(q, n)
    except SwarmError as exc:
        raise CommandError(f"memory: {exc}") from None
    if not hits:
        return f"No memories match {q!r}."
    lines = [f"{len(hits)} memories for {q!r}, best first:"]
    for rank, hit in enumerate(hits, 1):
        text = " ".join(str(hit.get("text", "")).split())
        if len(text) > SNIPPET:
            text = text[:SNIPPET] + "..."
        lines.append(f"{rank}. (#{hit.get('id')}, score {float(hit.get('score', 0.0)):.2f}) {text}")
    return "\n".join(lines)
