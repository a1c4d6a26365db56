"""Hostile bodies at the memory service (a real process, a real broker, real sockets; hypothesis).

Every well-formed request with hostile values (wrong kinds of values inside free-form fields, huge and
edge-case strings, deep nesting, unknown ids and namespaces, negative numbers, NaN, unicode edge cases)
is answered (a reply or a typed error), the next valid request is served, and a refused request leaves
the store as it was.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.client import MemoryClient
from swarm_core import messages as m
from tests.hostile_bodies import answer, bodies, mutants, texts
from tests.memory_harness import start_broker, start_service, stop_process, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAMESPACES = st.one_of(st.sampled_from(["shared", "agent:a", "agent:ghost", "agent:", "team", "agent:a/b"]),
                       texts(60))
VECTORS = st.one_of(st.just([]), st.lists(st.lists(st.floats(), min_size=384, max_size=384), max_size=2),
                    st.lists(st.lists(st.floats(), max_size=8), max_size=2))
VECTOR = [0.25] * 384
HOSTILE = st.one_of(
    bodies(m.MemAdd, namespace=NAMESPACES, texts=st.lists(texts(300), max_size=3), vectors=VECTORS),
    mutants(m.MemAdd("shared", ["a thing to keep"], [{"by": "mallory"}], [VECTOR]), namespace=NAMESPACES,
            texts=st.lists(texts(300), max_size=3), vectors=VECTORS),
    mutants(m.MemAdd("agent:a", ["to embed"]), namespace=NAMESPACES, texts=st.lists(texts(300), max_size=3)),
    mutants(m.MemSearch(["shared"], "", 3, VECTOR), namespaces=st.lists(NAMESPACES, max_size=3),
            query=texts(300)),
    mutants(m.MemSearch(["shared", "agent:a"], "kept"), namespaces=st.lists(NAMESPACES, max_size=3),
            query=texts(300)),
    mutants(m.MemDelete("shared", [1]), namespace=NAMESPACES),
    mutants(m.MemClear("agent:scratch"), namespace=NAMESPACES.filter(lambda ns: ns != "shared")),
    st.just(m.MemStats()),
    bodies(m.Stop),
)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def memory(tmp_path_factory):
    """A broker thread, the memory service and a hostile peer's client holding some items; torn down."""
    run_dir = tmp_path_factory.mktemp("hostile-memory")
    broker = start_broker(run_dir)
    proc = start_service(run_dir)
    bus = broker.client("cli-mallory")  # the operator: its bodies pass the authorization table
    try:
        mc = MemoryClient(bus, timeout=60)
        wait_ready(mc, proc)
        mc.add(["the first thing kept", "the second thing kept"])
        yield mc, proc
    finally:
        bus.close()
        stop_process(proc)
        broker.stop()


def state(mc: MemoryClient) -> tuple:
    s = mc.stats()
    return s["items"], s["next_id"], s["namespaces"], s["log_bytes"], s["log_segment"]


@SETTINGS
@given(body=HOSTILE)
def test_hostile_requests_are_answered_and_refused_ones_change_nothing(memory, body):
    """A typed answer for every hostile request; the next request is served; a refusal writes nothing."""
    mc, proc = memory
    before = state(mc)
    got = answer(mc._bus, "memory", body)
    assert proc.poll() is None, "the memory service exited"
    after = state(mc)  # the next valid request is served
    if got.refused:
        assert after == before, f"{body.TYPE} was refused ({got.code}) but the store changed"
