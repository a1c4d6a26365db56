"""Each supervisor guard on its own (fake clock, no processes), and how the guard list combines them."""

from __future__ import annotations

import pytest

from orchestrator.config import Limits, Role
from orchestrator.supervisor.guards.base import (
    Exit,
    GiveUp,
    Guard,
    GuardSet,
    Restart,
    SpawnRequest,
    Stop,
    Tick,
    Warn,
)
from orchestrator.supervisor.guards.budget import Budget
from orchestrator.supervisor.guards.flood import Flood
from orchestrator.supervisor.guards.loop import LoopGuard
from orchestrator.supervisor.guards.restart import CrashRestart
from orchestrator.supervisor.guards.spawn import SpawnLimits
from orchestrator.supervisor.guards.steps import MaxSteps
from orchestrator.supervisor.guards.stopfile import StopFile
from orchestrator.supervisor.guards.walltime import WallTime
from orchestrator.supervisor.policy import Allow, Deny, SpawnState
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from tests.supervisor_harness import FakeClock, NullLog

pytestmark = pytest.mark.timeout(10)


def rec(agent_id: str = "w", role: str = "worker", started_at: float | None = None) -> AgentRecord:
    return AgentRecord(id=agent_id, name=agent_id, role=role, parent="manager", depth=1,
                       started_at=started_at)


def step(n: int, command: str = "read_file", args: str = '{"file": "a"}') -> m.StepReport:
    return m.StepReport("w", n, command, args)


class Agents:
    """The table as a guard sees it: a list of live records."""

    def __init__(self, *recs: AgentRecord) -> None:
        self.recs = list(recs)
        self.reads = 0

    def live(self) -> list[AgentRecord]:
        self.reads += 1
        return self.recs


def test_max_steps_stops_the_step_past_the_limit():
    """Steps up to max_steps run; the report of the next one is a stop with reason max_steps."""
    guard = MaxSteps(3)
    assert [guard.on_step(rec(), step(n)) for n in (1, 2, 3)] == [None, None, None]
    assert guard.on_step(rec(), step(4)) == Stop("w", "max_steps")


def test_loop_warns_once_then_stops():
    """The 3rd identical step is a warning naming the command; the 4th is a stop (loop)."""
    guard = LoopGuard(3, 3)
    assert guard.on_step(rec(), step(1)) is None and guard.on_step(rec(), step(2)) is None
    warn = guard.on_step(rec(), step(3))
    assert isinstance(warn, Warn) and "read_file" in warn.text and warn.event == "loop_warning"
    assert guard.on_step(rec(), step(4)) == Stop("w", "loop")


def test_loop_ignores_waiting_and_forgets_an_agent_that_exited():
    """do_nothing is never a loop; an exited agent's history is dropped."""
    guard = LoopGuard(2, 2)
    assert [guard.on_step(rec(), step(n, "do_nothing", "{}")) for n in range(5)] == [None] * 5
    guard.on_step(rec(), step(1))
    assert guard.watching() == 1
    guard.on_exit(Exit(rec(), 0, crashed=False))
    assert guard.watching() == 0


def test_loop_guard_refuses_a_window_smaller_than_its_threshold():
    """A window that could never hold a loop is an error when the guard is built, not at the first step."""
    with pytest.raises(ValueError, match="window"):
        LoopGuard(5, 3)


def test_wall_time_stops_agents_running_too_long_and_scans_once_a_second():
    """Agents started more than the limit ago are stopped; the table is read at most once per second."""
    old, young, starting = rec("old", started_at=0.0), rec("young", started_at=95.0), rec("s")
    agents = Agents(old, young, starting)
    guard = WallTime(60.0)
    assert list(guard.on_tick(Tick(now=10.0, wall=100.0, agents=agents))) == [Stop("old", "max_wall_seconds")]
    assert list(guard.on_tick(Tick(now=10.5, wall=200.0, agents=agents))) == []
    assert agents.reads == 1
    assert {s.agent_id for s in guard.on_tick(Tick(now=11.0, wall=200.0, agents=agents))} == {"old", "young"}


def test_stop_file_kills_every_live_agent_while_it_exists(tmp_path):
    """No STOP file: nothing; with it: a hard stop (stop_file) for every live agent."""
    guard = StopFile(tmp_path / "STOP", NullLog())
    agents = Agents(rec("manager"), rec("w"))
    assert list(guard.on_tick(Tick(0.0, 0.0, agents))) == [] and agents.reads == 0
    (tmp_path / "STOP").touch()
    assert list(guard.on_tick(Tick(0.0, 0.0, agents))) == [Stop("manager", "stop_file", hard=True),
                                                             Stop("w", "stop_file", hard=True)]


