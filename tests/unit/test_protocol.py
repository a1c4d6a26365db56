"""Unit tests of the wire format: round trips, every kind of bad input, and fuzzing."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import msgpack  # tests craft raw frames; the package itself leaves msgpack to protocol.py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus import messages as m
from bus import protocol as p
from swarm_core import messages as _domain  # noqa: F401 - registers every domain type
from swarm_core import wire
from swarm_core.errors import ProtocolError

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers

def sample(tp: Any) -> Any:
    """A non-default sample value for a field annotation."""
    if tp is Any or tp is object:
        return {"nested": [1, "x", None, 2.5]}
    simple = {str: "text é", int: 7, float: 2.5, bool: True, bytes: b"\x00\xffbytes", type(None): None}
    if tp in simple:
        return simple[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)))
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        return [sample(args[0]) if args and args[0] is not Ellipsis else 1]
    if origin is dict or tp is dict:
        return {sample(args[0]) if args else "k": sample(args[1]) if len(args) > 1 else "v"}
    raise AssertionError(f"no sample for annotation {tp!r}: extend sample()")


def wrong_value(tp: Any) -> Any | None:
    """A value of the wrong type for an annotation (None when anything is accepted)."""
    if tp is Any or tp is object:
        return None
    if tp is str:
        return 12345
    if tp in (int, float, bool, bytes):
        return "not the right type"
    origin = typing.get_origin(tp)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        return "a string, not an array"
    if origin is dict or tp is dict:
        return ["not", "a", "map"]
    return None  # unions: no body uses one yet; sample() still covers them


def instance(cls: type) -> Any:
    """An instance of a registered body with a sample value in every field."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name]) for f in dataclasses.fields(cls)})


def frames(kind: p.Kind = p.Kind.REQUEST, body: Any = None, **over: Any) -> list[bytes]:
    body = body if body is not None else m.Ping(b"payload")
    h = p.make_header(kind, body.TYPE, "alice", "bob", timeout=5.0)
    return p.encode(dataclasses.replace(h, **over) if over else h, body)


def raw_header(*, version: Any = p.VERSION, kind: Any = 0, type_name: Any = "ping", msg_id: Any = "m1",
               corr_id: Any = "", src: Any = "alice", dst: Any = "bob", deadline: Any = 0.0) -> bytes:
    return msgpack.packb([version, kind, type_name, msg_id, corr_id, src, dst, deadline])


ALL_TYPES = sorted(wire.registered_types().items())


# ------------------------------------------------------------- round trips

