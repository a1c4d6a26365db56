"""Approvals from the dashboard over a real replay swarm: the page (headless Chromium) and the API."""

from __future__ import annotations

import json

import pytest

from tests.system.browser import DashboardProcess, chromium_page
from tests.system.conftest import base_config, cmd, wait_until

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

DENIED = "write_to_file was not run: approval denied (not that file)"


def _config() -> dict:
    cfg = base_config()
    cfg["agents"]["worker"]["approve"] = ["write_to_file"]
    return cfg


def _cassette(*workers: str) -> dict:
    """The manager starts ``workers``; each wants to write WORKER.txt (held for approval), then completes."""
    out: dict = {"manager": {"responses": [cmd("start_agent", name=w, task="write a file", role="worker")
                                           for w in workers] + [{**cmd("do_nothing"), "delay_s": 0.3}],
                             "repeat": True}}
    for w in workers:
        out[w] = [cmd("write_to_file", file=f"{w}.txt", text=f"from {w}"),
                  cmd("task_complete", reason="done")]
    return out


@pytest.fixture
def dashboard(swarm):
    """A factory: a replay swarm (not started) of these workers and a running ``swarm dashboard`` on it."""
    procs = []

    def make(*workers: str):
        run = swarm(_config(), _cassette(*workers))
        run.run_dir.mkdir(parents=True, exist_ok=True)
        procs.append(DashboardProcess(run.run_dir, run.env, run.dir))
        return run, procs[-1]

    yield make
    for proc in procs:
        proc.stop()


def _requests(run) -> list[dict]:
    return json.loads(run.cli("approvals", "--json", check=True).stdout)


def _denials(run, agent: str) -> list[dict]:
    return [e for e in run.log_events(agent) if e.get("event") == "approval_denied"]


def test_approve_and_deny_from_the_page(dashboard, tmp_path):
    """Requests appear live; approve lets the write run, deny (with a reason) gives the model that reason."""
    run, dash = dashboard("ok", "no")
    with chromium_page(tmp_path / "profile") as page:
        page.goto(dash.url)
        page.evaluate("window.__loadedOnce = true")  # gone if the page ever reloads
        page.wait_for_selector("#no-approvals", state="visible")
        run.up()
        ok = page.wait_for_selector('.approval[data-agent="ok"]')
        page.wait_for_selector('.approval[data-agent="no"]')
        page.wait_for_selector('#agent-ok[data-status="awaiting_approval"] .pending-badge')
        text = ok.inner_text()
        # the command, its args and the model's thoughts
        assert "write_to_file" in text and "ok.txt" in text and "doing write_to_file" in text
        assert not (run.workspace / "ok.txt").exists()
        page.click('.approval[data-agent="ok"] button.approve')
        wait_until(lambda: (run.workspace / "ok.txt").exists(), 60, "ok.txt written after the approval")
        assert (run.workspace / "ok.txt").read_text() == "from ok"
        page.wait_for_selector('.approval[data-agent="ok"]', state="detached")
        page.wait_for_selector('#agent-ok[data-status="done"]')
        page.click('.approval[data-agent="no"] button.deny')
        page.locator("#deny-dialog").wait_for(state="visible")
        page.fill("#deny-reason", "not that file")
        page.click("#deny-ok")
        (denied,) = wait_until(lambda: _denials(run, "no"), 60, "no's denial in its log")
        assert denied["reason"] == "not that file" and denied["result"] == DENIED
        page.wait_for_selector('.approval[data-agent="no"]', state="detached")
        page.wait_for_selector("#no-approvals", state="visible")
        page.click("#agent-no")  # the denial is the step's result in the agent's history
        page.locator("#tab-steps .step pre", has_text=DENIED).wait_for()  # (the CSP forbids wait_for_function)
        assert page.evaluate("window.__loadedOnce") is True
    assert not (run.workspace / "no.txt").exists() and _requests(run) == []
    run.wait_for(lambda a: a["no"]["status"] == "done", what="no done after the denial")


def test_approvals_api_over_a_real_swarm(dashboard):
    """GET lists the request; no token, a wrong id or a bad body decide nothing; approve runs it, once."""
    run, dash = dashboard("w")
    run.up()
    (req,) = wait_until(lambda: dash.call("GET", "/api/approvals")[1], 60, "the request listed", step=0.1)
    assert req == _requests(run)[0] and req["command"] == "write_to_file" and req["agent"] == "w"
    path = f"/api/approvals/{req['id']}/approve"
    for token in (None, "wrong"):
        status, body = dash.call("POST", path, b"{}", token=token)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert dash.call("GET", "/api/approvals", token=token)[0] == 401
    assert dash.call("POST", "/api/approvals/req-999/approve", b"{}")[0] == 404
    assert dash.call("POST", path, b'{"note": 5}')[0] == 400
    assert dash.call("POST", path, b"[]")[0] == 400
    assert [r["id"] for r in _requests(run)] == [req["id"]]
    assert run.agents()["w"]["status"] == "awaiting_approval"
    assert not (run.workspace / "w.txt").exists()
    status, body = dash.call("POST", path, b'{"note": "go ahead"}')
    assert status == 200 and body["agent"] == "w" and body["approved"] is True
    wait_until(lambda: (run.workspace / "w.txt").exists(), 60, "w.txt written")
    status, body = dash.call("POST", f"/api/approvals/{req['id']}/deny", b"{}")
    assert status == 409 and "already approved" in body["error"]["message"]
    run.cli("down", check=True)
    status, body = dash.call("POST", "/api/approvals/req-1/deny", b"{}")
    assert status == 503 and body["error"]["code"] == "not_running"


def test_budget_requests_through_the_api_do_what_the_cli_does(swarm):
    """A budget pause is listed (kind budget, budget_of); approve is refused with the CLI's hint (409),
    deny stops the waiting agent (killed, budget_exhausted)."""
    cfg = base_config()
    cfg["agents"]["worker"]["budget"] = {"max_tokens": 2500}
    writes = [cmd("write_to_file", file=f"f{i}.txt", text=f"file {i}") for i in range(6)]
    run = swarm(cfg, {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                                cmd("do_nothing")], "repeat": True},
                      "w": writes + [cmd("task_complete", reason="all written")]})
    run.run_dir.mkdir(parents=True, exist_ok=True)
    dash = DashboardProcess(run.run_dir, run.env, run.dir)
    try:
        run.up()
        (req,) = wait_until(lambda: dash.call("GET", "/api/approvals")[1], 60, "the budget request", step=0.1)
        assert (req["kind"], req["agent"], req["budget_of"]) == ("budget", "w", "w")
        assert req == _requests(run)[0]
        status, body = dash.call("POST", f"/api/approvals/{req['id']}/approve", b"{}")
        assert status == 409 and "swarm budget w" in body["error"]["message"]
        assert run.agents()["w"]["status"] == "frozen" and _requests(run) == [req]
        assert dash.call("POST", f"/api/approvals/{req['id']}/deny", b'{"reason": "enough"}')[0] == 200
        agents = run.wait_for(lambda a: a["w"]["status"] == "killed", what="w stopped by the denial")
        assert agents["w"]["reason"] == "budget_exhausted" and _requests(run) == []
    finally:
        dash.stop()
