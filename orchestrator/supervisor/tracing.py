"""The supervisor's part of the swarm's one trace: its own spans, and the one exporter.

* ``start_agent ID``: from the spawn request to the agent's ``ready`` (or
  its failure). The root's has no parent: it is the trace's root, so every
  span of the run descends from it. A sub-agent's is a child of the
  parent's ``execute_tool start_agent`` span (its context came in the
  request's header); the new agent gets its context in its spec, and its
  steps are children of it.
* ``kill ID``, ``freeze ID``, ``thaw ID``: one span per control action,
  child of the request's span when it came from an agent, else of the
  target's ``start_agent`` span (an operator's action joins the run's trace).
* ``approval ID``: from the hold (or the budget pause) to the decision,
  child of the span the request came in under (a held command: the
  agent's ``step N`` span), else of the agent's ``start_agent`` span. Its
  end carries ``swarm.approval.decision`` (approved, denied, cancelled),
  ``swarm.approval.by`` (operator, timeout, budget_raised, supervisor) and
  ``swarm.approval.text`` (the note or the reason). A request still pending
  when the supervisor goes down ends its span with decision ``pending``
  (``--resume`` takes the request over; its decision then has no span).
* Spans other processes send (:class:`TraceSpans`) are checked and exported
  here; an agent may only send spans about itself.

With tracing off (``OTEL_SDK_DISABLED=true``) every method does nothing and
the SDK is never imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm_core.peers import GATEWAY
from swarm_core.tracing import CURRENT, Recorder, Span


class SupervisorTracing:
    """Spans of spawns and control actions, and the export of everybody's spans.

    ``export`` is the SDK exporter (:class:`orchestrator.tracing.export.TraceExport`),
    None when tracing is off; :meth:`for_run` builds the real one.
    """

    def __init__(self, log: Any, export: Any = None, *, on: bool | None = None) -> None:
        self.log = log
        self.recorder = Recorder("supervisor", on=on)
        self._export = export if self.recorder.on else None
        self._started: dict[str, str] = {}  # agent id -> traceparent of its start_agent span
        self._open: dict[str, Span] = {}  # spawns not yet ready
        self._held: dict[str, Span] = {}  # approval requests not yet decided, by request id
        self._root = ""
        self.rejected = 0

    @classmethod
    def for_run(cls, run_dir: Path, swarm_name: str, log: Any, *, on: bool | None = None) -> "SupervisorTracing":
        """The run's tracing: exporting to RUN_DIR (and OTLP when configured) unless tracing is off."""
        tracing = cls(log, on=on)
        if tracing.recorder.on:
            from orchestrator.tracing.export import TraceExport

            tracing._export = TraceExport(Path(run_dir), swarm_name)
        return tracing

    @classmethod
    def off(cls) -> "SupervisorTracing":
        """Tracing that records nothing (parts built without a run, e.g. in unit tests)."""
        return cls(None, on=False)

    # ------------------------------------------------------------ our spans

    def spawn_started(self, agent_id: str, parent_id: str | None) -> str:
        """Open ``start_agent ID``; return the traceparent the agent starts with ("" when off)."""
        parent_tp = CURRENT.get() or self._started.get(agent_id, "") or (self._root if parent_id else "")
        span = self.recorder.start(f"start_agent {agent_id}", parent_tp, agent=agent_id, **{
            "gen_ai.operation.name": "create_agent", "gen_ai.agent.name": agent_id,
            "swarm.agent.id": agent_id, "swarm.parent.id": parent_id or ""})
        if span is None:
            return ""
        if parent_id is None and not self._root:
            self._root = span.traceparent
        self._started[agent_id] = span.traceparent
        self._open[agent_id] = span
        return span.traceparent

    def spawn_ended(self, agent_id: str, outcome: str) -> None:
        """Close the agent's open ``start_agent`` span (``ready``, ``start_timeout``, ...)."""
        span = self._open.pop(agent_id, None)
        if span is not None:
            self.recorder.end(span, **{"swarm.outcome": outcome})
            self._flush()

    def control(self, action: str, agent_id: str, **attributes: Any) -> None:
        """One finished span for a control action (kill, freeze, thaw) on ``agent_id`` ("" = all)."""
        parent = CURRENT.get() or self._started.get(agent_id, "") or self._root
        target = agent_id or "*"
        span = self.recorder.start(f"{action} {target}", parent, agent=agent_id or "supervisor", **{
            "swarm.agent.id": agent_id or "supervisor", "swarm.action": action, **attributes})
        self.recorder.end(span)
        self._flush()

    def approval_held(self, request_id: str, agent_id: str, kind: str, command: str = "") -> None:
        """Open ``approval REQUEST_ID`` (under the current span: the held step's)."""
        parent = CURRENT.get() or self._started.get(agent_id, "") or self._root
        span = self.recorder.start(f"approval {request_id}", parent, agent=agent_id,
                                   **_approval_attrs(request_id, agent_id, kind, command))
        if span is not None:
            self._held[request_id] = span

    def held_requests(self) -> list[str]:
        """Ids of the requests whose ``approval`` span is still open."""
        return list(self._held)

    def approval_decided(self, request_id: str, decision: str, by: str, text: str = "") -> None:
        """Close the request's open span with its decision, who decided it and why."""
        span = self._held.pop(request_id, None)
        if span is None:
            return
        self.recorder.end(span, **{"swarm.approval.decision": decision, "swarm.approval.by": by,
                                   "swarm.approval.text": text})
        self._flush()

    # ------------------------------------------------------------ others' spans

    def receive(self, sender: str, raw_spans: list[Any]) -> None:
        """Export spans another process sent; malformed or foreign ones are dropped and counted."""
        if self._export is None:
            return
        good: list[Span] = []
        for raw in raw_spans:
            try:
                span = Span.from_wire(raw)
            except ValueError:
                self.rejected += 1
                continue
            if sender != GATEWAY and span.agent != sender:
                self.rejected += 1  # an agent speaks only for itself
                continue
            good.append(span)
        if len(good) < len(raw_spans):
            self.log.warning("spans_rejected", sender=sender, rejected=len(raw_spans) - len(good))
        self._export.export(good)

    # ------------------------------------------------------------ plumbing

    def _flush(self) -> None:
        spans = [Span.from_wire(raw) for raw in self.recorder.drain()]
        if self._export is not None and spans:
            self._export.export(spans)

    def close(self) -> None:
        """End spawns still open (the swarm is going down) and flush every exporter."""
        for agent_id in list(self._open):
            self.spawn_ended(agent_id, "shutdown")
        for request_id in list(self._held):  # still pending: --resume takes them over
            self.approval_decided(request_id, "pending", "shutdown")
        if self._export is not None:
            self._export.shutdown()
            self._export = None


def _approval_attrs(request_id: str, agent_id: str, kind: str, command: str) -> dict[str, Any]:
    return {"swarm.agent.id": agent_id, "swarm.action": "approval", "swarm.approval.id": request_id,
            "swarm.approval.kind": kind, "swarm.approval.command": command}
