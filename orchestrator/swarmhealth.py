"""The truth about a swarm's own processes, for the header of ``swarm ps`` and ``swarm top``.

Read from the registry (which outlives the supervisor) and checked against
the live processes: the supervisor is ``up`` only while its pid runs the
supervisor, ``down`` after an orderly shutdown (with its reason) and
``dead`` when its pid is gone without one (killed or crashed). Each helper
process on the service board (gateway, memory, zygote) shows its recorded
state, and ``dead`` when the board says up or restarting but its pid is gone.
"""

from __future__ import annotations

from typing import Any, Callable

from orchestrator.supervisor.board import KEY, RESTARTING, UP

Meta = Callable[..., Any]


def supervisor_line(meta: Meta, running_pid: int | None) -> str:
    """``supervisor up (pid N)``, ``down (reason)`` or ``dead (...)``; ``running_pid``: the live one."""
    state, pid = meta("state", "?"), meta("supervisor_pid")
    if state == "down":
        return f"supervisor down ({meta('down_reason', 'stopped')})"
    if running_pid is not None:
        return f"supervisor {'up' if state == 'running' else state} (pid {running_pid})"
    return (f"supervisor dead (pid {pid} ended without shutting down: killed or crashed; "
            f"its last state was {state})")


def service_lines(meta: Meta, alive: Callable[[int], bool]) -> list[str]:
    """One line per helper process on the service board (see the module docstring)."""
    lines = []
    for name, entry in sorted((meta(KEY, {}) or {}).items()):
        state, pid = entry.get("state", "?"), entry.get("pid")
        reason, restarts = entry.get("reason") or "", int(entry.get("restarts") or 0)
        if state in (UP, RESTARTING) and pid and not alive(int(pid)):
            state, reason = "dead", f"pid {pid} is gone"
        detail = [f"pid {pid}"] if pid and state in (UP, RESTARTING) else []
        if restarts and state in (UP, RESTARTING):
            detail.append(f"restarted {restarts}x")
        if reason:
            detail.append(reason)
        lines.append(f"{name} {state.replace('_', ' ')}" + (f" ({'; '.join(detail)})" if detail else ""))
    return lines


def header(name: str, meta: Meta, running_pid: int | None, alive: Callable[[int], bool]) -> str:
    """The table title: the swarm's name, then its supervisor and helper processes, one per line."""
    return "\n".join([f"swarm {name}", supervisor_line(meta, running_pid), *service_lines(meta, alive)])
