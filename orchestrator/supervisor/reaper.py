"""The one stop ladder: stop message → SIGTERM → grace → SIGKILL, for every process we end.

Agents, the service processes (gateway, memory), ``swarm down`` and the
leftovers of a crashed supervisor all stop through a :class:`Reaper`. Each
target (a process group id, or a pid with :class:`ProcessSignaller`) climbs
the ladder one rung per :meth:`Reaper.step` whose time has come; the clock
and the signaller are passed in, so a test drives the whole ladder with a
fake clock and a fake signaller and no process.

A hard stop skips to SIGKILL at once. A target never climbs down: a soft
stop of a target already being killed changes nothing. While it lives, a
killed target gets SIGKILL again every ``recheck`` seconds.
"""

from __future__ import annotations

import enum
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from swarm_core.defaults import KILL_RECHECK, STOP_GRACE

SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL


class Signaller(Protocol):
    """How signals reach a target and how its life is probed."""

    def send(self, target: int, sig: int) -> bool:
        """Send ``sig`` (0 probes); False when the target no longer exists."""

    def alive(self, target: int) -> bool:
        """Whether the target still exists."""


def _deliver(kill: Callable[[int, int], None], target: int, sig: int) -> bool:
    if not target or target <= 1:  # 0 is our own group, 1 is init: never ours to signal
        return False
    try:
        kill(target, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when it no longer exists (or is not ours)."""
    return _deliver(os.killpg, pgid, sig)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists."""
    return signal_group(pgid, 0)


class GroupSignaller:
    """Targets are process groups (agents and services each lead their own)."""

    def send(self, target: int, sig: int) -> bool:
        return signal_group(target, sig)

    def alive(self, target: int) -> bool:
        return group_alive(target)


class ProcessSignaller:
    """Targets are single processes; a zombie counts as gone (its parent has not reaped it yet)."""

    def send(self, target: int, sig: int) -> bool:
        return _deliver(os.kill, target, sig)

    def alive(self, target: int) -> bool:
        import psutil

        try:
            return psutil.Process(target).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


@dataclass(frozen=True)
class Timings:
    """Seconds between the rungs: stop message → SIGTERM, SIGTERM → SIGKILL, SIGKILL again."""

    stop: float = STOP_GRACE
    term: float = STOP_GRACE
    recheck: float = KILL_RECHECK


class Rung(enum.IntEnum):
    """Where a target is on the ladder (it only climbs)."""

    STOP = 1  # asked to stop (a message); SIGTERM when its time comes
    TERM = 2  # SIGTERM sent; SIGKILL when its time comes
    KILL = 3  # SIGKILL sent; sent again while the target lives


@dataclass
class _Climb:
    rung: Rung
    at: float  # when the next rung is due
    timings: Timings
    alive: Callable[[], bool]


class Reaper:
    """Owns every pending stop and moves each up the ladder on :meth:`step`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, signaller: Signaller | None = None,
                 timings: Timings = Timings()) -> None:
        self.clock = clock
        self.signaller: Signaller = signaller or GroupSignaller()
        self.timings = timings
        self.hard = False  # set on a second Ctrl-C: every stop from now on is a kill
        self._climbs: dict[int, _Climb] = {}

    def stop(self, target: int, *, ask: Callable[[], object] | None = None, hard: bool = False,
             timings: Timings | None = None, alive: Callable[[], bool] | None = None) -> None:
        """Start (or hurry) the ladder of ``target``: ``ask()`` it to stop, or SIGKILL it when hard.

        ``alive`` probes the target's life (default: the signaller's probe);
        without ``ask`` the first rung is SIGTERM.
        """
        if not target:
            return
        t = timings or self.timings
        probe = alive or (lambda: self.signaller.alive(target))
        current = self._climbs.get(target)
        if hard or self.hard:
            if current is None or current.rung < Rung.KILL:
                self._kill(target, _Climb(Rung.KILL, 0.0, t, probe))
            return
        if current is not None:
            return  # already on its way down: never climb back
        if ask is None:
            self.signaller.send(target, SIGTERM)
            self._climbs[target] = _Climb(Rung.TERM, self.clock() + t.term, t, probe)
            return
        ask()
        self._climbs[target] = _Climb(Rung.STOP, self.clock() + t.stop, t, probe)

    def _kill(self, target: int, climb: _Climb) -> None:
        self.signaller.send(target, SIGKILL)
        climb.rung, climb.at = Rung.KILL, self.clock() + climb.timings.recheck
        self._climbs[target] = climb

    def step(self) -> None:
        """Move every due target one rung up; forget the targets that are gone."""
        now = self.clock()
        for target, climb in list(self._climbs.items()):
            if now < climb.at:
                continue
            if not climb.alive():
                del self._climbs[target]
            elif climb.rung is Rung.STOP:
                self.signaller.send(target, SIGTERM)
                climb.rung, climb.at = Rung.TERM, now + climb.timings.term
            else:
                self._kill(target, climb)

    def forget(self, target: int) -> None:
        """The target was reaped: its ladder ends."""
        self._climbs.pop(target, None)

    def pending(self) -> list[int]:
        """Targets still on the ladder."""
        return list(self._climbs)

    def rung(self, target: int) -> Rung | None:
        """Where ``target`` is on the ladder (None when it is not on it)."""
        climb = self._climbs.get(target)
        return climb.rung if climb is not None else None

    def drain(self, targets: Iterable[int], until: float, idle: Callable[[float], object]) -> list[int]:
        """Step until every target is gone or the clock reaches ``until``; SIGKILL what is left.

        ``idle(seconds)`` waits between steps (a bus poll, or a sleep).
        Returns the targets that were still alive at ``until``.
        """
        wanted = [t for t in set(targets) if t]
        while True:
            self.step()
            left = [t for t in wanted if self._alive(t)]
            if not left or self.clock() >= until:
                break
            idle(0.05)
        for target in left:
            self.signaller.send(target, SIGKILL)
        return left

    def _alive(self, target: int) -> bool:
        climb = self._climbs.get(target)
        return climb.alive() if climb is not None else self.signaller.alive(target)
