"""The dashboard's JSON API: a route table and its handlers (a contract; see DESIGN.md).

``Api.handle(request)`` never raises: an unknown route is 404, a bad body
400, an unknown agent or approval request id 404, a request decided
already 409, a swarm that is down 503, and every error is
``{"error": {"code": ..., "message": ...}}``. Reads come from
:class:`~orchestrator.dashboard.source.RunSource`; operator actions go
through an ``actions`` port (by default :class:`RunctlActions`: the CLI's
own path to the supervisor). ``GET /api/events`` is the server's stream,
not a route here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from orchestrator import runctl
from orchestrator.dashboard import history
from orchestrator.dashboard.source import RunSource
from orchestrator.tracing import store as traces
from swarm_core.errors import (
    BusError,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    NotRunning,
    OperatorError,
    PolicyDenied,
    SwarmError,
    UsageError,
)

MAX_BODY = 64 * 1024
MAX_MESSAGE = 20_000
MAX_NOTE = 4_000  # an approval's note or reason: the model reads it as the command's result
STEP_LOG_EVENTS = 5000  # log events read to build a step history

# the HTTP status of each error class (the most specific class wins)
_STATUS: dict[type[SwarmError], int] = {
    InvalidRequest: 400, UsageError: 400, NotFound: 404, PolicyDenied: 409, OperatorError: 409,
    NotRunning: 503, DeadlineExceeded: 504, BusError: 502, SwarmError: 500,
}


@dataclass(frozen=True)
class Request:
    """What a handler sees of an HTTP request."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """A JSON response."""

    status: int
    body: Any


class RunctlActions:
    """Operator actions through :mod:`orchestrator.runctl`, exactly as the CLI takes them."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def kill(self, agent_id: str) -> dict[str, Any]:
        return {"stopped": runctl.kill_agent(self.run_dir, agent_id)}

    def freeze(self, agent_id: str, frozen: bool) -> dict[str, Any]:
        return {"agents": runctl.freeze_agent(self.run_dir, agent_id, frozen)}

    def send(self, agent_id: str, text: str) -> dict[str, Any]:
        runctl.send_message(self.run_dir, agent_id, text)
        return {"sent": True}

    def decide(self, request_id: str, approve: bool, text: str) -> dict[str, Any]:
        return runctl.decide_request(self.run_dir, request_id, approve, text)


