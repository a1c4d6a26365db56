"""The dashboard's JSON API over a registry file, with fake operator actions: every route, its errors."""

from __future__ import annotations

import json

import pytest

from orchestrator.dashboard.api import Api, Request
from orchestrator.supervisor.approvals import ApprovalBook, Kind, State
from orchestrator.supervisor.registry import AgentRecord, Registry
from swarm_core.errors import NotRunning, OperatorError, PolicyDenied

pytestmark = pytest.mark.timeout(30)


class FakeActions:
    """Records each operator action; ``fail`` makes the next one raise."""

    def __init__(self):
        self.calls = []
        self.fail = None

    def _do(self, *call):
        if self.fail is not None:
            raise self.fail
        self.calls.append(call)

    def kill(self, agent_id):
        self._do("kill", agent_id)
        return {"stopped": 1}

    def freeze(self, agent_id, frozen):
        self._do("freeze" if frozen else "thaw", agent_id)
        return {"agents": 1}

    def send(self, agent_id, text):
        self._do("send", agent_id, text)
        return {"sent": True}

    def decide(self, request_id, approve, text):
        self._do("approve" if approve else "deny", request_id, text)
        return {"request": request_id, "agent": "w", "approved": approve}


@pytest.fixture
def api(tmp_path):
    reg = Registry(tmp_path / "registry.db")
    reg.set_meta("name", "t")
    reg.set_meta("state", "running")
    reg.add(AgentRecord(id="root", name="root", role="manager", parent=None, depth=0, status="running",
                        tokens=12, task="the goal"))
    reg.add(AgentRecord(id="w", name="w", role="worker", parent="root", depth=1, status="waiting"))
    reg.log_event("w", "spawned", "")
    book = ApprovalBook(reg.connection)
    book.add("w", Kind.COMMAND, 100.0, command="write_to_file", args={"file": "a"}, thoughts="I write a",
             step=1)
    book.add("root", Kind.BUDGET, 101.0, args={"reason": "over"}, budget_of="root")
    old = book.add("w", Kind.COMMAND, 99.0, command="delete_file", args={"file": "b"})
    book.decide(old.id, State.DENIED, "no", 99.5)
    reg.close()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "w.jsonl").write_text("\n".join(json.dumps(e) for e in [
        {"ts": 1.0, "event": "step_decided", "step": 1, "command": "write_to_file", "args": {"file": "a"},
         "thoughts": {"text": "write it", "plan": "- a"}},
        {"ts": 1.5, "event": "command_done", "step": 1, "command": "write_to_file", "ok": True, "result": "wrote a"},
        {"ts": 2.0, "event": "invalid_answer", "step": 2, "error": "not JSON"},
    ]) + "\n{torn")
    return Api(tmp_path, actions=FakeActions())


def call(api, method, path, body=b"", **query):
    resp = api.handle(Request(method, path, {k: str(v) for k, v in query.items()}, body))
    json.dumps(resp.body)  # every answer is JSON
    return resp


def test_agents_lists_the_ps_json_fields(api):
    """GET /api/agents returns every agent with at least the fields of swarm ps --json."""
    resp = call(api, "GET", "/api/agents")
    assert resp.status == 200 and [a["id"] for a in resp.body] == ["root", "w"]
    for field in ("id", "name", "role", "parent", "depth", "pid", "status", "steps", "tokens", "requests"):
        assert field in resp.body[0]


def test_agent_has_the_inspect_json_fields(api):
    """GET /api/agents/{id} returns the swarm inspect --json view: children and events too."""
    resp = call(api, "GET", "/api/agents/root")
    assert resp.status == 200 and resp.body["task"] == "the goal" and resp.body["children"] == ["w"]
    assert [e["event"] for e in call(api, "GET", "/api/agents/w").body["events"]] == ["spawned"]


def test_steps_fold_thoughts_command_and_result(api):
    """GET /api/agents/{id}/steps gives one entry per step: thoughts, command, args, result (a torn line skipped)."""
    steps = call(api, "GET", "/api/agents/w/steps").body
    assert steps[0]["thoughts"]["text"] == "write it" and steps[0]["command"] == "write_to_file"
    assert steps[0]["result"] == "wrote a" and steps[0]["ok"] is True
    assert steps[1]["command"] == "(invalid answer)" and steps[1]["ok"] is False


