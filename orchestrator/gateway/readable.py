"""What a model's answer says once decoded and normalized, for the breaker to match words in.

The breaker must read what the model meant, not its raw bytes. :func:`strings_in`
decodes the answer: a JSON answer gives every string in it (keys and values;
``\\u0046BI`` is then ``FBI``); any other text is taken as it is, plus a copy
with its ``\\uXXXX`` escapes decoded. :func:`fold` puts a string in the form
words are compared in: Unicode NFKC (fullwidth and mathematical letters become
plain ones), format characters removed (category Cf: zero-width spaces and
joiners, soft hyphens, direction marks), every non-ASCII look-alike replaced by
its prototype from Unicode's confusables table (Greek and Cyrillic letters that
look Latin, and the rest of ``confusables.txt``, through ``confusable_homoglyphs``),
case folded, and ``l`` read as ``i`` (the table's prototype for every capital I
look-alike is ``l``). Both the configured words and the answer go through
:func:`fold`, so the comparison is symmetric.

Pure functions; no clock, no socket.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterator

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_MAX_DEPTH = 64  # JSON deeper than this is read as text (json.loads already bounds recursion)


def strings_in(answer: Any) -> list[str]:
    """Every string the answer holds, decoded (see the module docstring)."""
    text = answer if isinstance(answer, str) else str(answer)
    try:
        value = json.loads(text, strict=False)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, (dict, list)):
        return list(_walk(value, 0)) or [text]
    if isinstance(value, str):
        return [value]
    unescaped = _ESCAPE.sub(lambda mt: chr(int(mt.group(1), 16)), text)
    return [text] if unescaped == text else [text, unescaped]


def _walk(value: Any, depth: int) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, depth + 1)


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Non-ASCII character → its ASCII-or-other prototype, from Unicode's confusables table."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[str, str] = {}
    for char, glyphs in confusables_data.items():
        # a character with one homoglyph is a look-alike of that prototype; a prototype lists its many
        if char.isascii() or len(glyphs) != 1:
            continue
        target = _strip_format(glyphs[0]["c"])
        if target and target != char:
            table[char] = target
    return table


def _strip_format(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def fold(text: str) -> str:
    """``text`` in the breaker's comparison form (see the module docstring)."""
    text = _strip_format(unicodedata.normalize("NFKC", text))
    protos = _prototypes()
    if not text.isascii():
        text = "".join(protos.get(c, c) for c in text)
    return text.casefold().replace("l", "i")
