"""Reading the swarm's JSON-line logs: tail, merge by time, follow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import click

from swarm_core.errors import NotFound, NotRunning


class LogTailer:
    """Incrementally reads new events from every ``logs/*.jsonl`` of a run (or one agent's)."""

    def __init__(self, logs_dir: Path, agent_id: str | None = None, from_start: bool = True) -> None:
        self.logs_dir = logs_dir
        self.agent_id = agent_id
        self._offsets: dict[Path, int] = {}
        self._from_start = from_start

    def _files(self) -> list[Path]:
        if self.agent_id:
            return [self.logs_dir / f"{self.agent_id}.jsonl"]
        return sorted(self.logs_dir.glob("*.jsonl"))

    def read_new(self) -> list[dict[str, Any]]:
        """Events written since the last call, ordered by time."""
        out: list[dict[str, Any]] = []
        for path in self._files():
            if path not in self._offsets:
                self._offsets[path] = 0 if self._from_start else _size(path)
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offsets[path])
                    data = fh.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self._offsets[path] += end + 1
            out.extend(json_objects(data[: end + 1].splitlines()))
        out.sort(key=lambda e: e.get("ts") or 0)
        return out


def json_objects(lines: list[bytes]) -> list[dict[str, Any]]:
    """The JSON objects among ``lines``; anything else (a torn or foreign line) is skipped."""
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def show_logs(run_dir: Path, agent_id: str | None, *, follow: bool, lines: int, as_json: bool) -> None:
    """Print the last ``lines`` events (and follow new ones with ``follow``)."""
    from orchestrator.views import format_log_line

    logs_dir = run_dir / "logs"
    if not logs_dir.exists():
        raise NotRunning(f"no logs in {run_dir}; start a swarm with: swarm up CONFIG")
    if agent_id and not (logs_dir / f"{agent_id}.jsonl").exists():
        known = ", ".join(sorted(p.stem for p in logs_dir.glob("*.jsonl")))
        raise NotFound(f"no log for {agent_id!r} in {logs_dir}; logs exist for: {known or 'nobody'}")
    tailer = LogTailer(logs_dir, agent_id)

    def emit(events: list[dict[str, Any]]) -> None:
        for ev in events:
            click.echo(json.dumps(ev, ensure_ascii=False) if as_json else format_log_line(ev))

    emit(tailer.read_new()[-lines:] if lines > 0 else [])
    if not follow:
        return
    try:
        while True:
            time.sleep(0.2)
            emit(tailer.read_new())
    except KeyboardInterrupt:
        pass


def iter_events(run_dir: Path, agent_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every logged event of the run (or of one agent), by time."""
    yield from LogTailer(run_dir / "logs", agent_id).read_new()
