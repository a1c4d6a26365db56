"""The dashboard in a real browser (headless Chromium) over a real replay swarm: live tree, kill, 401s."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.system.browser import VIEWPORT, DashboardProcess, chromium_page, png_size
from tests.system.conftest import base_config, cmd

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

LIVE = ("starting", "running", "waiting")


def _cassette() -> dict:
    """manager starts a quick worker (which finishes) and a runaway w, which starts its own runaway sub."""
    idle = {"responses": [{**cmd("do_nothing"), "delay_s": 0.3}], "repeat": True}
    return {
        "manager": {"responses": [cmd("start_agent", name="quick", task="write a note", role="worker"),
                                  cmd("start_agent", name="w", task="keep going", role="worker"),
                                  {**cmd("do_nothing"), "delay_s": 0.3}], "repeat": True},
        "quick": [cmd("write_to_file", file="note.txt", text="hello"), cmd("task_complete", reason="note written")],
        "w": {"responses": [cmd("start_agent", name="sub", task="help", role="worker"),
                            {**cmd("do_nothing"), "delay_s": 0.3}], "repeat": True},
        "sub": idle,
    }


def _config() -> dict:
    return base_config(llm={"provider": "replay", "cassette": "cassette.yaml",
                            "prices": {"replay": {"prompt": 0.15, "completion": 0.6}}})


@pytest.fixture
def dashboard(swarm):
    """A replay swarm (not started) and a running ``swarm dashboard`` on its run directory."""
    run = swarm(_config(), _cassette())
    run.run_dir.mkdir(parents=True, exist_ok=True)
    proc = DashboardProcess(run.run_dir, run.env, run.dir)
    yield run, proc
    proc.stop()


def test_live_tree_kill_from_the_page_and_screenshot(dashboard, tmp_path):
    """Agents appear and change status without a reload; kill (confirmed) shows killed in the page and in ps."""
    run, dash = dashboard
    with chromium_page(tmp_path / "profile") as page:
        page.goto(dash.url)  # the token once; the page sets the cookie and lands on /
        assert page.url == dash.base
        page.evaluate("window.__loadedOnce = true")  # gone if the page ever reloads
        page.wait_for_selector("#no-agents", state="visible")  # no swarm yet
        run.up()
        # the tree grows live: w, then its own sub-agent; quick finishes
        page.wait_for_selector('#agent-w[data-status="running"], #agent-w[data-status="waiting"]')
        page.wait_for_selector("#agent-sub")
        page.wait_for_selector('#agent-quick[data-status="done"]')
        assert run.agents()["w"]["status"] in LIVE
        page.click("#agent-w")
        page.wait_for_selector("#tab-steps .step .cmd")  # its thoughts and commands, one click away
        page.click("#btn-kill")
        dialog = page.locator("#confirm")
        dialog.wait_for(state="visible")
        assert "w" in page.inner_text("#confirm-text") and "1 live sub-agent" in page.inner_text("#confirm-text")
        page.click("#confirm-ok")
        page.wait_for_selector('#agent-w[data-status="killed"]')
        page.wait_for_selector('#agent-sub[data-status="killed"]')
        assert page.evaluate("window.__loadedOnce") is True
        agents = run.wait_for(lambda a: a["w"]["status"] == "killed" and a["sub"]["status"] == "killed",
                              what="w and sub killed in swarm ps")
        assert agents["manager"]["status"] in LIVE
        # the trace tab draws the manager's spans as a waterfall (its second click)
        page.click("#agent-manager")
        page.click('nav.tabs button[data-tab="trace"]')
        page.wait_for_selector("#tab-trace .wf-row")
        page.click('nav.tabs button[data-tab="steps"]')
        page.wait_for_selector("#tab-steps .step .thought")
        page.wait_for_selector("#chart svg rect.bar")
        # a selector, not wait_for_function: a string predicate is eval'd, which the page's CSP forbids
        page.wait_for_selector("#chart-scope:text-is('agent manager')")
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot))
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"])
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    keep = os.environ.get("SWARM_DASHBOARD_SCREENSHOT")  # the README's picture comes from here
    if keep:
        shutil.copyfile(shot, keep)


def test_missing_or_wrong_token_gets_401_everywhere_and_changes_nothing(dashboard, tmp_path):
    """Without the token the page and every API route answer 401, and the swarm is untouched."""
    run, dash = dashboard
    run.up()
    before = run.wait_for(lambda a: a.get("w", {}).get("status") in LIVE and "sub" in a, what="w and sub up")
    routes = [("GET", p) for p in ("/api/swarm", "/api/agents", "/api/agents/w", "/api/agents/w/steps",
                                   "/api/agents/w/logs", "/api/agents/w/trace", "/api/trace", "/api/usage",
                                   "/api/events", "/static/app.js")]
    routes += [("POST", f"/api/agents/w/{a}") for a in ("kill", "freeze", "thaw", "messages")]
    with chromium_page(tmp_path / "profile") as page:
        for url in (dash.base, dash.base + "?token=wrong", dash.base + "?token="):
            resp = page.goto(url)
            assert resp is not None and resp.status == 401, url
        assert page.context.cookies() == []
        api = page.context.request
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {dash.token}x"}):
            for method, path in routes:
                resp = api.fetch(dash.base.rstrip("/") + path, method=method, headers=headers,
                                 data='{"text": "hi"}' if method == "POST" else None)
                assert resp.status == 401, (method, path, headers)
    after = run.agents()
    assert after["w"]["status"] in LIVE and after["sub"]["status"] in LIVE
    assert all(after[a]["status"] != "killed" for a in before)
    assert not any(ev["event"] == "inbox_received" and ev.get("text") == "hi" for ev in run.log_events("w"))


def test_dashboard_reads_a_swarm_that_is_down_and_picks_up_the_next_one(dashboard):
    """After swarm down the API still lists the agents (actions: 503, one JSON line); a new up shows up."""
    from tests.support import wait_until

    run, dash = dashboard
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") in LIVE, what="w up")
    run.cli("down", check=True)
    status, agents = dash.call("GET", "/api/agents")
    assert status == 200 and {a["id"] for a in agents} >= {"manager", "w"}
    assert dash.call("GET", "/api/swarm")[1]["state"] == "down"
    status, body = dash.call("POST", "/api/agents/manager/freeze", b"{}")
    assert status == 503 and body["error"]["code"] == "not_running"
    run.up()  # a new swarm in the same run directory
    wait_until(lambda: dash.call("GET", "/api/swarm")[1]["state"] == "running", 60, "the new swarm seen")
    wait_until(lambda: any(a["id"] == "w" and a["status"] in LIVE
                           for a in dash.call("GET", "/api/agents")[1]),
               60, "the new swarm's w")
    assert dash.call("POST", "/api/agents/w/freeze", b"{}")[0] == 200
    run.wait_for(lambda a: a["w"]["status"] == "frozen", what="w frozen through the dashboard")