@pytest.mark.parametrize("type_name,cls", ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_round_trip_every_registered_type(type_name: str, cls: type) -> None:
    """Every registered body, filled with sample values, decodes back to an equal message."""
    body = instance(cls)
    for kind in p.Kind:
        h = p.make_header(kind, type_name, "src-1", "dst-1", corr_id="c1", timeout=3.0)
        msg = p.decode(p.encode(h, body))
        assert msg.header == h
        assert msg.body == body
        assert type(msg.body) is cls


@pytest.mark.parametrize("type_name,cls", ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_defaults_may_be_omitted_on_the_wire(type_name: str, cls: type) -> None:
    """A body carrying only its required fields decodes with the defaults filled in (additive evolution)."""
    hints = typing.get_type_hints(cls)
    required = [f for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    raw = msgpack.packb([sample(hints[f.name]) for f in required])
    body = p.decode_body(type_name, raw)
    assert body == cls(**{f.name: sample(hints[f.name]) for f in required})


def test_decode_header_and_route_info_agree() -> None:
    """route_info (the broker's fast path) returns exactly the fields decode_header does."""
    h = p.make_header(p.Kind.ERROR, "error", "a", "b", corr_id="c", timeout=1.0)
    hf = p.encode_header(h)
    assert p.decode_header(hf) == h
    kind, type_name, msg_id, corr_id, src, dst, deadline, traceparent = p.route_info(hf)
    assert (p.Kind(kind), type_name, msg_id, corr_id, src, dst, deadline, traceparent) == (
        h.kind, h.type, h.msg_id, h.corr_id, h.src, h.dst, h.deadline, "")


TP = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


def test_traceparent_travels_in_the_header() -> None:
    """A header with a traceparent decodes with it, and route_info returns it last."""
    h = p.make_header(p.Kind.REQUEST, "ping", "a", "b", timeout=1.0, traceparent=TP)
    hf = p.encode_header(h)
    assert p.decode_header(hf).traceparent == TP
    assert p.route_info(hf)[-1] == TP


def test_header_without_traceparent_stays_eight_items() -> None:
    """No trace context: the frame is the old 8-item array, and it decodes with traceparent ''."""
    hf = p.encode_header(p.make_header(p.Kind.EVENT, "ping", "a", "b"))
    assert len(msgpack.unpackb(hf)) == 8
    assert p.decode_header(raw_header()).traceparent == ""


@pytest.mark.parametrize("bad", [42, "", "00-xyz", TP.upper(), TP + "0", "00-" + "0" * 32 + "-" + "0" * 16])
def test_malformed_traceparent_is_refused(bad: Any) -> None:
    """A ninth header item that is not a W3C traceparent raises ProtocolError (never routed)."""
    frame = msgpack.packb([p.VERSION, 0, "ping", "m1", "", "alice", "bob", 0.0, bad])
    with pytest.raises(ProtocolError, match="traceparent"):
        p.route_info(frame)


def test_ten_item_header_is_refused() -> None:
    """A header with more items than the optional traceparent raises ProtocolError."""
    frame = msgpack.packb([p.VERSION, 0, "ping", "m1", "", "alice", "bob", 0.0, TP, "x"])
    with pytest.raises(ProtocolError, match="8-item"):
        p.route_info(frame)


def test_ids_are_unique() -> None:
    """new_id never repeats within a process."""
    ids = [p.new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


# ---------------------------------------------------------------- bad input

def test_wrong_version_is_refused() -> None:
    """A header of another protocol version raises ProtocolError naming both versions."""
    with pytest.raises(ProtocolError, match="unsupported protocol version 2"):
        p.decode([raw_header(version=2), p.encode_body(m.Ping())])
    with pytest.raises(ProtocolError, match="version"):
        p.decode_header(raw_header(version="1"))


def test_unknown_type_is_refused() -> None:
    """A header naming an unregistered type raises ProtocolError naming it."""
    with pytest.raises(ProtocolError, match="unknown message type 'no_such_type'"):
        p.decode([raw_header(type_name="no_such_type"), msgpack.packb([])])
    with pytest.raises(ProtocolError):
        wire.body_class("no_such_type")


def test_unknown_kind_is_refused() -> None:
    """A kind outside the enum (or a bool posing as an int) raises ProtocolError."""
    for kind in (9, -1, True, "0"):
        with pytest.raises(ProtocolError, match="kind"):
            p.decode_header(raw_header(kind=kind))


@pytest.mark.parametrize("field", ["type_name", "msg_id", "corr_id", "src", "dst"])
def test_non_string_header_fields_are_refused(field: str) -> None:
    """Every string field of the header must be a string."""
    with pytest.raises(ProtocolError, match="is not a string"):
        p.decode_header(raw_header(**{field: 42}))


def test_non_number_deadline_is_refused() -> None:
    """The deadline must be a number."""
    with pytest.raises(ProtocolError, match="deadline"):
        p.decode_header(raw_header(deadline="soon"))


def test_truncated_frames_are_refused() -> None:
    """Every proper prefix of a valid header or body frame raises ProtocolError."""
    hdr, body = frames(body=m.ErrorReply("code", "message", {"k": [1, 2]}))
    for cut in range(len(hdr)):
        with pytest.raises(ProtocolError):
            p.decode([hdr[:cut], body])
    for cut in range(len(body)):
        with pytest.raises(ProtocolError):
            p.decode([hdr, body[:cut]])


def test_trailing_garbage_is_refused() -> None:
    """Bytes after a complete msgpack object make the frame invalid."""
    hdr, body = frames()
    with pytest.raises(ProtocolError):
        p.decode([hdr + b"\x00", body])
    with pytest.raises(ProtocolError):
        p.decode([hdr, body + b"\xc0"])


def test_oversized_messages_are_refused_with_a_configurable_limit() -> None:
    """A message over max_bytes raises ProtocolError; the same message passes a larger limit."""
    msg = frames(body=m.Ping(b"x" * 5000))
    with pytest.raises(ProtocolError, match="exceeds the limit of 4096"):
        p.decode(msg, max_bytes=4096)
    assert p.decode(msg, max_bytes=8192).body == m.Ping(b"x" * 5000)
    with pytest.raises(ProtocolError, match="exceeds"):
        p.decode([raw_header(msg_id="m" * (p.MAX_HEADER_BYTES + 1)), p.encode_body(m.Ping())])


def test_wrong_frame_counts_and_types_are_refused() -> None:
    """Anything but exactly two byte frames raises ProtocolError."""
    hdr, body = frames()
    for bad in ([], [hdr], [hdr, body, body], "not a list", [hdr, "str body"], [None, body], [hdr, 12]):
        with pytest.raises(ProtocolError):
            p.decode(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("type_name,cls", ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_wrong_field_types_are_refused(type_name: str, cls: type) -> None:
    """A body whose field has the wrong type raises ProtocolError naming the field."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    values = [sample(hints[f.name]) for f in fields]
    checked = 0
    for i, f in enumerate(fields):
        bad = wrong_value(hints[f.name])
        if bad is None:
            continue
        raw = msgpack.packb(values[:i] + [bad] + values[i + 1:])
        with pytest.raises(ProtocolError, match=rf"{type_name}\.{f.name}"):
            p.decode_body(type_name, raw)
        checked += 1
    if not fields:
        with pytest.raises(ProtocolError, match="fields"):
            p.decode_body(type_name, msgpack.packb(["one too many"]))
        checked += 1
    assert checked or all(wrong_value(hints[f.name]) is None for f in fields)


def test_wrong_element_types_are_refused() -> None:
    """Element types inside arrays and maps are checked too, not just the container."""
    with pytest.raises(ProtocolError, match=r"mem_added\.ids"):
        p.decode_body("mem_added", msgpack.packb([[1, "two", 3]]))
    with pytest.raises(ProtocolError, match=r"embeddings\.vectors"):
        p.decode_body("embeddings", msgpack.packb([[[0.5, "x"]]]))
    with pytest.raises(ProtocolError, match=r"ok\.info"):
        p.decode_body("ok", msgpack.packb([{b"bytes key": 1}]))


def test_wrong_field_counts_are_refused() -> None:
    """Too few (missing a required field) or too many fields raise ProtocolError."""
    with pytest.raises(ProtocolError, match="fields"):
        p.decode_body("error", msgpack.packb(["only a code"]))
    with pytest.raises(ProtocolError, match="fields"):
        p.decode_body("error", msgpack.packb(["code", "msg", {}, "extra"]))
    with pytest.raises(ProtocolError, match="not an array"):
        p.decode_body("error", msgpack.packb({"code": "c"}))


def test_encode_refuses_mismatched_or_unregistered_bodies() -> None:
    """encode raises ProtocolError when the header type and body disagree or the body is unknown."""
    h = p.make_header(p.Kind.EVENT, "pong", "a", "b")
    with pytest.raises(ProtocolError):
        p.encode(h, m.Ping())

    @dataclasses.dataclass(frozen=True)
    class Stranger:
        TYPE = "pong"

    with pytest.raises(ProtocolError):
        p.encode_body(Stranger())


def test_request_id_of_salvages_only_requests() -> None:
    """request_id_of finds the msg_id of request-shaped headers (any version) and None otherwise."""
    assert p.request_id_of(raw_header(version=7, msg_id="abc")) == "abc"
    assert p.request_id_of(raw_header(kind=int(p.Kind.EVENT))) is None
    assert p.request_id_of(b"\xc1junk") is None
    assert p.request_id_of(msgpack.packb("a string")) is None


# ------------------------------------------------------------------ fuzzing

_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
            | st.floats(allow_nan=True) | st.text(max_size=20) | st.binary(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=9)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_kinds = st.integers(-2, 6) | st.booleans() | st.text(max_size=2)
_near_headers = st.builds(
    lambda v, k, t, rest: [v, k, t, *rest],
    st.sampled_from([p.VERSION, p.VERSION + 1, 0, "1"]), _kinds,
    st.sampled_from(sorted(wire.registered_types())) | st.text(max_size=10),
    st.lists(st.text(max_size=6) | _scalars, min_size=0, max_size=7),
)
_fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_protocol_errors(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ProtocolError:
        pass


@_fuzz
@given(st.binary(max_size=300))
def test_decode_header_of_arbitrary_bytes_raises_only_protocol_error(data: bytes) -> None:
    """decode_header and route_info on any bytes either succeed or raise ProtocolError."""
    _only_protocol_errors(p.decode_header, data)
    _only_protocol_errors(p.route_info, data)
    p.request_id_of(data)  # never raises at all


@_fuzz
@given(st.lists(st.binary(max_size=120), max_size=4))
def test_decode_of_arbitrary_frame_lists_raises_only_protocol_error(data: list[bytes]) -> None:
    """decode on any list of byte frames either succeeds or raises ProtocolError."""
    _only_protocol_errors(p.decode, data)


@_fuzz
@given(_values, _values)
def test_decode_of_arbitrary_msgpack_values_raises_only_protocol_error(hdr: Any, body: Any) -> None:
    """Well-formed msgpack of any shape in either frame yields a Message or ProtocolError."""
    _only_protocol_errors(p.decode, [msgpack.packb(hdr), msgpack.packb(body)])


@_fuzz
@given(_near_headers, st.lists(_values, max_size=6))
def test_decode_of_near_valid_messages_raises_only_protocol_error(hdr: list, body: list) -> None:
    """Header-shaped arrays with registered type names and arbitrary bodies never escape ProtocolError."""
    _only_protocol_errors(p.decode, [msgpack.packb(hdr), msgpack.packb(body)])


# ----------------------------------------------------------- import boundary

def test_protocol_does_not_import_zmq() -> None:
    """Importing bus.protocol (and the message bodies) pulls in no zmq, in a fresh interpreter."""
    code = "import sys, bus.protocol, bus.messages, swarm_core.messages; print('zmq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_only_protocol_imports_msgpack_in_bus() -> None:
    """No module of the bus package except protocol.py imports msgpack."""
    offenders = []
    for path in (ROOT / "bus").glob("*.py"):
        if path.name == "protocol.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "msgpack" for n in names):
                offenders.append(path.name)
    assert offenders == []
