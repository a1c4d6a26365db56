"""Read the swarm's spans back from ``RUN_DIR/traces.jsonl`` (the CLI and the dashboard).

Spans are the ``swarm trace --json`` objects. :func:`subtree` keeps the
spans under an agent's ``start_agent`` span (its own and its sub-agents'),
:func:`usage` folds model-call spans into per-minute token and cost buckets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

TRACE_FILE = "traces.jsonl"
MODEL_OP = "chat"


def read_spans(run_dir: Path) -> list[dict[str, Any]]:
    """Every span written so far, by start time (a torn last line is skipped)."""
    out: list[dict[str, Any]] = []
    try:
        with open(Path(run_dir) / TRACE_FILE, "rb") as fh:
            for line in fh:
                try:
                    span = json.loads(line)
                except ValueError:
                    continue
                if isinstance(span, dict) and isinstance(span.get("span_id"), str):
                    out.append(span)
    except FileNotFoundError:
        return []
    out.sort(key=lambda s: s.get("start_ns") or 0)
    return out


def start_span_of(spans: Iterable[dict[str, Any]], agent_id: str) -> dict[str, Any] | None:
    """The ``start_agent`` span that spawned ``agent_id`` (the newest, after a restart)."""
    found = None
    for s in spans:
        if s.get("name") == f"start_agent {agent_id}" and s.get("attributes", {}).get("swarm.child.id") == agent_id:
            found = s
    return found


def subtree(spans: list[dict[str, Any]], agent_id: str) -> list[dict[str, Any]]:
    """The agent's ``start_agent`` span and every span that descends from it (by parent links).

    Spans of the agent whose parent is not (yet) in the file are kept too, so
    a partly written trace still shows the agent's own work.
    """
    root = start_span_of(spans, agent_id)
    keep: set[str] = {root["span_id"]} if root else set()
    out = [root] if root else []
    for s in spans:  # by start time: a parent is seen before its children
        if s is root:
            continue
        if s.get("parent_span_id") in keep or s.get("agent") == agent_id:
            keep.add(s["span_id"])
            out.append(s)
    return out


def usage(spans: Iterable[dict[str, Any]], agent_id: str | None = None) -> list[dict[str, Any]]:
    """Per-minute ``{minute, tokens, cost_usd, calls}`` of model calls (of one agent, or all)."""
    buckets: dict[int, dict[str, Any]] = {}
    for s in spans:
        attrs = s.get("attributes") or {}
        if attrs.get("gen_ai.operation.name") != MODEL_OP or (agent_id and s.get("agent") != agent_id):
            continue
        minute = int((s.get("end_ns") or 0) // 60_000_000_000) * 60
        b = buckets.setdefault(minute, {"minute": minute, "tokens": 0, "cost_usd": 0.0, "calls": 0})
        b["tokens"] += int(attrs.get("gen_ai.usage.input_tokens", 0)) + int(attrs.get("gen_ai.usage.output_tokens", 0))
        b["cost_usd"] += float(attrs.get("swarm.cost_usd", 0.0))
        b["calls"] += 1
    if not buckets:
        return []
    first, last = min(buckets), max(buckets)
    return [buckets.get(m, {"minute": m, "tokens": 0, "cost_usd": 0.0, "calls": 0})
            for m in range(first, last + 60, 60)]
