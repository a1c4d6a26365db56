"""The chaos bench's fault schedule: a pure function of the seed, pinned to progress, every kind in it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaoskit.schedule import FIRST, KINDS, LAST, schedule  # noqa: E402
from chaoskit.workload import Workload  # noqa: E402


def test_same_seed_gives_the_same_schedule():
    """Two schedules of one seed, duration and expected progress are equal, fault for fault."""
    assert schedule(7, 180, 3000) == schedule(7, 180, 3000)


def test_other_seeds_give_other_schedules():
    """Different seeds give different schedules (points, kinds or victims)."""
    runs = {tuple(schedule(seed, 180, 3000)) for seed in range(5)}
    assert len(runs) == 5


def test_every_fault_kind_is_scheduled_inside_the_window():
    """Each kind appears at least once, in progress order, between FIRST and LAST of the expected progress."""
    for seed in range(20):
        faults = schedule(seed, 45, 1000)
        assert {f.kind for f in faults} >= set(KINDS)
        assert faults == sorted(faults)
        assert all(FIRST * 1000 - 1 <= f.at <= LAST * 1000 for f in faults)
        assert all(0 <= f.pick < 1 for f in faults)


def test_the_workload_is_the_same_for_a_duration():
    """The cassettes and facts of a duration are built the same way twice (the schedule's progress basis)."""
    a, b = Workload(45).build(), Workload(45).build()
    assert a.cassette == b.cassette and a.facts == b.facts
    assert a.expected_progress() == b.expected_progress() > 0
    assert Workload(180).build().expected_progress() > a.expected_progress()
