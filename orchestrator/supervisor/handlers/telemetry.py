"""Bus handler for telemetry: finished spans from agents and the gateway, for the run's one exporter."""

from __future__ import annotations

from typing import Any, Callable

from bus.protocol import Message
from orchestrator.supervisor.parts import Parts
from swarm_core import messages as m


class TelemetryHandlers:
    """Handlers of the spans other processes send the supervisor."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.TraceSpans: self.spans}

    def spans(self, msg: Message) -> None:
        """Check and export them (an agent may only send spans about itself)."""
        self.p.tracing.receive(msg.header.src, msg.body.spans)
