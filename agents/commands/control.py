"""Commands that control the agent's own loop: finish, or wait."""

from __future__ import annotations

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError, Finished


@implements("task_complete")
def task_complete(ctx: CommandContext, reason: str) -> Finished:
    """Finish the task; ``reason`` is the result delivered to the parent."""
    if not isinstance(reason, str) or not reason.strip():
        raise CommandError("reason must be a non-empty string: it is your result")
    return Finished(reason.strip())


@implements("do_nothing")
def do_nothing(ctx: CommandContext) -> str:
    """Wait (bounded) until something arrives in the inbox; no model call meanwhile."""
    wait = float(ctx.settings.get("idle_wait_seconds", 30.0))
    if ctx.ports.wait_for_news(wait):
        return "No action performed. New messages are in your INBOX."
    return f"No action performed. Nothing arrived within {wait:g}s."
