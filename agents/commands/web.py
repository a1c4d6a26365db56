"""Web tools: ``google`` and ``browse_website``.

The swarm has no search or browsing backend configured (and no network but
package registries), so both commands answer with a clear error observation
instead of pretending; the model should use the workspace, memory, or other
agents instead.
"""

from __future__ import annotations

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError

_HINT = ("Use the files in the workspace, your memory (memory_search) or other agents instead "
         "of the web.")


@implements("google")
def google(ctx: CommandContext, input: str) -> str:  # noqa: A002 - the seed's argument name
    """Always an error: no search backend is configured."""
    raise CommandError(f"google is not available: no web search backend is configured for this swarm. {_HINT}")


@implements("browse_website")
def browse_website(ctx: CommandContext, url: str, question: str) -> str:
    """Always an error: no browsing backend is configured."""
    raise CommandError(f"browse_website is not available: no web browsing backend is configured for this "
                       f"swarm, so {url!r} cannot be fetched. {_HINT}")
