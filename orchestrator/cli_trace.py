"""``swarm trace [ID] [--json]``: the run's span tree (everything, or what descends from agent ID).

``--json`` prints a list of ``{trace_id, span_id, parent_span_id, name, agent,
start_ns, end_ns, attributes}`` by start time (a contract); model-call spans
carry ``gen_ai.usage.input_tokens`` and ``gen_ai.usage.output_tokens``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from swarm_core.errors import NotFound, NotRunning

_SHOWN_ATTRS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "swarm.reason", "swarm.outcome",
                "error.type")


@click.command()
@click.argument("agent_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of spans.")
@click.pass_context
def trace(ctx: click.Context, agent_id: str | None, as_json: bool) -> None:
    """Show the run's trace: every span, or the spans of agent ID and its sub-agents."""
    from orchestrator.tracing.store import TRACE_FILE, read_spans, subtree

    run_dir: Path = ctx.find_root().obj["run_dir"]
    if not (run_dir / TRACE_FILE).exists() and not (run_dir / "registry.db").exists():
        raise NotRunning(f"no swarm in {run_dir}; start one with: swarm up CONFIG")
    spans = read_spans(run_dir)
    if agent_id:
        spans = subtree(spans, agent_id)
        if not spans:
            raise NotFound(f"no spans of agent {agent_id!r} in {run_dir / TRACE_FILE}")
    if as_json:
        click.echo(json.dumps(spans, ensure_ascii=False))
        return
    for line in tree_lines(spans):
        click.echo(line)


def tree_lines(spans: list[dict[str, Any]]) -> list[str]:
    """The spans as an indented tree (children under their parent, by start time)."""
    ids = {s["span_id"] for s in spans}
    kids: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s.get("parent_span_id")
        kids.setdefault(parent if parent in ids else None, []).append(s)
    t0 = min((s["start_ns"] for s in spans), default=0)
    out: list[str] = []
    stack = [(s, 0) for s in reversed(kids.get(None, []))]
    while stack:
        s, depth = stack.pop()
        dur_ms = ((s.get("end_ns") or s["start_ns"]) - s["start_ns"]) / 1e6
        attrs = s.get("attributes") or {}
        extra = " ".join(f"{k.rsplit('.', 1)[-1]}={attrs[k]}" for k in _SHOWN_ATTRS if k in attrs)
        out.append(f"{'  ' * depth}{s['name']}  [{s['agent']}]  +{(s['start_ns'] - t0) / 1e6:.1f}ms "
                   f"{dur_ms:.1f}ms {extra}".rstrip())
        stack.extend((c, depth + 1) for c in reversed(kids.get(s["span_id"], [])))
    return out
