"""The wire format of the bus: the only module that imports msgpack.

A message travels as two frames, ``[header, body]``:

* ``header`` is a small msgpack array
  ``[version, kind, type, msg_id, corr_id, src, dst, deadline]`` with an
  optional ninth item, ``traceparent`` (the W3C trace context of the span
  that sent the message; absent when there is none, so an 8-item header stays
  valid). The broker decodes only this frame to route (``route_info``).
* ``body`` is a msgpack array of the field values of a frozen dataclass
  registered under ``type`` with :func:`message` (see ``bus/messages.py``).

``decode`` raises :class:`ProtocolError` on *any* bad input (malformed,
truncated, oversized, wrong version, unknown type, wrong field types) and
never anything else; it never uses ``assert``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Sequence

import msgpack

from swarm_core.errors import ProtocolError
from swarm_core.wire import spec_of

VERSION = 1
DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB for a whole message (header + body)
MAX_HEADER_BYTES = 1024
# W3C trace-context ``traceparent``: version-traceid-spanid-flags, lower-case hex
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_is_traceparent = _TRACEPARENT.fullmatch


class Kind(IntEnum):
    """What a message is for."""

    REQUEST = 0
    REPLY = 1
    EVENT = 2
    ERROR = 3
    HEARTBEAT = 4


_KINDS = frozenset(int(k) for k in Kind)


@dataclass(frozen=True, slots=True)
class Header:
    """The routing envelope of a message."""

    kind: Kind
    type: str
    msg_id: str
    corr_id: str
    src: str
    dst: str
    deadline: float  # absolute, time.time() seconds; 0.0 means none
    traceparent: str = ""  # W3C trace context of the sending span; "" means none


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: its header and its body (a registered dataclass)."""

    header: Header
    body: Any

    @property
    def type(self) -> str:
        return self.header.type

    @property
    def src(self) -> str:
        return self.header.src


# --------------------------------------------------------------------------
# ids and headers

_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


def new_id() -> str:
    """A message id unique across processes (random prefix + counter)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def make_header(
    kind: Kind,
    type_name: str,
    src: str,
    dst: str,
    *,
    corr_id: str = "",
    timeout: float | None = None,
    deadline: float = 0.0,
    msg_id: str | None = None,
    traceparent: str = "",
) -> Header:
    """Build a header; ``timeout`` (seconds from now) sets an absolute deadline."""
    if timeout is not None:
        deadline = time.time() + timeout
    return Header(kind, type_name, msg_id or new_id(), corr_id, src, dst, float(deadline), traceparent)


# --------------------------------------------------------------------------
# encode / decode

_packb = msgpack.Packer(use_bin_type=True).pack


def pack_header(kind: int, type_name: str, msg_id: str, corr_id: str, src: str, dst: str,
                deadline: float, traceparent: str = "") -> bytes:
    """Pack header fields into a frame without building a Header (senders' fast path)."""
    fields: tuple = (VERSION, int(kind), type_name, msg_id, corr_id, src, dst, float(deadline))
    if traceparent:
        fields += (traceparent,)
    return msgpack.packb(fields, use_bin_type=True)


def encode_header(h: Header) -> bytes:
    """Pack a header into its frame."""
    return pack_header(h.kind, h.type, h.msg_id, h.corr_id, h.src, h.dst, h.deadline, h.traceparent)


def encode_body(body: Any) -> bytes:
    """Pack a registered dataclass body into its frame."""
    spec = spec_of(getattr(body, "TYPE", None) or "")
    if spec is None or type(body) is not spec.cls:
        raise ProtocolError(f"cannot encode unregistered body {type(body).__name__}")
    try:
        return msgpack.packb(spec.values(body), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"cannot encode {spec.cls.TYPE} body: {exc}") from None


def encode(header: Header, body: Any) -> list[bytes]:
    """Encode a message into its two frames ``[header, body]``."""
    if header.type != getattr(body, "TYPE", None):
        raise ProtocolError(f"header type {header.type!r} does not match body {type(body).__name__}")
    return [encode_header(header), encode_body(body)]


def _unpack(frame: bytes, what: str, max_bytes: int) -> Any:
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"{what} frame is not bytes")
    if len(frame) > max_bytes:
        raise ProtocolError(f"{what} frame of {len(frame)} bytes exceeds the limit of {max_bytes}")
    try:
        # unpackb bounds every length by the frame's own size
        return msgpack.unpackb(frame, raw=False, strict_map_key=True, max_ext_len=0)
    except Exception as exc:  # msgpack raises a zoo of types on junk
        raise ProtocolError(f"malformed {what} frame: {type(exc).__name__}: {exc}") from None


_unpackb = msgpack.unpackb
_KIND_BY_INT = tuple(Kind(i) for i in range(len(Kind)))

RouteInfo = tuple  # (kind, type, msg_id, corr_id, src, dst, deadline, traceparent)


