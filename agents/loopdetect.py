"""Pure runaway detectors for the think–act loop: repeated commands and risky words.

:class:`LoopDetector` is fed ``(command, args)`` once per step. The step is a
loop when the same command with the same (canonicalised) arguments occurs at
least ``threshold`` times among the last ``window`` steps; with the default
``window == threshold`` that means "``threshold`` times in a row". The first
loop is answered with ``WARN`` (the runtime tells the model); any later loop
is ``STOP`` (the model was told once and went on).

:class:`Breaker` is fed each model output. It trips when a risky word occurs in
``threshold`` consecutive outputs; a clean output resets the streak. ASCII
words match case-insensitively on word boundaries (``FBI`` matches ``FBI's``,
``hack`` does not match ``hacking``); words with non-ASCII characters (CJK
has no word boundaries) match as case-insensitive substrings.

Neither object touches a clock, a socket or a process.
"""

from __future__ import annotations

import enum
import json
import re
from collections import deque
from typing import Any, Iterable


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


_ASCII_WORD = r"[A-Za-z0-9_]"


class Breaker:
    """Trip when a risky word appears in ``threshold`` consecutive outputs."""

    def __init__(self, words: Iterable[Any], threshold: int = 3) -> None:
        if threshold < 1:
            raise ValueError(f"breaker threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.words = [w for w in (str(w).strip() for w in words) if w]
        # ASCII words: a regex with ASCII word boundaries; others: a casefolded substring.
        self._matchers: list[tuple[str, re.Pattern[str] | str]] = []
        for word in self.words:
            if word.isascii():
                pattern = re.compile(f"(?<!{_ASCII_WORD}){re.escape(word)}(?!{_ASCII_WORD})", re.IGNORECASE)
                self._matchers.append((word, pattern))
            else:
                self._matchers.append((word, word.casefold()))
        self.streak = 0
        self.tripped = False
        self.last_matches: list[str] = []

    def matches(self, text: Any) -> list[str]:
        """The risky words found in ``text``, in configuration order."""
        text = text if isinstance(text, str) else str(text)
        folded = text.casefold()
        return [w for w, m in self._matchers
                if (m in folded if isinstance(m, str) else m.search(text) is not None)]

    def observe(self, text: Any) -> bool:
        """Record one output; True exactly when this output trips the breaker."""
        self.last_matches = self.matches(text)
        if not self.last_matches:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= self.threshold and not self.tripped:
            self.tripped = True
            return True
        return False

    def reset(self) -> None:
        """Clear the streak and the tripped state (after a thaw)."""
        self.streak = 0
        self.tripped = False
        self.last_matches = []
