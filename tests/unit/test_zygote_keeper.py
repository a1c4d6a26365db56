"""The zygote keeper restarts a dead zygote within its restart intensity, with fakes and a fake clock."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.board import KEY, ServiceBoard
from orchestrator.supervisor.keeper import ZYGOTE, ZygoteKeeper
from orchestrator.supervisor.table import AgentTable
from tests.supervisor_harness import FakeClock, NullLog

pytestmark = pytest.mark.timeout(10)


class FakeZygotes:
    """A spawner-shaped zygote: the test kills it; ``start`` makes a new one that becomes ready later."""

    def __init__(self) -> None:
        self.pid = 900
        self.alive, self.ready, self.exit_code = True, True, None
        self.starts: list[bool] = []

    def die(self, code: int = -9) -> None:
        self.alive, self.ready, self.exit_code = False, False, code

    def start(self, timeout: float = 30.0, *, wait: bool = True) -> None:
        self.starts.append(wait)
        self.pid += 1
        self.alive, self.ready, self.exit_code = True, False, None


@pytest.fixture
def keeper(tmp_path):
    table = AgentTable(tmp_path / "registry.db")
    zyg, log = FakeZygotes(), NullLog()
    k = ZygoteKeeper(zyg, table, ServiceBoard(table), log, FakeClock(), max_restarts=2, period=60.0)
    k.started()
    yield k, zyg, table, log
    table.close()


def board(table) -> dict:
    return table.meta(KEY)[ZYGOTE]


def test_a_dead_zygote_is_restarted_and_recorded(keeper):
    """kill -9 of the zygote: the next check starts a new one (restarting), up once it is ready; logged."""
    k, zyg, table, log = keeper
    assert board(table)["state"] == "up"
    zyg.die(-9)
    k.check()
    assert zyg.starts == [False] and board(table)["state"] == "restarting"
    assert board(table)["reason"] == "SIGKILL (killed from outside or by an rlimit)"
    assert ("zygote_crashed", {"reason": board(table)["reason"], "restart": 1}) in log.events
    k.check()
    assert board(table)["state"] == "restarting"  # still preloading
    zyg.ready = True
    k.check()
    assert (board(table)["state"], board(table)["pid"], board(table)["restarts"]) == ("up", zyg.pid, 1)
    assert any(e == "zygote_restarted" for e, _ in log.events)


def test_agents_of_a_dead_zygote_are_watched_like_adopted_ones(keeper):
    """Once the zygote that reported their exits is gone, the agents' pids are polled by the table."""
    k, zyg, table, _ = keeper
    table._agent_of_pid.update({4001: "a", 4002: "b"})  # two agents the old zygote forked
    zyg.die()
    k.check()
    assert sorted(table.adopted_pids()) == [4001, 4002]


def test_the_zygote_is_given_up_past_its_restart_intensity(keeper):
    """After max_restarts restarts the next death gives the zygote up, with the reason; no more starts."""
    k, zyg, table, log = keeper
    for _ in range(2):
        zyg.die(1)
        k.check()
    zyg.die(70)
    k.check()
    k.check()
    assert len(zyg.starts) == 2
    entry = board(table)
    assert entry["state"] == "given_up" and entry["reason"] == "exit code 70; restarted 2 times within 60s already"
    assert any(e == "zygote_gave_up" for e, _ in log.events)


def test_deaths_spread_over_more_than_the_window_are_always_restarted(keeper):
    """A zygote that dies now and then (less often than max_restarts per period) is restarted every time."""
    k, zyg, table, log = keeper
    for _ in range(5):
        zyg.die(1)
        k.check()
        zyg.ready = True
        k.check()
        k.clock.advance(61)  # the keeper's own (fake) clock
    assert len(zyg.starts) == 5
    assert board(table)["state"] == "up"
