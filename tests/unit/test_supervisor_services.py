"""The service processes' restarts (restart intensity) and stop (the reaper's ladder), with fake processes."""

from __future__ import annotations

import signal

import pytest

from bus import messages as bm
from bus.keyring import Keyring
from bus.protocol import Kind, Message
from orchestrator.supervisor.reaper import Reaper
from orchestrator.supervisor.services import MAX_RESTARTS, RESTART_PERIOD, TIMINGS, Services, _Service
from orchestrator.supervisor.table import AgentTable
from swarm_core import messages as m
from tests.supervisor_harness import FakeClient, FakeClock, FakeSignaller, NullLog

pytestmark = pytest.mark.timeout(10)


class FakeProc:
    """A Popen-shaped process whose exit the test decides."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


class ProbingClient(FakeClient):
    """The fake bus client, plus requests sent without waiting (their callbacks kept for the test)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list = []

    def send_request(self, dst, body, timeout, callback=None):
        self.requests.append((dst, body, callback))
        return f"q{len(self.requests)}"


class FakeServices(Services):
    """Services whose launches make FakeProcs (pids the fake signaller sees alive)."""

    def __init__(self, tmp_path, signaller: FakeSignaller, clock: FakeClock) -> None:
        self.launched: list[FakeProc] = []
        self.signaller = signaller
        table = AgentTable(tmp_path / "registry.db")
        super().__init__([_Service("gateway", ["true"], 1.0)], tmp_path, ProbingClient(), table,
                         Reaper(clock, signaller, TIMINGS), NullLog(), clock, keys=Keyring())

    def _launch(self, svc: _Service) -> None:
        proc = FakeProc(7000 + len(self.launched))
        self.launched.append(proc)
        self.signaller.living.add(proc.pid)
        svc.proc = proc  # type: ignore[assignment]


@pytest.fixture
def services(tmp_path):
    clock, signaller = FakeClock(), FakeSignaller()
    svc = FakeServices(tmp_path, signaller, clock)
    svc._launch(svc._services[0])
    yield svc, clock, signaller
    svc.table.close()


def test_a_dying_service_is_restarted_within_its_intensity_then_given_up(services):
    """Deaths spread out are always restarted; MAX_RESTARTS within RESTART_PERIOD, then one more, give up."""
    svc, clock, _ = services
    for _ in range(3 * MAX_RESTARTS):  # one death per period: never too many
        svc.launched[-1].returncode = 1
        clock.advance(RESTART_PERIOD)
        svc.check()
    assert len(svc.launched) == 3 * MAX_RESTARTS + 1
    clock.advance(RESTART_PERIOD)
    for _ in range(MAX_RESTARTS):  # a burst within one period: restarted while the window holds them
        svc.launched[-1].returncode = 1
        clock.advance(1.0)
        svc.check()
    assert len(svc.launched) == 4 * MAX_RESTARTS + 1
    svc.launched[-1].returncode = 1
    svc.check()
    assert len(svc.launched) == 4 * MAX_RESTARTS + 1 and svc._services[0].proc is None
    assert ("service_gave_up", {"service": "gateway", "code": 1}) in svc.log.events
    entry = svc.table.meta("services")["gateway"]
    assert entry["state"] == "given_up"
    assert entry["reason"] == f"exit code 1; restarted {MAX_RESTARTS} times within {RESTART_PERIOD:g}s already"


def _answer(svc, error_code=None):
    """Answer the Ping in flight (as the bus would): a Pong, or an error reply with ``error_code``."""
    from bus.protocol import Header

    dst, body, callback = svc.client.requests.pop(0)
    kind = Kind.ERROR if error_code else Kind.REPLY
    reply = bm.ErrorReply(error_code, "x", {}) if error_code else bm.Pong(b"")
    callback(Message(Header(kind, reply.TYPE, "r", "q", dst, "supervisor", 0.0), reply))


