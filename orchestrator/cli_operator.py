"""``swarm approvals | approve | deny | budget``: the operator in the loop.

``approvals`` reads the registry (it works while the supervisor is busy or
down); ``approve``, ``deny`` and ``budget`` ask the running supervisor. An
unknown or already decided request, or a budget for an unknown or ended
agent, is one line on stderr and exit status 1; a malformed amount is exit 2.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from orchestrator import runctl
from swarm_core import messages as m
from swarm_core.errors import UsageError


def _run_dir(ctx: click.Context) -> Path:
    return ctx.obj["run_dir"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def approvals(ctx: click.Context, as_json: bool) -> None:
    """List the requests waiting for a person: held commands and exhausted budgets."""
    items = runctl.pending_requests(_run_dir(ctx))
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    if not items:
        click.echo("no request is waiting")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="waiting for approval", title_justify="left")
    for col in ("ID", "AGENT", "KIND", "COMMAND", "ARGS / REASON", "WAITING"):
        table.add_column(col, overflow="fold")
    for a in items:
        what = a["command"] or f"budget of {a.get('budget_of')}"
        table.add_row(a["id"], a["agent"], a["kind"], what, json.dumps(a["args"], ensure_ascii=False)[:80],
                      f"{time.time() - a['since']:.0f}s")
    Console().print(table)


@click.command()
@click.argument("request_id")
@click.option("--note", default="", help="A note the agent's model reads with the command's result.")
@click.pass_context
def approve(ctx: click.Context, request_id: str, note: str) -> None:
    """Let the held command of request REQUEST_ID run."""
    info = runctl.decide_request(_run_dir(ctx), request_id, True, note)
    click.echo(f"approved {request_id} (agent {info.get('agent')})")


@click.command()
@click.argument("request_id")
@click.option("--reason", default=runctl.DENY_REASON, show_default=True,
              help="Told to the model as the command's result.")
@click.pass_context
def deny(ctx: click.Context, request_id: str, reason: str) -> None:
    """Refuse request REQUEST_ID (a budget request: its agent is stopped)."""
    info = runctl.decide_request(_run_dir(ctx), request_id, False, reason)
    click.echo(f"denied {request_id} (agent {info.get('agent')})")


def _amount(text: str | None, option: str, whole: bool) -> float:
    """A positive amount from the command line (0 when not given); UsageError naming the option."""
    if text is None:
        return 0
    kind = "a whole number of tokens" if whole else "a number of dollars"
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise UsageError(f"{option}: expected {kind} above 0, got {text!r}") from None
    if value <= 0 or not math.isfinite(value):
        raise UsageError(f"{option}: expected {kind} above 0, got {text!r}")
    return value


@click.command()
@click.argument("agent_id")
@click.option("--tokens", "tokens", metavar="N", help="The new max_tokens of the agent's subtree.")
@click.option("--usd", "usd", metavar="X", help="The new max_cost_usd of the agent's subtree.")
@click.pass_context
def budget(ctx: click.Context, agent_id: str, tokens: str | None, usd: str | None) -> None:
    """Set AGENT_ID's budget (its own spend and all its descendants'); release the agents waiting for it."""
    if tokens is None and usd is None:
        raise UsageError("give --tokens N, --usd X or both")
    body = m.SetBudget(agent_id, int(_amount(tokens, "--tokens", True)), float(_amount(usd, "--usd", False)))
    info = runctl.ask(_run_dir(ctx), body).info
    released = ", ".join(info.get("released") or []) or "none"
    click.echo(f"budget of {agent_id}: max_tokens {info.get('max_tokens')}, max_cost_usd "
               f"{info.get('max_cost_usd')}; released: {released}")


COMMANDS = (approvals, approve, deny, budget)
