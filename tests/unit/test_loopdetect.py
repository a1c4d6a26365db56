"""Tests of the supervisor's loop detection over reported steps."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.loopdetect import LoopDetector, Verdict, canonical

N, W, S = Verdict.NONE, Verdict.WARN, Verdict.STOP


def feed(det: LoopDetector, steps: list[tuple[str, dict]]) -> list[Verdict]:
    return [det.observe(c, a) for c, a in steps]


def test_three_in_a_row_warns_then_stops():
    """The third identical step warns; a fourth identical step stops."""
    det = LoopDetector()
    assert feed(det, [("read_file", {"file": "a"})] * 4) == [N, N, W, S]


def test_argument_order_does_not_matter():
    """Args are canonicalised: key order does not hide a loop."""
    det = LoopDetector()
    steps = [("w", {"file": "a", "text": "x"}), ("w", {"text": "x", "file": "a"}), ("w", {"file": "a", "text": "x"})]
    assert feed(det, steps) == [N, N, W]
    assert canonical("w", {"a": 1, "b": 2}) == canonical("w", {"b": 2, "a": 1})


def test_different_args_are_not_a_loop():
    """The same command with different arguments never counts as a loop."""
    det = LoopDetector()
    assert feed(det, [("read_file", {"file": str(i)}) for i in range(10)]) == [N] * 10


def test_interruption_resets_the_run():
    """With window == threshold a different step in between breaks the run."""
    det = LoopDetector()
    a, b = ("c", {"x": 1}), ("d", {})
    assert feed(det, [a, a, b, a, a]) == [N, N, N, N, N]


def test_stop_after_warning_even_after_a_break():
    """The model is told once: a later loop after a warned one stops the agent."""
    det = LoopDetector()
    a, b = ("c", {}), ("d", {})
    assert feed(det, [a, a, a, b, b, b]) == [N, N, W, N, N, S]


def test_wider_window_catches_alternation():
    """With window 5 and threshold 3, A B A B A is a loop."""
    det = LoopDetector(threshold=3, window=5)
    a, b = ("c", {"k": 1}), ("d", {"k": 2})
    assert feed(det, [a, b, a, b, a]) == [N, N, N, N, W]


def test_reset_forgets_history_and_warning():
    """reset() clears both the recent steps and the warned state."""
    det = LoopDetector(threshold=2)
    assert feed(det, [("c", {})] * 2) == [N, W]
    det.reset()
    assert feed(det, [("c", {})] * 2) == [N, W]


def test_unserialisable_args_are_handled():
    """Args that are not JSON (sets, objects) still get a stable key."""
    det = LoopDetector(threshold=2)
    assert feed(det, [("c", {"s": {1}}), ("c", {"s": {1}})]) == [N, W]
    assert feed(LoopDetector(threshold=2), [("c", None), ("c", "text")]) == [N, N]


@pytest.mark.parametrize("threshold, window", [(1, 1), (3, 2), (0, 3)])
def test_bad_configuration(threshold, window):
    """Nonsensical threshold/window values are rejected with ValueError."""
    with pytest.raises(ValueError):
        LoopDetector(threshold=threshold, window=window)
