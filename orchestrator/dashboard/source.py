"""What the dashboard reads: the run directory's registry, logs and traces (never the bus).

Every read opens the registry read-only for that read, so the dashboard
keeps answering when the swarm is down, and sees a new swarm of the same
run directory (``swarm up`` replaces the registry file) without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import runctl
from orchestrator.logview import json_objects
from orchestrator.supervisor.registry import ps_view
from swarm_core.errors import NotFound, NotRunning

LOG_TAIL_BYTES = 256 * 1024  # what a log tail reads at most from the end of an agent's file


class RunSource:
    """Read-only views of one run directory, shaped like the CLI's ``--json`` output."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def swarm(self) -> dict[str, Any]:
        """The swarm's name and state (``none`` before the first ``swarm up``)."""
        try:
            reg = runctl.open_registry(self.run_dir)
        except NotRunning:
            return {"name": None, "state": "none", "supervisor_pid": None, "run_dir": str(self.run_dir)}
        try:
            state = reg.meta("state", "?")
            name, goal = reg.meta("name"), reg.meta("goal")
        finally:
            reg.close()
        alive = runctl.supervisor_pid(self.run_dir)
        if alive is None and state not in ("down",):
            state = "down"  # the supervisor died without writing so
        return {"name": name, "goal": goal, "state": state, "supervisor_pid": alive,
                "run_dir": str(self.run_dir)}

    def agents(self) -> list[dict[str, Any]]:
        """Every agent, the fields of ``swarm ps --json``; empty before the first swarm."""
        try:
            reg = runctl.open_registry(self.run_dir)
        except NotRunning:
            return []
        try:
            return [ps_view(r) for r in reg.all()]
        finally:
            reg.close()

    def agent(self, agent_id: str) -> dict[str, Any]:
        """One agent, the fields of ``swarm inspect --json``; NotFound for an unknown id."""
        try:
            return runctl.inspect_agent(self.run_dir, agent_id)
        except NotRunning:
            raise NotFound(f"no agent {agent_id!r}: there is no swarm in {self.run_dir}") from None

    def approvals(self) -> list[dict[str, Any]]:
        """The pending approval requests, the fields of ``swarm approvals --json``; empty before a swarm."""
        try:
            return runctl.pending_requests(self.run_dir)
        except NotRunning:
            return []

    def approval(self, request_id: str) -> None:
        """NotFound unless the registry knows request ``request_id`` (pending or decided)."""
        if not runctl.approval_exists(self.run_dir, request_id):
            raise NotFound(f"no approval request {request_id!r}")

    def log_events(self, agent_id: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` JSON events of the agent's log file (after checking the id)."""
        self.agent(agent_id)
        path = self.run_dir / "logs" / f"{agent_id}.jsonl"
        return _tail_json(path, limit)


def _tail_json(path: Path, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` JSON objects of a JSON-lines file (bounded read from its end)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            data = fh.read()
    except FileNotFoundError:
        return []
    lines = data.splitlines()
    if size > LOG_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line is probably cut
    out = json_objects(lines)
    return out[-limit:] if limit > 0 else []
