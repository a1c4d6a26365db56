"""The gateway's model-call spans: one ``chat MODEL`` span per call, sent to the supervisor in batches.

The supervisor is the swarm's one exporter; the gateway only records spans
(plain data, :class:`swarm_core.tracing.Recorder`) and sends the finished ones
at most every :data:`swarm_core.tracing.SPAN_FLUSH_S` seconds, so telemetry never adds a message
to the path of a call.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from swarm_core import messages as m
from swarm_core.tracing import Recorder, Span


class CallSpans:
    """Start, end and flush the spans of model calls (GenAI semantic conventions)."""

    def __init__(self, provider: str, model: str, send: Callable[[m.TraceSpans], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.model = model
        self.tracer = Recorder("gateway")
        self._send = send
        self._clock = clock  # telemetry pacing runs on real time, not the quota clock

    def start(self, agent: str, traceparent: str) -> Span | None:
        """A call's span under the caller's ``traceparent``, from its arrival at the gateway."""
        return self.tracer.start(f"chat {self.model}", traceparent, agent=agent, **{
            "gen_ai.operation.name": "chat", "gen_ai.request.model": self.model,
            "gen_ai.provider.name": self.provider, "swarm.agent.id": agent})

    def end(self, call: Any, **attributes: object) -> None:
        """End ``call.span`` once (a second end is a no-op); :meth:`flush` sends it on."""
        if call.span is not None:
            self.tracer.end(call.span, **attributes)
            call.span = None

    def flush(self, force: bool = False) -> None:
        """Send the finished spans, at most every SPAN_FLUSH_S seconds unless ``force``."""
        spans = self.tracer.batch(self._clock(), force)
        if spans:
            self._send(m.TraceSpans(spans))
