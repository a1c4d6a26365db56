"""``swarm memory``: add to, search and count the swarm's long-term memory.

Contract: ``swarm memory search QUERY -k N --json`` prints a JSON list, best
first, of objects with at least ``id``, ``score``, ``text`` (also
``namespace`` and ``metadata``). Every subcommand talks to the memory
service of the swarm in ``ctx.obj["run_dir"]`` over its bus; an error is one
line on stderr and the exit code of its SwarmError (no swarm running: 4,
bad input: 2, no reply in time: 3).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import click

from swarm_core.errors import InvalidRequest, SwarmError

MAX_K = 100


def _run_dir(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    run_dir = obj.get("run_dir") if isinstance(obj, dict) else None
    return Path(run_dir or os.environ.get("SWARM_RUN_DIR") or ".swarm")


def _call(ctx: click.Context, timeout: float, fn: Callable[[Any], Any]) -> Any:
    """Connect to the run's bus, run ``fn(memory_client)``, close; errors exit with one line."""
    from memory.client import MemoryClient
    from orchestrator import runctl

    run_dir = _run_dir(ctx).resolve()
    client = None
    try:
        client = runctl.bus_client(run_dir)
        return fn(MemoryClient(client, timeout=timeout))
    except SwarmError as err:
        click.echo(f"swarm memory {ctx.info_name}: {err}", err=True)
        ctx.exit(err.exit_code)
    finally:
        if client is not None:
            client.close()


def _timeout_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--timeout", type=float, default=30.0, show_default=True,
                        help="Seconds to wait for the memory service.")(fn)


@click.group("memory")
def memory() -> None:
    """Add to, search and count the swarm's long-term memory."""


@memory.command("add")
@click.argument("text")
@click.option("--namespace", "-n", default="shared", show_default=True,
              help="'shared' or 'agent:<id>' (an agent's private memory).")
@click.option("--json", "as_json", is_flag=True, help="Print the new item as JSON.")
@_timeout_option
@click.pass_context
def add(ctx: click.Context, text: str, namespace: str, as_json: bool, timeout: float) -> None:
    """Store TEXT in memory and print its id."""
    ids = _call(ctx, timeout, lambda mc: mc.add([text], namespace=namespace,
                                                metadata=[{"source": "cli"}]))
    if as_json:
        click.echo(json.dumps({"id": ids[0], "namespace": namespace}))
    else:
        click.echo(f"added memory {ids[0]} to {namespace}")


@memory.command("search")
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help=f"How many hits (1..{MAX_K}).")
@click.option("--namespace", "-n", "namespaces", multiple=True,
              help="Namespace to search (repeatable); default: shared.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, best first.")
@_timeout_option
@click.pass_context
def search(ctx: click.Context, query: str, k: int, namespaces: tuple[str, ...], as_json: bool,
           timeout: float) -> None:
    """Print the memories closest in meaning to QUERY, best first."""
    if not 1 <= k <= MAX_K:
        err = InvalidRequest(f"k must be an integer from 1 to {MAX_K}, got {k}")
        click.echo(f"swarm memory search: {err}", err=True)
        ctx.exit(err.exit_code)
    hits = _call(ctx, timeout, lambda mc: mc.search(query, k=k, namespaces=list(namespaces) or ["shared"]))
    if as_json:
        click.echo(json.dumps(hits, ensure_ascii=False))
        return
    if not hits:
        click.echo("no memories match")
    for rank, h in enumerate(hits, 1):
        text = " ".join(str(h["text"]).split())
        click.echo(f"{rank:3d}. {h['score']:.3f}  [{h['namespace']} #{h['id']}]  "
                   f"{text[:200]}{'...' if len(text) > 200 else ''}")


@memory.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@_timeout_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """Print how many memories each namespace holds, and the embedder."""
    st = _call(ctx, timeout, lambda mc: mc.stats())
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False))
        return
    click.echo(f"embedder {st.get('embedder')} ({st.get('dim')} dims), {st.get('items')} items")
    for name, count in (st.get("namespaces") or {}).items():
        click.echo(f"  {name}: {count}")
