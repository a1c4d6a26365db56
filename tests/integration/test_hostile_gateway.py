"""Hostile bodies at the LLM gateway (a real process on a replay cassette, a real broker; hypothesis).

Every well-formed request with hostile values is answered (a completion or a typed error), the next
valid call is served with the answer its cassette holds next (hostile calls moved no cursor), and a
refused call is not counted: no usage reaches the supervisor for it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_core import messages as m
from tests.gateway_harness import GatewayRig, complete
from tests.hostile_bodies import answer, bodies, mutants, texts
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROBES = 200  # answers in the probe agent's cassette


def said(text: str) -> dict:
    return {"thoughts": {"text": text, "speak": text}, "command": {"name": "task_complete",
                                                                   "args": {"reason": text}}}


NAMES = st.one_of(st.sampled_from(["mallory", "chatty", "nobody", "", "probe-ish"]), texts(80))
HOSTILE = st.one_of(
    bodies(m.Complete, name=NAMES),
    mutants(complete("mallory", name="chatty"), name=NAMES),
    mutants(complete("mallory", name="chatty", context={"inbox": ["hi"], "history": []}), name=NAMES),
    mutants(m.Complete("mallory", "", [], 64, [{"role": "user", "content": "hello"}], "chatty"), name=NAMES),
    bodies(m.Freeze),
    bodies(m.Stop),
)
SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """The gateway on a cassette (a probe agent, a chatty one), a supervisor peer and a hostile peer."""
    rig = GatewayRig(tmp_path_factory.mktemp("hostile-gateway"))
    try:
        rig.start(cassette={"probe": [said(f"probe answer {i}") for i in range(PROBES)],
                            "chatty": {"responses": [said("chatty")], "repeat": True}})
        sup = rig.supervisor()
        probe, mallory = rig.client("probe"), rig.client("mallory")
        yield rig, sup, probe, mallory, iter(range(PROBES))
    finally:
        rig.close()


def probe_call(probe, n: int) -> None:
    """A valid call is served, with the next answer of its own cassette."""
    reply = probe.request("gateway", complete("probe"), 30)
    assert json.loads(reply.text)["thoughts"]["text"] == f"probe answer {n}"


@SETTINGS
@given(body=HOSTILE)
def test_hostile_requests_are_answered_and_refused_ones_are_not_counted(gateway, body):
    """A typed answer for every hostile request; the next valid call is served; a refusal counts nothing."""
    rig, sup, probe, mallory, probes = gateway
    used = len(sup.of("mallory"))
    got = answer(mallory, "gateway", body)
    assert rig.proc.poll() is None, "the gateway exited"
    probe_call(probe, next(probes))
    if got.refused:
        wait_until(lambda: len(sup.of("probe")) >= 1, 10, "the probe's usage (usage reports flow)")
        assert len(sup.of("mallory")) == used, f"{body.TYPE} was refused ({got.code}) but counted"
