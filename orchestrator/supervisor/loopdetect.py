"""Pure loop detection over an agent's reported steps (supervisor policy).

:class:`LoopDetector` is fed ``(command, args)`` once per step. The step is a
loop when the same command with the same (canonicalised) arguments occurs at
least ``threshold`` times among the last ``window`` steps; with the default
``window == threshold`` that means "``threshold`` times in a row". The first
loop is answered with ``WARN`` (the runtime tells the model); any later loop
is ``STOP`` (the model was told once and went on).

It touches no clock, no socket and no process.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from typing import Any


class Verdict(enum.Enum):
    """What the runtime should do after a step."""

    NONE = "none"
    WARN = "warn"
    STOP = "stop"


def canonical(command: Any, args: Any) -> str:
    """A stable key for a command and its arguments (key order does not matter)."""
    try:
        body = json.dumps(args, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        body = repr(args)
    return f"{command}\x00{body}"


class LoopDetector:
    """Detect the same command+args repeated ``threshold`` times within ``window`` steps."""

    def __init__(self, threshold: int = 3, window: int | None = None) -> None:
        window = threshold if window is None else window
        if threshold < 2:
            raise ValueError(f"loop threshold must be at least 2, got {threshold}")
        if window < threshold:
            raise ValueError(f"loop window ({window}) must be at least the threshold ({threshold})")
        self.threshold = threshold
        self.window = window
        self._recent: deque[str] = deque(maxlen=window)
        self.warned = False
        self.last_key: str | None = None

    def observe(self, command: Any, args: Any) -> Verdict:
        """Record one step and say whether it continues a loop."""
        key = canonical(command, args)
        self._recent.append(key)
        self.last_key = key
        if sum(1 for k in self._recent if k == key) < self.threshold:
            return Verdict.NONE
        if self.warned:
            return Verdict.STOP
        self.warned = True
        return Verdict.WARN

    def reset(self) -> None:
        """Forget the history and the warning (e.g. after a new task)."""
        self._recent.clear()
        self.warned = False
        self.last_key = None