def test_flood_offenders_become_hard_stops_and_exits_are_forgotten():
    """A peer pushing past its rate is killed (flood) on the next tick; its counters go when it exits."""
    guard = Flood(rate=5, log=NullLog())
    refusals = [guard.check("w", 100.0) for _ in range(40)]
    assert refusals[0] is None and refusals[-1] is not None
    assert list(guard.on_tick(Tick(100.0, 0.0, Agents()))) == [Stop("w", "flood", hard=True)]
    assert list(guard.on_tick(Tick(100.1, 0.0, Agents()))) == []  # each offender reported once
    guard.on_exit(Exit(rec(), -9, crashed=False))
    assert guard.gate.peers() == 0


def test_budget_stops_an_agent_whose_usage_says_so():
    """A usage report with a stop reason stops the agent with that reason; without one, nothing."""
    guard = Budget()
    assert guard.on_usage(rec(), m.Usage("w", 10, 1, 0.0)) is None
    spent = m.Usage("w", 10, 1, 0.0, "", "budget_exhausted")
    assert guard.on_usage(rec(), spent) == Stop("w", "budget_exhausted")


def spawn_request(lineage: tuple[str, ...], live: int = 1) -> SpawnRequest:
    state = SpawnState(lineage=lineage, requester_role="manager", can_start=("worker",),
                       roles=("manager", "worker"), live_agents=live, live_children=0,
                       used_ids=frozenset({"manager"}), limits=Limits(max_depth=1, max_agents=3))
    return SpawnRequest(state, "w", "worker")


def test_spawn_limits_apply_the_pure_policy():
    """The spawn guard allows within the limits (id, depth, role) and denies past max_depth or max_agents."""
    guard = SpawnLimits()
    assert guard.on_spawn(spawn_request(("manager",))) == Allow("w", 1, "worker")
    assert "max_depth" in guard.on_spawn(spawn_request(("manager", "w0"))).reason
    assert "max_agents" in guard.on_spawn(spawn_request(("manager",), live=3)).reason


def roles(policy: str = "on-crash", max_restarts: int = 2, period: float = 60) -> dict[str, Role]:
    return {"worker": Role(role="w", restart={"policy": policy, "max_restarts": max_restarts,
                                              "period_seconds": period})}


def crash(restartable: bool = True) -> Exit:
    return Exit(rec(), -9, crashed=True, restartable=restartable)


def test_crash_restart_within_the_intensity_then_gives_up():
    """on-crash restarts up to max_restarts within the period, then the agent stays crashed (parent told)."""
    clock = FakeClock()
    guard = CrashRestart(roles(), clock)
    assert guard.on_exit(crash()) == Restart("w")
    clock.advance(10)
    assert guard.on_exit(crash()) == Restart("w")
    clock.advance(10)
    gave_up = guard.on_exit(crash())
    assert isinstance(gave_up, GiveUp) and "crashed 3 times" in gave_up.text and gave_up.detail == "2 in 60s"
    clock.advance(51)  # the first restart left the window
    assert guard.on_exit(crash()) == Restart("w")


def test_crash_restart_only_for_restartable_crashes_of_on_crash_roles():
    """No restart for policy never, for a stop we asked for, or while the supervisor shuts down."""
    clock = FakeClock()
    assert CrashRestart(roles("never"), clock).on_exit(crash()) is None
    guard = CrashRestart(roles(), clock)
    assert guard.on_exit(Exit(rec(), 0, crashed=False)) is None
    assert guard.on_exit(crash(restartable=False)) is None


class Fixed(Guard):
    """A guard that answers every step with a fixed verdict."""

    def __init__(self, verdict=None, spawn=None) -> None:
        self.verdict, self.spawn = verdict, spawn

    def on_step(self, rec, step):
        return self.verdict

    def on_spawn(self, request):
        return self.spawn


def test_guard_set_stop_wins_over_warn_and_deny_over_allow():
    """The guard list answers a step with the first Stop (else the first Warn) and a spawn with any Deny."""
    warn, stop = Warn("w", "careful", "e"), Stop("w", "loop")
    assert GuardSet([Fixed(warn), Fixed(stop)]).on_step(rec(), step(1)) == stop
    assert GuardSet([Fixed(None), Fixed(warn)]).on_step(rec(), step(1)) == warn
    assert GuardSet([Fixed()]).on_step(rec(), step(1)) is None
    allow = Allow("w", 1, "worker")
    denied = GuardSet([Fixed(spawn=allow), Fixed(spawn=Deny("no"))])
    assert denied.on_spawn(spawn_request(("m",))) == Deny("no")
    assert GuardSet([Fixed(spawn=allow), Fixed()]).on_spawn(spawn_request(("m",))) == allow
    assert isinstance(GuardSet([Fixed()]).on_spawn(spawn_request(("m",))), Deny)