Handler = Callable[["Api", Request, str], Any]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` on a path pattern (``{id}`` captures one segment)."""
    rx = re.compile("^" + pattern.replace("{id}", "(?P<id>[^/]+)") + "$")

    def deco(fn: Handler) -> Handler:
        _ROUTES.append((method, rx, fn))
        return fn
    return deco


class Api:
    """Dispatches API requests to the handlers registered with :func:`route`."""

    def __init__(self, run_dir: Path, actions: Any = None, source: RunSource | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.source = source or RunSource(run_dir)
        self.actions = actions or RunctlActions(run_dir)

    def handle(self, req: Request) -> Response:
        """The response to ``req``; never raises."""
        allowed: list[str] = []
        for method, rx, fn in _ROUTES:
            match = rx.match(req.path)
            if match is None:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            try:
                return Response(200, fn(self, req, unquote(match.groupdict().get("id") or "")))
            except SwarmError as exc:
                return error_response(_status_of(exc), exc.code, exc.message)
        if allowed:
            return error_response(405, "method_not_allowed",
                                  f"{req.method} is not allowed on {req.path} (allowed: {', '.join(allowed)})")
        return error_response(404, "no_route", f"no API route {req.path}")


def error_response(status: int, code: str, message: str) -> Response:
    """The one shape of every API error."""
    return Response(status, {"error": {"code": code, "message": message}})


def _status_of(exc: SwarmError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def json_object(body: bytes, *, allow_empty: bool) -> dict[str, Any]:
    """The request body as a JSON object; InvalidRequest (400) for anything else."""
    if not body.strip():
        if allow_empty:
            return {}
        raise InvalidRequest("the request body must be a JSON object")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def _int_param(req: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"query parameter {name} must be in {lo}..{hi}, got {value}")
    return value


# ------------------------------------------------------------------ reads


@route("GET", "/api/swarm")
def _swarm(api: Api, req: Request, _: str) -> Any:
    return api.source.swarm()


@route("GET", "/api/agents")
def _agents(api: Api, req: Request, _: str) -> Any:
    return api.source.agents()


@route("GET", "/api/agents/{id}")
def _agent(api: Api, req: Request, agent_id: str) -> Any:
    return api.source.agent(agent_id)


@route("GET", "/api/agents/{id}/steps")
def _steps(api: Api, req: Request, agent_id: str) -> Any:
    limit = _int_param(req, "limit", 100, 1, 1000)
    return history.steps_of(api.source.log_events(agent_id, STEP_LOG_EVENTS), limit)


@route("GET", "/api/agents/{id}/logs")
def _logs(api: Api, req: Request, agent_id: str) -> Any:
    return api.source.log_events(agent_id, _int_param(req, "n", 200, 1, 5000))


MAX_SPANS = 5000  # a waterfall of more is unreadable; the newest are dropped


@route("GET", "/api/agents/{id}/trace")
def _agent_trace(api: Api, req: Request, agent_id: str) -> Any:
    api.source.agent(agent_id)
    return traces.subtree(traces.read_spans(api.run_dir), agent_id)[:MAX_SPANS]


@route("GET", "/api/trace")
def _trace(api: Api, req: Request, _: str) -> Any:
    return traces.read_spans(api.run_dir)[:MAX_SPANS]


@route("GET", "/api/usage")
def _usage(api: Api, req: Request, _: str) -> Any:
    agent_id = req.query.get("agent") or None
    if agent_id is not None:
        api.source.agent(agent_id)
    return {"agent": agent_id, **traces.usage(traces.read_spans(api.run_dir), agent_id)}


# ------------------------------------------------------------------ actions


def _act(api: Api, req: Request, agent_id: str, action: Callable[[], Any]) -> Any:
    json_object(req.body, allow_empty=True)
    api.source.agent(agent_id)  # 404 for an unknown id, even when the swarm is down
    return action()


@route("POST", "/api/agents/{id}/kill")
def _kill(api: Api, req: Request, agent_id: str) -> Any:
    return _act(api, req, agent_id, lambda: api.actions.kill(agent_id))


@route("POST", "/api/agents/{id}/freeze")
def _freeze(api: Api, req: Request, agent_id: str) -> Any:
    return _act(api, req, agent_id, lambda: api.actions.freeze(agent_id, True))


@route("POST", "/api/agents/{id}/thaw")
def _thaw(api: Api, req: Request, agent_id: str) -> Any:
    return _act(api, req, agent_id, lambda: api.actions.freeze(agent_id, False))


@route("POST", "/api/agents/{id}/messages")
def _message(api: Api, req: Request, agent_id: str) -> Any:
    data = json_object(req.body, allow_empty=False)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest('the body needs "text": a non-empty string')
    if len(text) > MAX_MESSAGE:
        raise InvalidRequest(f'"text" is {len(text)} characters; at most {MAX_MESSAGE}')
    api.source.agent(agent_id)
    return api.actions.send(agent_id, text)


# ------------------------------------------------------------------ approvals


@route("GET", "/api/approvals")
def _approvals(api: Api, req: Request, _: str) -> Any:
    return api.source.approvals()


def _decide(api: Api, req: Request, request_id: str, approve: bool, key: str) -> Any:
    """Approve or deny through the operator port; ``key`` ("note" or "reason") is the optional text."""
    data = json_object(req.body, allow_empty=True)
    text = data.get(key, "")
    if not isinstance(text, str):
        raise InvalidRequest(f'"{key}" must be a string')
    if len(text) > MAX_NOTE:
        raise InvalidRequest(f'"{key}" is {len(text)} characters; at most {MAX_NOTE}')
    api.source.approval(request_id)  # 404 for an unknown id, even when the swarm is down
    return api.actions.decide(request_id, approve, text.strip())


@route("POST", "/api/approvals/{id}/approve")
def _approve(api: Api, req: Request, request_id: str) -> Any:
    return _decide(api, req, request_id, True, "note")


@route("POST", "/api/approvals/{id}/deny")
def _deny(api: Api, req: Request, request_id: str) -> Any:
    return _decide(api, req, request_id, False, "reason")
