"""``swarm up`` in the foreground: live progress until the root agent finishes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestrator import runctl
from orchestrator.logview import LogTailer
from swarm_core.status import TERMINAL

INTERESTING = {"agent_spawned", "command_done", "agent_finished", "agent_crashed", "agent_stopping",
               "spawn_denied", "invalid_answer", "quota_throttled", "budget_exhausted", "model_failed",
               "loop_warning", "breaker_tripped", "inbox_received", "service_crashed", "stop_file_seen", "agent_hung",
               "approval_requested", "budget_approval_requested", "approval_approved", "approval_denied"}


def _command_done(ev: dict[str, Any]) -> str:
    result = str(ev.get("result", ""))
    result = result if len(result) <= 120 else result[:117] + "..."
    mark = "ok" if ev.get("ok") else "error"
    return f"step {ev.get('step')}: {ev.get('command')} [{mark}] {result}"


def _asks(ev: dict[str, Any]) -> str:
    what = ev.get("command") or f"more budget ({ev.get('budget_of')}'s)"
    req = ev.get("request")
    return f"waits for approval of {what}: swarm approve {req} | swarm deny {req}"


def _other(ev: dict[str, Any]) -> str:
    rest = {k: v for k, v in ev.items() if k not in {"ts", "event", "level", "role", "agent_id", "agent"}}
    return f"{ev.get('event')} {json.dumps(rest, ensure_ascii=False, default=str)[:160]}"


_FORMAT = {"command_done": _command_done, "approval_requested": _asks, "budget_approval_requested": _asks}


def _line(ev: dict[str, Any]) -> str | None:
    name = ev.get("event")
    if name not in INTERESTING:
        return None
    who = ev.get("agent") or ev.get("agent_id") or ev.get("role") or "?"
    when = time.strftime("%H:%M:%S", time.localtime(ev.get("ts") or time.time()))
    return f"{when} {who:<12} {_FORMAT.get(name, _other)(ev)}"


def follow(run_dir: Path, root: str, console: Any, poll: float = 0.3) -> tuple[str, str | None]:
    """Show progress until the root agent reaches a terminal state; return (status, result)."""
    tailer = LogTailer(run_dir / "logs")
    live = None
    if console.is_terminal:
        from rich.live import Live

        from orchestrator.views import ps_table

        live = Live(console=console, refresh_per_second=4, transient=False)
        live.start()
    try:
        while True:
            reg = runctl.open_registry(run_dir)
            try:
                recs = reg.all()
                rec = reg.get(root)
            finally:
                reg.close()
            for ev in tailer.read_new():
                line = _line(ev)
                if line:
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
            if live is not None:
                live.update(ps_table(recs, title="agents"))
            if rec is not None and rec.status in TERMINAL:
                for ev in tailer.read_new():
                    line = _line(ev)
                    if line:
                        console.print(line, markup=False, highlight=False, soft_wrap=True)
                return rec.status, rec.result or rec.reason
            if runctl.supervisor_pid(run_dir) is None:
                return "crashed", "the supervisor exited: " + runctl.last_error(run_dir)
            time.sleep(poll)
    finally:
        if live is not None:
            live.stop()
