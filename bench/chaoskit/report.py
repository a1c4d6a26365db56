"""The chaos run's tables: faults injected per kind, and whether each invariant held."""

from __future__ import annotations

from chaoskit.injector import Injector
from chaoskit.invariants import Verdict
from chaoskit.schedule import KINDS

MARK = {True: "held", False: "BROKEN", None: "n/a"}


def fault_table(injector: Injector) -> list[str]:
    """One line per fault kind: injected and skipped counts (and the operator's messages)."""
    lines = [f"  {'fault':<20}{'injected':>9}{'skipped':>9}"]
    for kind in [*KINDS, "send"]:
        done = [i for i in injector.done if i.fault.kind == kind]
        label = "operator message" if kind == "send" else kind
        lines.append(f"  {label:<20}{sum(i.injected for i in done):>9}{sum(not i.injected for i in done):>9}")
    return lines


def verdict_table(verdicts: list[Verdict]) -> list[str]:
    width = max(len(v.name) for v in verdicts)
    return [f"  {MARK[v.held]:<7}{v.name:<{width + 2}}{v.detail}" for v in verdicts]


def render(injector: Injector, verdicts: list[Verdict], seed: int, duration: float, took: float) -> str:
    """The report printed last: both tables, the verdict, the seed."""
    held = all(v.held is not False for v in verdicts)
    return "\n".join([
        f"chaos run: duration {duration:g}s, ran {took:.0f}s",
        *fault_table(injector),
        *verdict_table(verdicts),
        f"result: {'every invariant held' if held else 'AN INVARIANT WAS BROKEN'}",
        f"seed: {seed}",
    ])
