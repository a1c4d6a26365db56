"""How the CLI shows the swarm to a person: tables, trees, log lines (rich)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterable

from rich.table import Table
from rich.tree import Tree

from orchestrator.supervisor.registry import AgentRecord, ps_view, subtree_spend

STATUS_STYLE = {
    "starting": "cyan", "running": "green", "waiting": "blue", "throttled": "yellow",
    "frozen": "bold yellow", "done": "bold green", "failed": "red", "killed": "magenta",
    "crashed": "bold red", "awaiting_approval": "bold cyan",
}


def _age(rec: AgentRecord) -> str:
    start = rec.started_at or rec.created_at
    end = rec.ended_at or time.time()
    s = max(0.0, end - start)
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def ps_table(recs: Iterable[AgentRecord], title: str | None = None) -> Table:
    """The ``swarm ps`` table; a NODE column when any agent runs on a Ray node."""
    recs = list(recs)
    nodes = any(r.node for r in recs)
    t = Table(title=title, title_justify="left", expand=False)
    cols = ["ID", "ROLE", "PARENT", "DEPTH", "PID", *(["NODE"] if nodes else []), "STATUS", "STEPS", "TOKENS",
            "REQS", "SUBTREE TOK", "SUBTREE $", "AGE", "REASON"]
    for col in cols:
        t.add_column(col, overflow="fold")
    spend = subtree_spend(recs)
    for r in recs:
        style = STATUS_STYLE.get(r.status, "")
        node = [r.node or "-"] if nodes else []
        sub_tokens, sub_cost = spend[r.id]
        t.add_row(r.id, r.role, r.parent or "-", str(r.depth), str(r.pid or "-"), *node,
                  f"[{style}]{r.status}[/]" if style else r.status, str(r.steps), str(r.tokens),
                  str(r.requests), _budgeted(sub_tokens, r.budget_tokens), _budgeted(sub_cost, r.budget_usd, 4),
                  _age(r), (r.reason or "")[:60])
    return t


def _budgeted(spent: float, budget: float | None, digits: int = 0) -> str:
    """``spent`` or ``spent/budget`` when the agent has a subtree budget."""
    text = f"{spent:.{digits}f}"
    return text if budget is None else f"{text}/{budget:.{digits}f}"


def tree_view(recs: list[AgentRecord], label: str) -> Tree:
    root = Tree(label)
    nodes: dict[str | None, Tree] = {None: root}
    for r in recs:  # registry order: parents before children
        parent = nodes.get(r.parent, root)
        style = STATUS_STYLE.get(r.status, "")
        nodes[r.id] = parent.add(f"{r.id} [dim]({r.role}, pid {r.pid or '-'})[/] [{style}]{r.status}[/]")
    return root


def tree_json(recs: list[AgentRecord]) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    spend = subtree_spend(recs)
    for r in recs:
        node = {**ps_view(r, spend[r.id]), "children": []}
        by_id[r.id] = node
        if r.parent and r.parent in by_id:
            by_id[r.parent]["children"].append(node)
        else:
            roots.append(node)
    return roots


def format_log_line(event: dict[str, Any]) -> str:
    ts = event.get("ts")
    when = time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int((ts % 1) * 1000):03d}" if ts else "--"
    who = event.get("agent_id") or event.get("role") or "?"
    name = event.get("event", "")
    skip = {"ts", "agent_id", "role", "event", "level"}
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
                    for k, v in event.items() if k not in skip)
    level = event.get("level", "info")
    return f"{when} {level:<7} {who:<14} {name} {rest}".rstrip()
