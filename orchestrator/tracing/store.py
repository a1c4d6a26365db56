"""Read the swarm's spans back from ``RUN_DIR/traces.jsonl`` (the CLI and the dashboard).

Spans are the ``swarm trace --json`` objects. :func:`subtree` keeps the
spans under an agent's ``start_agent`` span (its own and its sub-agents'),
:func:`usage` folds model-call spans into token and cost buckets over time.
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


BUCKETS_S = (5, 10, 30, 60, 300, 900, 3600)  # the chart's bucket widths, finest first
MAX_BUCKETS = 60
MIN_BUCKETS = 12


def usage(spans: Iterable[dict[str, Any]], agent_id: str | None = None) -> dict[str, Any]:
    """Model calls (of one agent, or all) folded into time buckets for the usage chart.

    ``{"bucket_s": W, "buckets": [{t, tokens, tokens_per_minute, cost_usd, calls}]}``:
    the finest width of :data:`BUCKETS_S` that keeps at most :data:`MAX_BUCKETS`
    buckets (and at least :data:`MIN_BUCKETS`); ``t`` is a bucket's start (Unix
    seconds), empty buckets included.
    """
    calls = []
    for s in spans:
        attrs = s.get("attributes") or {}
        if attrs.get("gen_ai.operation.name") != MODEL_OP or (agent_id and s.get("agent") != agent_id):
            continue
        tokens = int(attrs.get("gen_ai.usage.input_tokens", 0)) + int(attrs.get("gen_ai.usage.output_tokens", 0))
        calls.append(((s.get("end_ns") or 0) / 1e9, tokens, float(attrs.get("swarm.cost_usd", 0.0))))
    if not calls:
        return {"bucket_s": BUCKETS_S[0], "buckets": []}
    first, last = min(c[0] for c in calls), max(c[0] for c in calls)
    width = next((w for w in BUCKETS_S if (last // w - first // w) < MAX_BUCKETS), BUCKETS_S[-1])
    base = int(first // width)
    count = max(MIN_BUCKETS, int(last // width) - base + 1)  # a short run still reads as a time line
    buckets = [{"t": (base + i) * width, "tokens": 0, "tokens_per_minute": 0.0, "cost_usd": 0.0, "calls": 0}
               for i in range(count)]
    for end, tokens, cost in calls:
        b = buckets[int(end // width) - base]
        b["tokens"] += tokens
        b["cost_usd"] += cost
        b["calls"] += 1
    for b in buckets:
        b["tokens_per_minute"] = round(b["tokens"] * 60 / width, 1)
    return {"bucket_s": width, "buckets": buckets}