def route_info(frame: bytes) -> RouteInfo:
    """Validate a header frame: ``(kind, type, msg_id, corr_id, src, dst, deadline, traceparent)``.

    The broker's fast path: the same checks as :func:`decode_header` (raises
    ProtocolError on any bad frame) without building a Header; ``kind`` is
    a plain int, ``traceparent`` "" when the frame has none.
    """
    if type(frame) is not bytes:
        if not isinstance(frame, (bytearray, memoryview)):
            raise ProtocolError("header frame is not bytes")
        frame = bytes(frame)
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(
            f"header frame of {len(frame)} bytes exceeds the limit of {MAX_HEADER_BYTES}")
    try:
        # unpackb bounds every length by the frame's own size
        raw = _unpackb(frame, raw=False, strict_map_key=True, max_ext_len=0)
    except Exception as exc:  # msgpack raises a zoo of types on junk
        raise ProtocolError(f"malformed header frame: {type(exc).__name__}: {exc}") from None
    if type(raw) is not list:
        raise ProtocolError("header is not an 8-item array")
    if len(raw) == 8:
        ver, kind, type_name, msg_id, corr_id, src, dst, deadline = raw
        traceparent = ""
    elif len(raw) == 9:
        ver, kind, type_name, msg_id, corr_id, src, dst, deadline, traceparent = raw
        if type(traceparent) is not str or _is_traceparent(traceparent) is None:
            raise ProtocolError("header field traceparent is not a W3C traceparent")
    else:
        raise ProtocolError("header is not an 8-item array (or 9 with a traceparent)")
    if (ver == VERSION and type(ver) is int and type(kind) is int and kind in _KINDS
            and type(type_name) is str and type(msg_id) is str and type(corr_id) is str
            and type(src) is str and type(dst) is str
            and (type(deadline) is float or type(deadline) is int)):
        return kind, type_name, msg_id, corr_id, src, dst, deadline, traceparent
    _raise_header_error(raw)
    raise ProtocolError("invalid header")  # not reached: _raise_header_error raises


def _raise_header_error(raw: list) -> None:
    ver, kind, type_name, msg_id, corr_id, src, dst, deadline = raw[:8]
    if ver != VERSION or type(ver) is not int:
        raise ProtocolError(f"unsupported protocol version {ver!r} (this side speaks {VERSION})")
    if type(kind) is not int or kind not in _KINDS:
        raise ProtocolError(f"unknown message kind {kind!r}")
    for name, value in (("type", type_name), ("msg_id", msg_id), ("corr_id", corr_id),
                        ("src", src), ("dst", dst)):
        if type(value) is not str:
            raise ProtocolError(f"header field {name} is not a string")
    raise ProtocolError("header field deadline is not a number")


def request_id_of(frame: bytes) -> str | None:
    """Best effort, for error replies: the msg_id of a frame that looks like a REQUEST header.

    Used when a header failed validation (say, a wrong version) but is
    readable enough to tell that its sender waits for an answer. Returns
    None for anything else; never raises.
    """
    try:
        if not isinstance(frame, (bytes, bytearray, memoryview)) or len(frame) > MAX_HEADER_BYTES:
            return None
        raw = _unpackb(frame, raw=False, strict_map_key=True, max_ext_len=0)
    except Exception:  # junk: nobody to answer
        return None
    if type(raw) is list and len(raw) >= 4 and raw[1] == int(Kind.REQUEST) \
            and type(raw[1]) is int and type(raw[3]) is str and raw[3]:
        return raw[3]
    return None


# Header's frozen __init__ sets each field through object.__setattr__; the
# slot descriptors do the same at a third of the cost (decode is a hot path)
_new = object.__new__
(_set_kind, _set_type, _set_msg_id, _set_corr_id, _set_src, _set_dst, _set_deadline,
 _set_traceparent) = (getattr(Header, f.name).__set__ for f in dataclasses.fields(Header))


def _make_header(kind: int, type_name: str, msg_id: str, corr_id: str, src: str, dst: str,
                 deadline: float, traceparent: str) -> Header:
    h = _new(Header)
    _set_kind(h, _KIND_BY_INT[kind])
    _set_type(h, type_name)
    _set_msg_id(h, msg_id)
    _set_corr_id(h, corr_id)
    _set_src(h, src)
    _set_dst(h, dst)
    _set_deadline(h, float(deadline))
    _set_traceparent(h, traceparent)
    return h


def decode_header(frame: bytes) -> Header:
    """Decode only the header frame (what the broker reads to route)."""
    return _make_header(*route_info(frame))


def decode_body(type_name: str, frame: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode a body frame into the dataclass registered for ``type_name``."""
    spec = spec_of(type_name)
    if spec is None:
        raise ProtocolError(f"unknown message type {type_name!r}", type=type_name)
    raw = _unpack(frame, "body", max_bytes)
    if type(raw) is not list:
        raise ProtocolError(f"{type_name} body is not an array")
    if not spec.required <= len(raw) <= len(spec.names):
        raise ProtocolError(
            f"{type_name} body has {len(raw)} fields, expected "
            f"{spec.required}..{len(spec.names)}"
        )
    for name, check, value in zip(spec.names, spec.checks, raw):
        if not check(value):
            raise ProtocolError(f"{type_name}.{name} has the wrong type ({type(value).__name__})")
    try:
        return spec.cls(*raw)
    except Exception as exc:  # a __post_init__ may validate further
        raise ProtocolError(f"invalid {type_name} body: {exc}") from None


def decode(frames: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode ``[header, body]`` frames into a Message, or raise ProtocolError."""
    if not isinstance(frames, (list, tuple)) or len(frames) != 2:
        n = len(frames) if isinstance(frames, (list, tuple)) else "?"
        raise ProtocolError(f"expected 2 frames (header, body), got {n}")
    total = 0
    for f in frames:
        if not isinstance(f, (bytes, bytearray, memoryview)):
            raise ProtocolError("frame is not bytes")
        total += len(f)
    if total > max_bytes:
        raise ProtocolError(f"message of {total} bytes exceeds the limit of {max_bytes}")
    header = decode_header(frames[0])
    return Message(header, decode_body(header.type, frames[1], max_bytes))
