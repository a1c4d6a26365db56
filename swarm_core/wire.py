"""Message bodies as data: the registry of every type that may cross the bus.

A body is a small frozen dataclass with a ``TYPE`` class constant, registered
with :func:`message`. The registry keeps, per type, the field names, a cheap
type check per field and how many fields are required, so the wire module
(``bus/protocol.py``, the only one that knows the encoding) can decode a
body positionally and refuse a wrong one with :class:`ProtocolError`.

This module is pure Python: it knows no encoding and no sockets.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from swarm_core.errors import ProtocolError

_Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class BodySpec:
    cls: type
    names: tuple[str, ...]
    checks: tuple[_Check, ...]
    required: int  # fields without a default
    values: Callable[[Any], tuple]  # body -> its field values, in order


_REGISTRY: dict[str, BodySpec] = {}


def _is_str(v: Any) -> bool:
    return type(v) is str


def _any(v: Any) -> bool:
    return True


def _check_for(tp: Any) -> _Check:
    """Build a cheap type check for one field annotation."""
    if tp is Any or tp is object:
        return _any
    if tp is str:
        return _is_str
    if tp is bool:
        return lambda v: type(v) is bool
    if tp is int:
        return lambda v: type(v) is int
    if tp is float:
        return lambda v: type(v) in (float, int)
    if tp is bytes:
        return lambda v: type(v) is bytes
    if tp is type(None):
        return lambda v: v is None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        checks = [_check_for(a) for a in args]
        return lambda v: any(c(v) for c in checks)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        inner = _check_for(args[0]) if args and args[0] is not Ellipsis else _any
        return lambda v: type(v) in (list, tuple) and all(inner(x) for x in v)
    if origin is dict or tp is dict:
        kc = _check_for(args[0]) if args else _any
        vc = _check_for(args[1]) if len(args) > 1 else _any
        return lambda v: type(v) is dict and all(kc(k) and vc(x) for k, x in v.items())
    raise TypeError(f"unsupported field annotation on the wire: {tp!r}")


def message(cls: type) -> type:
    """Register a frozen dataclass with a ``TYPE`` constant as a message body."""
    type_name = getattr(cls, "TYPE", None)
    if not isinstance(type_name, str) or not type_name:
        raise TypeError(f"{cls.__name__} needs a TYPE class constant")
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} must be a frozen dataclass")
    if type_name in _REGISTRY and _REGISTRY[type_name].cls is not cls:
        raise TypeError(f"message type {type_name!r} registered twice")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    required = sum(
        1 for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    names = tuple(f.name for f in fields)
    _REGISTRY[type_name] = BodySpec(
        cls=cls,
        names=names,
        checks=tuple(_check_for(hints[f.name]) for f in fields),
        required=required,
        values=_values_getter(names),
    )
    return cls


def _values_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    if not names:
        return lambda body: ()
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda body: (get(body),)
    return operator.attrgetter(*names)


def registered_types() -> dict[str, type]:
    """Every registered message type name and its class."""
    return {name: spec.cls for name, spec in _REGISTRY.items()}


def body_class(type_name: str) -> type:
    """Return the class registered for ``type_name`` or raise ProtocolError."""
    spec = _REGISTRY.get(type_name)
    if spec is None:
        raise ProtocolError(f"unknown message type {type_name!r}", type=type_name)
    return spec.cls


def spec_of(type_name: str) -> BodySpec | None:
    """The registered spec of ``type_name``, or None."""
    return _REGISTRY.get(type_name)
