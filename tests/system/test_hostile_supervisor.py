"""Hostile bodies at the supervisor of a real swarm (real processes, real sockets; hypothesis).

Two operator sessions (``cli-`` peers, the only credential a test outside the supervisor holds since
issue 10) send well-formed requests with hostile values: one what an operator may send (listings,
inspect, messages, deletes of unknown agents), the other what only an agent or the gateway may send
(refused by the authorization table, whatever the body). Every request is answered (a reply or a
typed error), the supervisor then answers a status request, and a refused request leaves the
registry as it was. (Hostile bodies from a peer holding a real agent credential are
``tests/system/test_identity.py``'s.) The swarm is idle (both agents inside an hour-long model call),
so the registry changes only when a request changes it.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.client import BusClient
from orchestrator.runctl import bus_client
from swarm_core import messages as m
from tests.hostile_bodies import answer, bodies, mutants, texts
from tests.system.conftest import SwarmRun, base_config, cmd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LIVE = ("manager", "w")
UNKNOWN = st.one_of(st.sampled_from(["ghost", "supervisor", "memory", "gateway", "*", "cli-x", "w-2",
                                     "manager/..", "MANAGER"]), texts(80)).filter(lambda i: i not in LIVE)
IDS = st.one_of(st.sampled_from(LIVE), UNKNOWN)
OPERATOR = st.one_of(
    mutants(m.OperatorMessage("manager", "a note from the operator"), agent_id=IDS),
    mutants(m.DeleteAgent("ghost", "operator"), agent_id=UNKNOWN),
    mutants(m.Inspect("manager"), agent_id=IDS),
    bodies(m.ListAgents),
    st.just(m.SwarmStatus()),
    mutants(m.Freeze("ghost", True, "operator"), agent_id=UNKNOWN.filter(bool)),
)
STRANGER = st.one_of(*(bodies(cls, agent_id=IDS) for cls in (
    m.StartAgent, m.PostMessage, m.StepReport, m.AgentDone, m.AgentReady, m.AgentStatus, m.Usage,
    m.BreakerTripped) if "agent_id" in cls.__dataclass_fields__), bodies(m.StartAgent))
HOSTILE = st.one_of(st.tuples(st.just("operator"), OPERATOR), st.tuples(st.just("stranger"), STRANGER))
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def idle_swarm(tmp_path_factory):
    """A swarm whose manager and worker sit in an hour-long model call; two operator sessions."""
    busy = {**cmd("do_nothing"), "delay_s": 3600}
    run = SwarmRun(tmp_path_factory.mktemp("hostile-supervisor"), base_config(),
                   {"manager": [cmd("start_agent", name="w", task="wait", role="worker"), busy],
                    "w": [busy]})
    clients: list[BusClient] = []
    try:
        run.up()
        run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting")
                     and a["manager"]["steps"] >= 1, what="the swarm idle")
        clients = [bus_client(run.run_dir), bus_client(run.run_dir)]
        yield run, {"operator": clients[0], "stranger": clients[1]}
    finally:
        for c in clients:
            c.close()
        run.teardown()


def registry_state(run: SwarmRun) -> tuple:
    """Everything a request could change in the registry."""
    conn = sqlite3.connect(f"file:{run.run_dir / 'registry.db'}?mode=ro", uri=True)
    try:
        return tuple(conn.execute(q).fetchall() for q in (
            "SELECT id, status, steps, tokens, requests, reason, pid, result FROM agents ORDER BY id",
            "SELECT COUNT(*) FROM inbox", "SELECT COUNT(*) FROM outcomes", "SELECT COUNT(*) FROM events",
            "SELECT key, value FROM meta WHERE key != 'storage_probe' ORDER BY key"))
    finally:
        conn.close()


@SETTINGS
@given(case=HOSTILE)
def test_hostile_requests_are_answered_and_refused_ones_change_nothing(idle_swarm, case):
    """A typed answer for every hostile request; the next request is served; a refusal writes nothing."""
    run, peers = idle_swarm
    who, body = case
    before = registry_state(run)
    got = answer(peers[who], "supervisor", body)
    state = answer(peers["operator"], "supervisor", m.SwarmStatus())
    assert state.body.info["root_status"] in ("running", "waiting"), "the swarm was harmed"
    if who == "stranger":  # what only agents or the gateway may send
        assert got.refused and got.code == "policy_denied", f"{body.TYPE} from an operator: {got.code}"
    if got.refused:
        assert registry_state(run) == before, f"{body.TYPE} was refused ({got.code}) but the registry changed"