def test_a_denied_step_shows_the_result_the_model_reads(api, tmp_path):
    """A step whose command was denied folds into one entry: the command, not ok, the denial as its result."""
    with open(tmp_path / "logs" / "w.jsonl", "a") as fh:
        fh.write("\n" + "\n".join(json.dumps(e) for e in [
            {"ts": 3.0, "event": "step_decided", "step": 3, "command": "delete_file", "args": {"file": "b"},
             "thoughts": {"text": "clean up"}},
            {"ts": 3.5, "event": "approval_denied", "step": 3, "command": "delete_file", "reason": "keep it",
             "result": "delete_file was not run: approval denied (keep it)"}]) + "\n")
    step = call(api, "GET", "/api/agents/w/steps").body[-1]
    assert (step["step"], step["command"], step["ok"], step["result"]) == \
        (3, "delete_file", False, "delete_file was not run: approval denied (keep it)")


def test_log_tail_and_its_bounds(api):
    """GET /logs?n= returns the last n events; a non-number or out-of-range n is 400."""
    assert [e["event"] for e in call(api, "GET", "/api/agents/w/logs", n=1).body] == ["invalid_answer"]
    for bad in ("x", "0", "99999"):
        assert call(api, "GET", "/api/agents/w/logs", n=bad).status == 400


@pytest.mark.parametrize("path", ["kill", "freeze", "thaw"])
def test_actions_go_to_the_operator_port(api, path):
    """POST kill/freeze/thaw (empty body or {}) reach the operator actions for that agent."""
    assert call(api, "POST", f"/api/agents/w/{path}").status == 200
    assert call(api, "POST", f"/api/agents/w/{path}", b"{}").status == 200
    assert api.actions.calls == [(path, "w"), (path, "w")]


def test_message_needs_a_text(api):
    """POST /messages sends {"text"}; missing, empty, non-string, non-object or non-JSON bodies are 400."""
    assert call(api, "POST", "/api/agents/w/messages", b'{"text": "hello"}').status == 200
    for bad in (b"", b"{}", b'{"text": ""}', b'{"text": 3}', b"[1]", b"{nope", b"\xff\xfe", b'"text"',
                json.dumps({"text": "x" * 20_001}).encode()):
        resp = call(api, "POST", "/api/agents/w/messages", bad)
        assert resp.status == 400 and resp.body["error"]["code"] == "invalid_request", bad
    assert api.actions.calls == [("send", "w", "hello")]


def test_bad_bodies_on_actions_are_400_and_change_nothing(api):
    """A kill with a body that is not a JSON object is refused before anything is done."""
    for bad in (b"[]", b"nope", b"1"):
        assert call(api, "POST", "/api/agents/w/kill", bad).status == 400
    assert api.actions.calls == []


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/agents/nobody"), ("GET", "/api/agents/nobody/steps"), ("GET", "/api/agents/nobody/logs"),
    ("GET", "/api/agents/nobody/trace"), ("POST", "/api/agents/nobody/kill"), ("POST", "/api/agents/nobody/freeze"),
    ("POST", "/api/agents/nobody/thaw"), ("POST", "/api/agents/nobody/messages"),
])
def test_unknown_ids_are_404_json_and_change_nothing(api, method, path):
    """Every route with an unknown agent id answers 404 with a JSON error; no action is taken."""
    body = b'{"text": "hi"}' if path.endswith("messages") else b""
    resp = call(api, method, path, body)
    assert resp.status == 404 and resp.body["error"]["code"] == "not_found"
    assert api.actions.calls == []


def test_unknown_routes_and_methods(api):
    """An unknown path is 404 and a wrong method 405, both JSON errors."""
    assert call(api, "GET", "/api/nothing").status == 404
    resp = call(api, "GET", "/api/agents/w/kill")
    assert resp.status == 405 and "POST" in resp.body["error"]["message"]
    assert call(api, "DELETE", "/api/agents/w").status == 405


def test_swarm_down_and_refusals_become_http_errors(api):
    """The supervisor's refusals map to 409, a swarm that is down to 503: one line, no traceback."""
    api.actions.fail = PolicyDenied("agent w is done")
    resp = call(api, "POST", "/api/agents/w/kill")
    assert resp.status == 409 and resp.body["error"]["message"] == "agent w is done"
    api.actions.fail = NotRunning("no swarm is running")
    assert call(api, "POST", "/api/agents/w/freeze").status == 503