def test_a_restarted_service_is_restarting_until_it_answers(services):
    """The board shows a restarted service as restarting (with how it died) until it answers a Ping."""
    svc, _, _ = services
    svc.launched[-1].returncode = -9
    svc.check()
    entry = svc.table.meta("services")["gateway"]
    assert (entry["state"], entry["pid"], entry["restarts"]) == ("restarting", svc.launched[-1].pid, 1)
    assert entry["reason"].startswith("SIGKILL")
    svc.check()  # one Ping in flight at a time
    assert [(d, type(b)) for d, b, _ in svc.client.requests] == [("gateway", bm.Ping)]
    _answer(svc, "unknown_destination")  # not on the bus yet
    assert svc.table.meta("services")["gateway"]["state"] == "restarting"
    svc.check()
    _answer(svc)
    assert svc.table.meta("services")["gateway"]["state"] == "up"
    svc.check()
    assert svc.client.requests == []


def test_stop_all_climbs_the_ladder_until_the_service_is_gone(services):
    """Stop message first, SIGTERM after the grace, then it exits: no SIGKILL, no restart afterwards."""
    svc, clock, signaller = services
    proc = svc.launched[0]

    def idle(seconds: float) -> None:
        clock.advance(0.5)
        if int(signal.SIGTERM) in signaller.signals(proc.pid):
            proc.returncode = -15
            signaller.living.discard(proc.pid)

    svc.stop_all(idle)
    assert svc.client.to("gateway", m.Stop) == [m.Stop("down")]
    assert signaller.signals(proc.pid) == [int(signal.SIGTERM)]
    svc.check()
    assert len(svc.launched) == 1  # stopping: a dead service is not restarted


def test_every_live_agent_hears_that_a_service_restarted(services):
    """After a restart each live agent is told (a request in flight to the dead process is lost)."""
    from orchestrator.supervisor.registry import AgentRecord
    from swarm_core.status import Status

    svc, clock, _ = services
    svc.table.add(AgentRecord(id="a", name="a", role="r", parent=None, depth=0, status=Status.RUNNING))
    svc.table.add(AgentRecord(id="b", name="b", role="r", parent="a", depth=1, status=Status.DONE))
    svc.launched[-1].returncode = -9
    svc.check()
    assert svc.client.to("a", m.ServiceRestarted) == [m.ServiceRestarted("gateway")]
    assert svc.client.to("b") == []


def test_announce_tells_every_live_agent_of_every_service(services):
    """After a resume the new supervisor announces all its services to the adopted agents."""
    from orchestrator.supervisor.registry import AgentRecord
    from swarm_core.status import Status

    svc, _, _ = services
    svc.table.add(AgentRecord(id="a", name="a", role="r", parent=None, depth=0, status=Status.RUNNING))
    svc.announce()
    assert svc.client.to("a", m.ServiceRestarted) == [m.ServiceRestarted("gateway")]


def test_an_adopted_agent_is_told_again_when_it_joins_the_new_broker(services):
    """After a resume an adopted agent that had not yet joined the new bus is told when it joins, once;
    another peer's join, or an agent ended meanwhile, gets nothing."""
    from orchestrator.supervisor.registry import AgentRecord
    from swarm_core.status import Status

    svc, _, _ = services
    for agent, status in (("a", Status.RUNNING), ("b", Status.RUNNING), ("c", Status.RUNNING)):
        svc.table.add(AgentRecord(id=agent, name=agent, role="r", parent=None, depth=0, status=status))
    svc.announce_on_join(["a", "b"])
    assert svc.client.to("a", m.ServiceRestarted) == [m.ServiceRestarted("gateway")]  # told at once too
    svc.table.end("b", Status.KILLED, "gone")
    for peer in ("a", "a", "b", "c", "gateway"):
        svc.on_peer_event(bm.PeerEvent("joined", peer))
    assert svc.client.to("a", m.ServiceRestarted) == [m.ServiceRestarted("gateway")] * 2
    assert svc.client.to("b", m.ServiceRestarted) == [m.ServiceRestarted("gateway")]  # only the first
    assert svc.client.to("c", m.ServiceRestarted) == [m.ServiceRestarted("gateway")]  # only announce()
