"""The circuit breaker on model outputs (gateway policy): risky words in consecutive outputs.

:class:`Breaker` is fed each model output. It trips when a risky word occurs in
``threshold`` consecutive outputs; a clean output resets the streak. ASCII
words match case-insensitively on word boundaries (``FBI`` matches ``FBI's``,
``hack`` does not match ``hacking``); words with non-ASCII characters (CJK
has no word boundaries) match as case-insensitive substrings. It touches no
clock, no socket and no process.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

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
