"""Pure loop detection over an agent's reported steps (supervisor policy).

:class:`LoopDetector` is fed ``(command, args)`` once per step. Steps are
compared by a *near-duplicate key*: the command and its arguments with every
number replaced by ``#`` (in strings too: ``"attempt 7"`` is ``"attempt #"``),
runs of whitespace collapsed and key order ignored; the arguments naming a
target (a file, an agent, a url: ``target`` in the command catalog) are kept exact. A step is a loop when

* its key occurs at least ``threshold`` times among the last ``window`` steps
  (with the default ``window == threshold``: ``threshold`` times in a row), or
* the last steps repeat a cycle of 2 to :data:`MAX_CYCLE` keys ``threshold``
  times over (``A B A B A B`` with threshold 3).

The first loop is answered with ``WARN`` (the runtime tells the model); any
later loop is ``STOP`` (the model was told once and went on).

It touches no clock, no socket and no process.
"""

from __future__ import annotations

import enum
import json
import re
from collections import deque
from itertools import islice
from typing import Any, Sequence

from swarm_core.catalog import CATALOG

MAX_CYCLE = 4  # the longest repeating cycle of steps that is detected

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")
_SPACE = re.compile(r"\s+")


class Verdict(enum.Enum):
    """What the runtime should do after a step."""

    NONE = "none"
    WARN = "warn"
    STOP = "stop"


def _near(value: Any, depth: int = 0) -> Any:
    """``value`` with numbers as ``#`` and whitespace collapsed, in every string, list and mapping."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return "#"
    if isinstance(value, str):
        return _SPACE.sub(" ", _NUMBER.sub("#", value)).strip()
    if depth > 32:
        return repr(value)
    if isinstance(value, dict):
        return {_near(str(k), depth + 1): _near(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_near(v, depth + 1) for v in value]
    return _near(repr(value), depth + 1)


def canonical(command: Any, args: Any) -> str:
    """A stable near-duplicate key for a command and its arguments (``args`` may be JSON text).

    The arguments the catalog marks as naming a target (a file, an agent, a url) are kept exact:
    writing ``ch1.txt``, ``ch2.txt``, ``ch3.txt`` is three pieces of work, rewriting ``out.txt`` with
    ``attempt 1``, ``attempt 2``... is one piece of work repeated.
    """
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            pass  # truncated or plain text: compared as text
    if isinstance(args, dict):
        spec = CATALOG.get(command)
        targets = {a.name for a in spec.args if a.target} if spec is not None else set()
        args = {k: (v if k in targets and isinstance(v, str) else _near(v)) for k, v in args.items()}
    else:
        args = _near(args)
    try:
        body = json.dumps(args, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        body = _near(repr(args))
    return f"{command}\x00{body}"


def cycle_length(keys: Sequence[str], repeats: int, longest: int = MAX_CYCLE) -> int:
    """The shortest cycle of 2..``longest`` keys the tail of ``keys`` repeats ``repeats`` times (0: none)."""
    for size in range(2, longest + 1):
        span = size * repeats
        if len(keys) < span:
            break
        if len(set(islice(reversed(keys), size))) < 2:
            continue  # one key repeated: the count rule's case, not a cycle
        # newest first: key i equals key i + size all along the span
        newer, older = islice(reversed(keys), span - size), islice(reversed(keys), size, span)
        if all(a == b for a, b in zip(newer, older)):
            return size
    return 0


class LoopDetector:
    """Detect near-identical steps repeated ``threshold`` times within ``window`` steps, and short cycles."""

    def __init__(self, threshold: int = 3, window: int | None = None, longest_cycle: int = MAX_CYCLE) -> None:
        window = threshold if window is None else window
        if threshold < 2:
            raise ValueError(f"loop threshold must be at least 2, got {threshold}")
        if window < threshold:
            raise ValueError(f"loop window ({window}) must be at least the threshold ({threshold})")
        self.threshold = threshold
        self.window = window
        self.longest_cycle = longest_cycle
        self._recent: deque[str] = deque(maxlen=max(window, longest_cycle * threshold))
        self.warned = False
        self.last_key: str | None = None
        self.last_cycle = 0  # the cycle length of the last loop seen (1: one step repeated)

    def observe(self, command: Any, args: Any) -> Verdict:
        """Record one step and say whether it continues a loop."""
        key = canonical(command, args)
        self._recent.append(key)
        self.last_key = key
        recent = self._recent
        if sum(1 for k in islice(reversed(recent), self.window) if k == key) >= self.threshold:
            self.last_cycle = 1
        else:
            self.last_cycle = cycle_length(recent, self.threshold, self.longest_cycle)
            if not self.last_cycle:
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
        self.last_cycle = 0
