"""The dashboard's HTTP server on a real loopback socket: the token on every route, the cookie, the SSE stream."""

from __future__ import annotations

import http.client
import json
import os
import stat
import time
from pathlib import Path

import pytest

from orchestrator.dashboard.api import Api
from orchestrator.dashboard.events import EventHub
from orchestrator.dashboard.server import COOKIE, DashboardServer, serve_in_thread
from orchestrator.supervisor.approvals import ApprovalBook, Kind, State
from orchestrator.supervisor.registry import AgentRecord, Registry
from tests.support import wait_until
from tests.unit.test_dashboard_api import FakeActions

pytestmark = pytest.mark.timeout(60)

ROUTES = [
    ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/static/approvals.js"), ("GET", "/static/style.css"),
    ("GET", "/api/swarm"),
    ("GET", "/api/agents"), ("GET", "/api/agents/w"), ("GET", "/api/agents/w/steps"), ("GET", "/api/agents/w/logs"),
    ("GET", "/api/agents/w/trace"), ("GET", "/api/trace"), ("GET", "/api/usage"), ("GET", "/api/events"),
    ("POST", "/api/agents/w/kill"), ("POST", "/api/agents/w/freeze"), ("POST", "/api/agents/w/thaw"),
    ("POST", "/api/agents/w/messages"), ("GET", "/api/approvals"), ("POST", "/api/approvals/req-1/approve"),
    ("POST", "/api/approvals/req-1/deny"),
]


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


def make_registry(run_dir: Path, *ids: str) -> None:
    reg = Registry(run_dir / "registry.db")
    reg.set_meta("name", "t")
    reg.set_meta("state", "running")
    for i, agent_id in enumerate(ids):
        reg.add(AgentRecord(id=agent_id, name=agent_id, role="r", parent=ids[0] if i else None, depth=min(i, 1),
                            status="running"))
    reg.close()


@pytest.fixture
def dash(tmp_path):
    make_registry(tmp_path, "root", "w")
    server = DashboardServer(tmp_path, "127.0.0.1", 0, NullLog(), api=Api(tmp_path, actions=FakeActions()),
                             hub=EventHub(tmp_path, NullLog(), interval=0.05))
    serve_in_thread(server)
    yield server
    server.shutdown()
    server.close()


def request(server, method, path, body=b"", headers=None, timeout=10.0):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return conn, resp


def fetch(server, method, path, body=b"", headers=None):
    conn, resp = request(server, method, path, body, headers)
    try:
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def bearer(server):
    return {"Authorization": f"Bearer {server.token}"}


def test_token_file_is_private_and_stable(dash, tmp_path):
    """The token lives in RUN_DIR/dashboard.token with mode 0600, and a second server reuses it."""
    path = tmp_path / "dashboard.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text().strip() == dash.token
    other = DashboardServer(tmp_path, "127.0.0.1", 0, NullLog())
    try:
        assert other.token == dash.token
    finally:
        other.server_close()


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_refuses_a_missing_or_wrong_token(dash, tmp_path, method, path):
    """No token, a wrong bearer, a wrong cookie: 401 on every page and API route, and no action taken."""
    body = b'{"text": "hi"}' if path.endswith("messages") else b""
    reg = Registry(tmp_path / "registry.db")
    ApprovalBook(reg.connection).add("w", Kind.COMMAND, 1.0, command="x")  # req-1: a real request to refuse
    reg.close()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{COOKIE}=wrong"},
                    {"Authorization": "Basic " + dash.token}):
        status, _, data = fetch(dash, method, path, body, headers)
        assert status == 401, (headers, data)
        if path.startswith("/api/"):
            assert json.loads(data)["error"]["code"] == "unauthorized"
    assert dash.api.actions.calls == []


def test_wrong_token_in_the_url_sets_no_cookie(dash):
    """GET /?token=WRONG is 401 without a cookie."""
    status, headers, _ = fetch(dash, "GET", "/?token=wrong")
    assert status == 401 and "Set-Cookie" not in headers


