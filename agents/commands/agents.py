"""Commands that manage other agents: start, message, list, delete (seed command set)."""

from __future__ import annotations

import json

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError


def _text(value: object, what: str, limit: int = 4000) -> str:
    if not isinstance(value, str):
        raise CommandError(f"{what} must be a string")
    value = value.strip()
    if not value:
        raise CommandError(f"{what} must not be empty")
    if len(value) > limit:
        raise CommandError(f"{what} is longer than {limit} characters")
    return value


@implements("start_agent")
def start_agent(ctx: CommandContext, name: str, task: str, prompt: str = "", role: str = "",
                budget: object = "") -> str:
    """Ask the supervisor for a sub-agent; its result arrives later in the inbox.

    ``budget``: the most tokens the sub-agent and its own sub-agents may use
    together, taken from this agent's budget (the supervisor refuses more
    than is left).
    """
    name = _text(name, "name", 48)
    task = _text(task, "task")
    if not isinstance(prompt, str) or not isinstance(role, str):
        raise CommandError("prompt and role must be strings")
    return ctx.ports.start_agent(name, task, prompt, role.strip(), _budget(budget))


def _budget(value: object) -> int:
    """A budget in tokens from the model's answer ("" or absent: none)."""
    if value in ("", None):
        return 0
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) <= 0:
        raise CommandError(f"budget must be a whole number of tokens above 0, got {value!r}")
    return int(text)


@implements("message_agent")
def message_agent(ctx: CommandContext, key: str, message: str) -> str:
    """Send a message to an agent and wait (bounded) for its reply."""
    return ctx.ports.message_agent(_text(key, "key", 64), _text(message, "message"))


@implements("list_agents")
def list_agents(ctx: CommandContext) -> str:
    """List the sub-agents this agent started, with their status."""
    agents = ctx.ports.list_agents()
    if not agents:
        return "you have no sub-agents"
    rows = [{k: a.get(k) for k in ("id", "role", "status", "steps", "reason")} for a in agents]
    return json.dumps(rows, ensure_ascii=False)


@implements("delete_agent")
def delete_agent(ctx: CommandContext, key: str) -> str:
    """Stop a sub-agent and its whole subtree."""
    return ctx.ports.delete_agent(_text(key, "key", 64))
