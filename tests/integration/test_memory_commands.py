"""The agent commands memory_add / memory_search through a real memory service."""

from __future__ import annotations

import pytest

from agents.commands.context import CommandContext
from agents.commands.registry import dispatch
from memory.client import MemoryClient
from swarm_core.errors import PolicyDenied, SwarmError
from tests.memory_harness import start_broker, start_service, stop_process, wait_ready

ALLOWED = frozenset({"memory_add", "memory_search"})


class BusMemoryPorts:
    """The memory half of an agent's ports, over a real MemoryClient (shared + private namespace)."""

    def __init__(self, mc: MemoryClient, agent_id: str, namespaces: list[str] | None = None) -> None:
        self.mc = mc
        self.agent_id = agent_id
        self.namespaces = namespaces or ["shared", f"agent:{agent_id}"]

    def memory_add(self, text: str) -> int:
        return self.mc.add([text], namespace="shared", metadata=[{"agent": self.agent_id}])[0]

    def memory_search(self, query: str, k: int) -> list[dict]:
        return self.mc.search(query, k=k, namespaces=self.namespaces)


class BrokenPorts:
    """Ports whose memory service refuses everything (as when it is stopping)."""

    def memory_add(self, text: str) -> int:
        raise SwarmError("the memory service is stopping")

    def memory_search(self, query: str, k: int) -> list[dict]:
        raise SwarmError("the memory service is stopping")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A CommandContext whose ports reach a real memory service process; torn down at the end."""
    run = tmp_path_factory.mktemp("cmdrun")
    broker = start_broker(run)
    proc = start_service(run)
    bus = broker.client("agent-cmd")
    operator = broker.client("cli-ready")
    try:
        mc = MemoryClient(bus, timeout=60)
        wait_ready(MemoryClient(operator), proc)  # statistics are the operator's
        yield CommandContext(agent_id="agent-cmd", role="researcher", ports=BusMemoryPorts(mc, "agent-cmd"))
    finally:
        bus.close()
        operator.close()
        stop_process(proc)
        broker.stop()


def test_add_then_search_finds_it(ctx):
    """memory_add reports an id; memory_search lists that memory first with its id and score."""
    obs = dispatch(ctx, "memory_add", {"text": "The client prefers blue logos"}, ALLOWED)
    assert obs.ok and obs.text.startswith("Remembered as memory #")
    item_id = obs.text.split("#")[1].rstrip(".")
    dispatch(ctx, "memory_add", {"text": "Invoices are due on the 5th"}, ALLOWED)
    obs = dispatch(ctx, "memory_search", {"query": "what logo colour does the customer like", "k": 2}, ALLOWED)
    assert obs.ok
    lines = obs.text.splitlines()
    assert lines[0].startswith("2 memories for")
    assert lines[1].startswith(f"1. (#{item_id}, score ") and "blue logos" in lines[1]


def test_k_defaults_and_accepts_a_numeric_string(ctx):
    """k may be omitted (5) or given as a digit string, as small models often do."""
    assert dispatch(ctx, "memory_search", {"query": "logos"}, ALLOWED).ok
    obs = dispatch(ctx, "memory_search", {"query": "logos", "k": "1"}, ALLOWED)
    assert obs.ok and obs.text.startswith("1 memories")


@pytest.mark.parametrize("name, args, message", [
    ("memory_search", {"query": "x", "k": 0}, "k must be a whole number from 1 to 100, got 0"),
    ("memory_search", {"query": "x", "k": 500}, "got 500"),
    ("memory_search", {"query": "x", "k": "many"}, "got 'many'"),
    ("memory_search", {"query": "x", "k": True}, "got True"),
    ("memory_search", {"query": "  ", "k": 3}, "query must be a non-empty string"),
    ("memory_add", {"text": ""}, "text must be a non-empty string"),
    ("memory_add", {"text": 42}, "text must be a non-empty string"),
    ("memory_add", {"text": "x" * 9000}, "memory: texts[0] is 9000 bytes"),
])
def test_bad_arguments_are_error_observations(ctx, name, args, message):
    """Bad arguments, local or refused by the service, become an error observation, not a crash."""
    obs = dispatch(ctx, name, args, ALLOWED)
    assert not obs.ok
    assert message in obs.text


def test_service_errors_become_observations():
    """A SwarmError from the port is reported to the model as a memory error."""
    broken = CommandContext(agent_id="a", role="r", ports=BrokenPorts())
    for name, args in (("memory_add", {"text": "x"}), ("memory_search", {"query": "x"})):
        obs = dispatch(broken, name, args, ALLOWED)
        assert not obs.ok and obs.text == "error: memory: the memory service is stopping"


def test_no_hits_is_said_plainly(ctx):
    """A search of the agent's own, still empty, private namespace only says nothing matched."""
    ports = BusMemoryPorts(ctx.ports.mc, "agent-cmd", namespaces=["agent:agent-cmd"])
    own = CommandContext(agent_id="agent-cmd", role="r", ports=ports)
    obs = dispatch(own, "memory_search", {"query": "anything", "k": 3}, ALLOWED)
    assert obs.ok and obs.text == "No memories match 'anything'."


def test_another_agents_private_namespace_is_refused_with_the_rule(ctx):
    """An agent searching or adding in another agent's namespace gets the rule as its error, and no hits."""
    mc = ctx.ports.mc
    with pytest.raises(PolicyDenied, match="namespace 'agent:victim' is not yours"):
        mc.search("secrets", k=3, namespaces=["shared", "agent:victim"])
    with pytest.raises(PolicyDenied, match="namespace 'agent:victim' is not yours"):
        mc.add(["planted"], namespace="agent:victim")
    ports = BusMemoryPorts(mc, "agent-cmd", namespaces=["agent:victim"])
    obs = dispatch(CommandContext(agent_id="agent-cmd", role="r", ports=ports), "memory_search",
                   {"query": "secrets", "k": 3}, ALLOWED)
    assert not obs.ok and "is not yours: an agent may use only 'shared' and 'agent:agent-cmd'" in obs.text
