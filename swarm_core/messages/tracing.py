"""Message bodies: finished spans, sent to the supervisor (the swarm's one exporter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class TraceSpans:
    """Finished spans of the sender, each the wire list of :class:`swarm_core.tracing.Span`."""

    TYPE = "trace_spans"
    spans: list[Any]