def test_token_url_sets_an_httponly_samesite_cookie_that_opens_the_page(dash):
    """GET /?token=T redirects to / with an HttpOnly SameSite=Strict cookie; the cookie then opens page and API."""
    status, headers, _ = fetch(dash, "GET", f"/?token={dash.token}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    status, headers, page = fetch(dash, "GET", "/", headers=jar)
    assert status == 200 and b"/static/app.js" in page and "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, js = fetch(dash, "GET", "/static/app.js", headers=jar)
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"EventSource" in js
    assert fetch(dash, "GET", "/api/agents", headers=jar)[0] == 200


def test_bearer_token_reaches_the_api_and_actions(dash):
    """With the bearer token, reads answer and a kill reaches the operator path."""
    status, _, data = fetch(dash, "GET", "/api/agents", headers=bearer(dash))
    assert status == 200 and [a["id"] for a in json.loads(data)] == ["root", "w"]
    assert fetch(dash, "POST", "/api/agents/w/kill", headers=bearer(dash))[0] == 200
    assert dash.api.actions.calls == [("kill", "w")]


def test_cross_origin_post_is_refused(dash):
    """A POST whose Origin is another site is 403 even with the token; nothing is done."""
    headers = {**bearer(dash), "Origin": "http://evil.example"}
    assert fetch(dash, "POST", "/api/agents/w/kill", headers=headers)[0] == 403
    assert dash.api.actions.calls == []


def test_oversized_and_unknown_requests(dash):
    """A body over the limit is 413, an unknown asset 404: JSON errors, never a traceback."""
    status, _, data = fetch(dash, "POST", "/api/agents/w/messages", b"x" * (65 * 1024), bearer(dash))
    assert status == 413 and json.loads(data)["error"]["code"] == "too_large"
    status, _, data = fetch(dash, "GET", "/static/../../etc/passwd", headers=bearer(dash))
    assert status == 404 and b"Traceback" not in data


class Stream:
    """A connected SSE client reading events off a real socket."""

    def __init__(self, server):
        self.conn, self.resp = request(server, "GET", "/api/events", headers=bearer(server))
        assert self.resp.status == 200 and self.resp.getheader("Content-Type") == "text/event-stream"

    def next_any(self) -> tuple[str, dict]:
        """The next event (the socket's timeout bounds the wait)."""
        event, data = None, None
        while True:
            line = self.resp.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and event is not None:
                return event, data

    def next(self, kind: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event, data = self.next_any()
            if event == kind:
                return data
        raise AssertionError(f"no {kind} event within {timeout}s")

    def close(self):
        self.conn.close()


def test_stream_starts_with_a_snapshot_and_sends_each_change(dash, tmp_path):
    """The stream's first event is the whole swarm; a status change in the registry arrives as an agent event."""
    stream = Stream(dash)
    try:
        snap = stream.next("snapshot")
        assert snap["swarm"]["name"] == "t" and [a["id"] for a in snap["agents"]] == ["root", "w"]
        reg = Registry(tmp_path / "registry.db")
        reg.update("w", status="frozen")
        reg.log_event("w", "frozen", "operator")
        reg.close()
        assert stream.next("agent") == {**snap["agents"][1], "status": "frozen"}
        assert stream.next("event")["event"] == "frozen"
    finally:
        stream.close()


def test_stream_sees_a_new_swarm_in_the_same_run_dir(dash, tmp_path):
    """When the registry file is replaced (a new swarm up), clients get a fresh snapshot of the new swarm."""
    stream = Stream(dash)
    try:
        stream.next("snapshot")
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"registry.db{suffix}").unlink(missing_ok=True)
        make_registry(tmp_path, "other")
        # the page's view: a snapshot resets it, agent events add to it
        view: dict[str, dict] = {}

        def seen_other() -> bool:
            kind, data = stream.next_any()
            if kind == "snapshot":
                view.clear()
                view.update({a["id"]: a for a in data["agents"]})
            elif kind == "agent":
                view[data["id"]] = data
            return "other" in view

        wait_until(seen_other, 20, "the new swarm's agent")
        assert list(view) == ["other"]
    finally:
        stream.close()


def test_stream_sends_the_pending_approvals_when_they_change(dash, tmp_path):
    """A request made, then decided, reaches the stream as an approvals event (the whole pending list)."""
    stream = Stream(dash)
    reg = Registry(tmp_path / "registry.db")
    try:
        assert stream.next("snapshot")["approvals"] == []
        book = ApprovalBook(reg.connection)
        req = book.add("w", Kind.COMMAND, 5.0, command="write_to_file", args={"file": "a"}, thoughts="t")
        assert stream.next("approvals") == [req.listing()]
        book.decide(req.id, State.APPROVED, "", 6.0)
        assert stream.next("approvals") == []
        later = book.add("root", Kind.BUDGET, 7.0, budget_of="root")
        assert stream.next("approvals") == [later.listing()]
        other = Stream(dash)  # a page that connects later gets the list in its snapshot
        try:
            assert other.next("snapshot")["approvals"] == [later.listing()]
        finally:
            other.close()
    finally:
        reg.close()
        stream.close()