def test_reads_before_any_swarm(tmp_path):
    """With no registry yet the agents list is empty, the swarm state 'none', and ids are 404."""
    api = Api(tmp_path, actions=FakeActions())
    assert call(api, "GET", "/api/agents").body == []
    assert call(api, "GET", "/api/swarm").body["state"] == "none"
    assert call(api, "GET", "/api/agents/x").status == 404
    assert call(api, "GET", "/api/usage").body["buckets"] == []
    assert call(api, "GET", "/api/trace").body == []


# ------------------------------------------------------------------ approvals


def test_approvals_lists_the_pending_requests_like_approvals_json(api):
    """GET /api/approvals returns the pending requests, oldest first, with the approvals --json fields."""
    resp = call(api, "GET", "/api/approvals")
    assert resp.status == 200 and [r["id"] for r in resp.body] == ["req-1", "req-2"]
    assert resp.body[0] == {"id": "req-1", "agent": "w", "kind": "command", "command": "write_to_file",
                            "args": {"file": "a"}, "since": 100.0, "thoughts": "I write a"}
    assert resp.body[1]["kind"] == "budget" and resp.body[1]["budget_of"] == "root"


def test_approve_and_deny_reach_the_operator_port_with_note_or_reason(api):
    """POST approve ({} / note) and deny (reason / nothing) pass the request id and the text on."""
    assert call(api, "POST", "/api/approvals/req-1/approve").status == 200
    assert call(api, "POST", "/api/approvals/req-1/approve", b'{"note": " fine "}').status == 200
    resp = call(api, "POST", "/api/approvals/req-2/deny", b'{"reason": "too costly"}')
    assert resp.status == 200 and resp.body["approved"] is False
    assert call(api, "POST", "/api/approvals/req-2/deny", b"{}").status == 200
    assert api.actions.calls == [("approve", "req-1", ""), ("approve", "req-1", "fine"),
                                 ("deny", "req-2", "too costly"), ("deny", "req-2", "")]


@pytest.mark.parametrize("verb,key", [("approve", "note"), ("deny", "reason")])
def test_bad_bodies_on_decisions_are_400_and_decide_nothing(api, verb, key):
    """A body that is not a JSON object, or a note/reason that is not a string or too long, is refused."""
    for bad in (b"[]", b"nope", b"1", json.dumps({key: 3}).encode(), json.dumps({key: ["x"]}).encode(),
                json.dumps({key: "x" * 4001}).encode()):
        resp = call(api, "POST", f"/api/approvals/req-1/{verb}", bad)
        assert resp.status == 400 and resp.body["error"]["code"] == "invalid_request", bad
    assert api.actions.calls == []


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_unknown_request_ids_are_404_and_decide_nothing(api, verb):
    """An id the registry does not know is 404 (JSON error); a decided one goes on to the supervisor."""
    resp = call(api, "POST", f"/api/approvals/req-99/{verb}")
    assert resp.status == 404 and resp.body["error"]["code"] == "not_found"
    assert "req-99" in resp.body["error"]["message"]
    assert api.actions.calls == []


def test_decided_requests_and_a_swarm_that_is_down_become_http_errors(api):
    """The supervisor's refusal (decided already, a budget to approve) is 409; a swarm that is down 503."""
    api.actions.fail = OperatorError("request req-3 was already denied: no")
    resp = call(api, "POST", "/api/approvals/req-3/approve")
    assert resp.status == 409 and resp.body["error"] == {"code": "operator_refused",
                                                         "message": "request req-3 was already denied: no"}
    api.actions.fail = NotRunning("no swarm is running")
    resp = call(api, "POST", "/api/approvals/req-1/deny")
    assert resp.status == 503 and resp.body["error"]["code"] == "not_running"
    assert call(api, "GET", "/api/approvals/req-1/approve").status == 405


def test_approvals_before_any_swarm(tmp_path):
    """With no registry the pending list is empty and every request id is 404."""
    api = Api(tmp_path, actions=FakeActions())
    assert call(api, "GET", "/api/approvals").body == []
    assert call(api, "POST", "/api/approvals/req-1/approve").status == 404
    assert api.actions.calls == []
