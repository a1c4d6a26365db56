"""Spans as plain data: what agents, the gateway and the supervisor measure.

Processes of the swarm record spans without the OpenTelemetry SDK (agents
stay light: see bench/spawn.py and bench/scale.py) and send finished spans
to the supervisor in :class:`~swarm_core.messages.tracing.TraceSpans`; the
supervisor alone exports them with the SDK (``orchestrator/tracing``).

Context propagation is W3C trace context: the span a thread is in is
:data:`CURRENT` (a ``traceparent`` string), which the bus client puts into
the header of every message it sends, so a request's handler can make its
own span a child of the sender's, across processes.

``OTEL_SDK_DISABLED=true`` (the OpenTelemetry switch) turns recording off.
"""

from __future__ import annotations

import math
import os
import re
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

SPAN_FLUSH_S = 0.5  # finished spans leave a process at most this often (in batches)

CURRENT: ContextVar[str] = ContextVar("swarm_traceparent", default="")

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ATTR_TYPES = (str, int, float, bool)


def enabled(env: dict[str, str] | None = None) -> bool:
    """Whether tracing is on (the standard ``OTEL_SDK_DISABLED`` turns it off)."""
    value = (env if env is not None else os.environ).get("OTEL_SDK_DISABLED", "")
    return value.strip().lower() != "true"


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def format_traceparent(trace_id: str, span_id: str) -> str:
    """The W3C ``traceparent`` of a sampled span."""
    return f"00-{trace_id}-{span_id}-01"


def parse_traceparent(text: str) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a version-00 traceparent; None for anything else (or all-zero ids)."""
    match = _TRACEPARENT.fullmatch(text or "")
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1), match.group(2)


@dataclass(slots=True)
class Span:
    """One span; ``parent_span_id`` "" for a trace's root."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    agent: str
    start_ns: int
    end_ns: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def traceparent(self) -> str:
        return format_traceparent(self.trace_id, self.span_id)

    def set(self, **attributes: Any) -> None:
        """Add attributes (values of other types than str/int/float/bool are dropped)."""
        self.attributes.update({k: v for k, v in attributes.items() if isinstance(v, _ATTR_TYPES)})

    def to_wire(self) -> list[Any]:
        return [self.trace_id, self.span_id, self.parent_span_id, self.name, self.agent,
                self.start_ns, self.end_ns, self.attributes]

    def to_dict(self) -> dict[str, Any]:
        """The ``swarm trace --json`` shape."""
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_span_id or None,
                "name": self.name, "agent": self.agent, "start_ns": self.start_ns, "end_ns": self.end_ns,
                "attributes": dict(self.attributes)}

    @classmethod
    def from_wire(cls, raw: Any) -> "Span":
        """A span from its wire list; ValueError for anything malformed."""
        if not isinstance(raw, (list, tuple)) or len(raw) != 8:
            raise ValueError("a span is an 8-item list")
        trace_id, span_id, parent, name, agent, start, end, attrs = raw
        if parse_traceparent(format_traceparent(str(trace_id), str(span_id))) is None:
            raise ValueError("span has malformed ids")
        if parent and not re.fullmatch(r"[0-9a-f]{16}", str(parent)):
            raise ValueError("span has a malformed parent id")
        if not (isinstance(name, str) and isinstance(agent, str) and type(start) is int
                and type(end) is int and end >= start > 0 and isinstance(attrs, dict)):
            raise ValueError("span has malformed fields")
        span = cls(trace_id, span_id, parent or "", name[:200], agent[:200], start, end)
        span.set(**{str(k)[:200]: v for k, v in list(attrs.items())[:64]})
        return span


class Recorder:
    """Records this process's spans; :meth:`drain` hands the finished ones over (wire form)."""

    def __init__(self, agent: str, *, on: bool | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.agent = agent
        self.on = enabled() if on is None else on
        self.clock = clock
        self._done: list[list[Any]] = []
        self._batched_at = -math.inf  # when :meth:`batch` last handed spans over

    def start(self, name: str, parent: str = "", *, agent: str | None = None,
              **attributes: Any) -> Span | None:
        """A started span, child of ``parent`` (a traceparent; none or invalid: a new trace).

        ``agent`` names the agent the span is about (default: this recorder's).
        """
        if not self.on:
            return None
        ids = parse_traceparent(parent)
        trace_id, parent_id = ids if ids is not None else (new_trace_id(), "")
        span = Span(trace_id, new_span_id(), parent_id, name, agent or self.agent, self.clock())
        span.set(**attributes)
        return span

    def end(self, span: Span | None, **attributes: Any) -> None:
        """End ``span`` now (with more attributes) and keep it for :meth:`drain`."""
        if span is None:
            return
        span.set(**attributes)
        span.end_ns = max(self.clock(), span.start_ns)
        self._done.append(span.to_wire())

    @contextmanager
    def span(self, name: str, parent: str | None = None, **attributes: Any) -> Iterator[Span | None]:
        """A span around a block, child of ``parent`` (default: the current span), current inside it."""
        span = self.start(name, CURRENT.get() if parent is None else parent, **attributes)
        if span is None:
            yield None
            return
        token = CURRENT.set(span.traceparent)
        try:
            yield span
        finally:
            CURRENT.reset(token)
            self.end(span)

    def drain(self) -> list[list[Any]]:
        """The finished spans since the last drain (wire form), oldest first."""
        done, self._done = self._done, []
        return done

    def batch(self, now: float, force: bool = False, every: float = SPAN_FLUSH_S) -> list[list[Any]]:
        """:meth:`drain`, at most once every ``every`` seconds of ``now`` (a monotonic clock) unless
        ``force``: telemetry leaves a process in batches, never a message per span."""
        if not force and now - self._batched_at < every:
            return []
        done = self.drain()
        if done:  # an empty look does not push the next batch back
            self._batched_at = now
        return done
