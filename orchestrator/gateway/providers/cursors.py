"""Replay cursors that survive a gateway restart: one append-only file in the run directory.

Each line is a JSON array ``[agent_id, next_index]``; the last line of an
agent wins. A cursor is written when its answer is taken, before the answer
is served: a gateway killed in between skips that answer rather than serving
an agent the same command twice (which would start duplicate agents). A
torn last line (a kill in the middle of a write) is ignored. Opening the file
rewrites it with one line per agent (atomically: temporary file, rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPLAY_CURSORS = "gateway/replay-cursors.jsonl"  # where the gateway keeps them, under the run directory


class CursorLog:
    """Agent id → the index of its next cassette answer, kept in ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.values = self._read()
        self._compact()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _read(self) -> dict[str, int]:
        values: dict[str, int] = {}
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return values
        for line in lines:
            try:
                agent, index = json.loads(line)
            except (ValueError, TypeError):
                continue  # a torn line: the write before it holds
            if isinstance(agent, str) and type(index) is int and index >= 0:
                values[agent] = index
        return values

    def _compact(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(self._line(a, i) for a, i in self.values.items()), encoding="utf-8")
        os.replace(tmp, self.path)

    @staticmethod
    def _line(agent: str, index: int) -> str:
        return json.dumps([agent, index], ensure_ascii=False) + "\n"

    def get(self, agent: str) -> int:
        """The agent's next index (0 when it never asked)."""
        return self.values.get(agent, 0)

    def set(self, agent: str, index: int) -> None:
        """Record the agent's next index (one write of one line)."""
        self.values[agent] = index
        os.write(self._fd, self._line(agent, index).encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
