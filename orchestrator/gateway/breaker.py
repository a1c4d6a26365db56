"""The circuit breaker on model outputs (gateway policy): risky words in consecutive outputs.

:class:`Breaker` is fed each model output. It trips when a risky word occurs in
``threshold`` consecutive outputs; a clean output resets the streak. It reads
what the model meant: the answer is decoded (every string of a JSON answer,
escapes resolved) and normalized (NFKC, format characters removed, look-alike
letters mapped, case folded; see :mod:`orchestrator.gateway.readable`), and so
are the configured words. ASCII words then match on word boundaries (``FBI``
matches ``FBI's``, ``hack`` does not match ``hacking``); other words (CJK has
no word boundaries) match as substrings. It touches no clock, no socket and no
process.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from orchestrator.gateway.readable import fold, strings_in

_ASCII_WORD = r"[A-Za-z0-9_]"


class Breaker:
    """Trip when a risky word appears in ``threshold`` consecutive outputs."""

    def __init__(self, words: Iterable[Any], threshold: int = 3) -> None:
        if threshold < 1:
            raise ValueError(f"breaker threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.words = [w for w in (str(w).strip() for w in words) if w]
        # folded ASCII words: a regex with ASCII word boundaries; others: a folded substring.
        self._matchers: list[tuple[str, re.Pattern[str] | str]] = []
        for word in self.words:
            folded = fold(word)
            if folded.isascii():
                pattern = re.compile(f"(?<!{_ASCII_WORD}){re.escape(folded)}(?!{_ASCII_WORD})")
                self._matchers.append((word, pattern))
            else:
                self._matchers.append((word, folded))
        self.streak = 0
        self.tripped = False
        self.last_matches: list[str] = []

    def matches(self, text: Any) -> list[str]:
        """The risky words found in any string of the answer ``text``, in configuration order."""
        folded = [fold(s) for s in strings_in(text)]
        return [w for w, m in self._matchers
                if any((m in f if isinstance(m, str) else m.search(f) is not None) for f in folded)]

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
