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
    """The same command with really different arguments never counts as a loop."""
    det = LoopDetector()
    names = ["notes.txt", "plan.md", "report.md", "data.csv", "README", "main.py", "todo", "log.txt"]
    assert feed(det, [("read_file", {"file": n}) for n in names]) == [N] * len(names)


def test_near_identical_writes_are_a_loop():
    """20 writes of the same file whose text differs only by a counter are flagged (warned, then stopped)."""
    det = LoopDetector()
    steps = [("write_to_file", {"file": "out.txt", "text": f"attempt {i}:  result   {i * 7}.5"})
             for i in range(20)]
    verdicts = feed(det, steps)
    assert verdicts[:4] == [N, N, W, S]
    assert canonical("w", {"t": "a 1\n b"}) == canonical("w", {"t": "a   22 b"})
    assert canonical("w", {"t": "a 1 b"}) == canonical("w", '{"t": "a 3 b"}')  # JSON text is read as JSON
    assert canonical("w", {"n": 1}) == canonical("w", {"n": 2.5})


def test_alternating_two_commands_is_a_loop():
    """20 steps alternating two commands are flagged: a cycle of 2 repeated threshold times."""
    det = LoopDetector()
    a, b = ("read_file", {"file": "a.txt"}), ("write_to_file", {"file": "a.txt", "text": "x"})
    verdicts = feed(det, [a, b] * 10)
    assert verdicts[:7] == [N, N, N, N, N, W, S]
    assert det.last_cycle == 2


@pytest.mark.parametrize("size", [3, 4])
def test_cycles_up_to_four_steps_are_loops(size):
    """A cycle of 3 or 4 different steps repeated threshold times is flagged; one of 5 is not."""
    cycle = [("c", {"k": f"step-{chr(97 + i)}"}) for i in range(size)]
    verdicts = feed(LoopDetector(), cycle * 3)
    assert verdicts[-1] is W and verdicts.count(W) == 1 and N in verdicts[:-1]
    five = [("c", {"k": f"step-{chr(97 + i)}"}) for i in range(5)]
    assert feed(LoopDetector(), five * 4) == [N] * 20


def test_cycle_repeats_follow_the_threshold():
    """With threshold 4, a 2-cycle needs 4 rounds (8 steps) to count."""
    a, b = ("c", {"x": "a"}), ("d", {"x": "b"})
    assert feed(LoopDetector(threshold=4), [a, b] * 4) == [N] * 7 + [W]


def test_varied_work_is_not_a_loop():
    """A plausible session of varied work (reads, writes of different texts, a run) is never flagged."""
    det = LoopDetector()
    steps = [("read_file", {"file": "task.md"}), ("write_to_file", {"file": "plan.md", "text": "1. outline"}),
             ("write_to_file", {"file": "draft.md", "text": "The sea at dawn is grey."}),
             ("read_file", {"file": "draft.md"}),
             ("write_to_file", {"file": "draft.md", "text": "The sea at dawn is silver and wide."}),
             ("execute_python_file", {"file": "count.py"}), ("read_file", {"file": "plan.md"}),
             ("write_to_file", {"file": "final.md", "text": "Silver sea, wide dawn."}),
             ("message_agent", {"key": "manager", "message": "draft ready"}),
             ("task_complete", {"reason": "done"})]
    assert feed(det, steps) == [N] * len(steps)


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


def test_numbered_files_are_different_work_but_a_counter_in_one_file_is_a_repeat():
    """Writes to f1.txt, f2.txt, f3.txt are no loop; three writes to out.txt differing by a number are."""
    d = LoopDetector(threshold=3)
    verdicts = [d.observe("write_to_file", {"file": f"f{i}.txt", "text": f"file {i}"}) for i in range(6)]
    assert verdicts == [Verdict.NONE] * 6
    d = LoopDetector(threshold=3)
    verdicts = [d.observe("write_to_file", {"file": "out.txt", "text": f"attempt {i}"}) for i in range(3)]
    assert verdicts[-1] is Verdict.WARN
