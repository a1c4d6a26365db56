"""What the hostile-body tests share: hypothesis strategies for well-formed envelopes with hostile bodies,
and the checks every answer must pass.

A body is built from its dataclass: each field gets hostile values of its wire type (so the envelope and
the body decode), unless the test gives a strategy of its own for that field (ids the service knows).
``answer`` sends one request through a real bus client and returns the reply, or the typed error it got;
a stall (no answer by the deadline), a service gone from the bus or an ``internal_error`` fails the test.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from functools import reduce
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from bus.client import BusClient
from swarm_core.errors import BusError, ProtocolError, SwarmError

# what a service may answer a hostile request with: its typed refusals (never a crash, a stall, a bug)
TYPED = frozenset({"invalid_request", "not_found", "policy_denied", "protocol_error", "provider_error",
                   "cassette_exhausted", "budget_exhausted", "peer_busy", "storage_unavailable"})

EDGE_TEXTS = ("", " ", "\x00", "\x00\x01\x7f", "\u202eevil", "\ufeff", "\u2028\u2029", "a\u0301\u0301\u0301",
              "🧨" * 8, "../../etc/passwd", "/etc/shadow", "agent:", "agent:..", "*", "supervisor", "memory",
              "gateway", "cli-", "%s%n%x", "' OR 1=1 --", "null", "NaN", "\U0010ffff", "ǅ", "İ", "ß" * 3,
              "\t\n\r", "x" * 65, "名前")
EDGE_INTS = (0, -1, 1, -(2 ** 63), 2 ** 63 - 1, 2 ** 31, -(2 ** 31), 2 ** 53 + 1, 10 ** 6)
EDGE_FLOATS = (math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324, 3.4e38, 1e39)


def huge_texts() -> st.SearchStrategy[str]:
    """Strings of tens to hundreds of kilobytes (the bus takes up to 1 MiB a message)."""
    chars = st.sampled_from(["x", "é", "🧨", "\x00"])
    return st.builds(lambda n, c: c * n, st.integers(9_000, 120_000), chars)


def texts(max_size: int = 200) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=max_size), huge_texts())


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2 ** 63), 2 ** 63 - 1))


def floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats())


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    return reduce(lambda inner, _: {"k": inner} if as_dict else [inner], range(depth), leaf)


def nested() -> st.SearchStrategy[Any]:
    """A list or dict nested 20-200 levels deep."""
    return st.builds(_nest, st.integers(20, 200), st.sampled_from([0, "x", None, math.nan]), st.booleans())


def values() -> st.SearchStrategy[Any]:
    """Anything msgpack carries: scalars of every kind, lists and dicts of them, deep nesting."""
    leaf = st.one_of(st.none(), st.booleans(), ints(), floats(), texts(40), st.binary(max_size=64))
    tree = st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(texts(20), c, max_size=4),
                        max_leaves=12)
    return st.one_of(tree, nested())


def dicts() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.dictionaries(texts(30), values(), max_size=5), nested().map(lambda v: {"deep": v}))


_FILLER: dict[Any, Any] = {str: "x", int: 1, float: 0.5, dict[str, Any]: {}, list[float]: [0.5]}


def for_type(tp: Any) -> st.SearchStrategy[Any]:
    """Hostile values of one wire type (the annotation of a body field)."""
    simple = {str: texts(), int: ints(), float: floats(), bool: st.booleans(),
              bytes: st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=20_000))}
    if tp in simple:
        return simple[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:  # a few hostile items, or more items than any service takes
        return st.one_of(st.lists(for_type(args[0]), max_size=5), st.just([_FILLER[args[0]]] * 10_001))
    if origin is dict or tp is dict:
        return dicts()
    if tp is Any:
        return values()
    raise TypeError(f"no hostile strategy for {tp!r}")


def bodies(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Bodies of ``cls``: hostile values of each field's wire type, or the strategy given for it."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: fields.get(f.name, for_type(hints[f.name]))
                             for f in dataclasses.fields(cls)})


@st.composite
def _mutant(draw: st.DrawFn, valid: Any, fields: dict[str, st.SearchStrategy[Any]]) -> Any:
    hints = typing.get_type_hints(type(valid))
    names = [f.name for f in dataclasses.fields(valid)]
    chosen = draw(st.sets(st.sampled_from(names), min_size=1, max_size=2))
    return dataclasses.replace(valid, **{n: draw(fields.get(n, for_type(hints[n]))) for n in chosen})


def mutants(valid: Any, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` with one or two of its fields made hostile: the checks behind the first one are reached."""
    return _mutant(valid, fields)


@dataclass(frozen=True)
class Answer:
    """What a service answered: a reply body, or the code and message of a typed error."""

    body: Any = None
    code: str = ""
    message: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.code)


def answer(client: BusClient, dst: str, body: Any, timeout: float = 20.0) -> Answer:
    """Send ``body`` to ``dst`` and return its answer; fail on a stall, a vanished service or a bug."""
    try:
        return Answer(body=client.request(dst, body, timeout))
    except ProtocolError as exc:
        if "exceeds the limit" in exc.message and exc.details.get("type") == body.TYPE:
            reject()  # too big for the bus: our side refused to send it, nothing reached the service
        return _typed(exc, dst, body)
    except BusError as exc:  # deadline_exceeded, unknown_destination, bus_error
        raise AssertionError(f"{dst} did not answer {body.TYPE} ({exc.code}: {exc.message}): {body!r:.300}")
    except SwarmError as exc:
        return _typed(exc, dst, body)


def _typed(exc: SwarmError, dst: str, body: Any) -> Answer:
    assert exc.code in TYPED, f"{dst} answered {body.TYPE} with {exc.code}: {exc.message[:300]}"
    return Answer(code=exc.code, message=exc.message)
