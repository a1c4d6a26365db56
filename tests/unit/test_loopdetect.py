"""Tests of agents.loopdetect: repeated-command detection and the risky-word breaker."""

from __future__ import annotations

import pytest

from agents.loopdetect import Breaker, LoopDetector, Verdict, canonical

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


def test_breaker_trips_on_third_consecutive_output():
    """A risky word in three consecutive outputs trips the breaker exactly once."""
    br = Breaker(["FBI", "白宫", "黑入"])
    results = [br.observe(t) for t in ["the FBI", "fbi agents", "call the Fbi!", "FBI again"]]
    assert results == [False, False, True, False]
    assert br.tripped and br.last_matches == ["FBI"]


def test_breaker_reset_on_clean_output():
    """A clean output in between resets the streak."""
    br = Breaker(["hack"])
    assert [br.observe(t) for t in ["hack it", "hack it", "all good", "hack", "hack"]] == [False] * 5
    assert br.observe("hack") is True


def test_breaker_word_boundaries_for_ascii():
    """ASCII words match whole words only, case-insensitively, next to punctuation or CJK."""
    br = Breaker(["hack", "rm -rf"])
    assert br.matches("hacking the planet") == []
    assert br.matches("a lifehack") == []
    assert br.matches("HACK!") == ["hack"]
    assert br.matches("请hack系统") == ["hack"]
    assert br.matches("run rm -rf now") == ["rm -rf"]
    assert br.matches("run rm -rfx") == []


def test_breaker_cjk_words_are_substrings():
    """Non-ASCII words match as substrings (CJK has no word boundaries)."""
    br = Breaker(["白宫", "黑入", "Straße"])
    assert br.matches("我们要黑入白宫的系统") == ["白宫", "黑入"]
    assert br.matches("STRASSE") == ["Straße"] == br.matches("die STRAßE")  # casefolded
    assert [br.observe(t) for t in ["黑入", "进入白宫", "白宫黑入"]] == [False, False, True]


def test_breaker_ignores_empty_words_and_non_text():
    """Blank configured words never match; non-string outputs are stringified."""
    br = Breaker(["", "  ", "bomb"], threshold=1)
    assert br.words == ["bomb"]
    assert br.observe(None) is False
    assert br.observe({"text": "bomb"}) is True


def test_breaker_reset_after_thaw():
    """reset() clears the trip so the breaker can trip again after a thaw."""
    br = Breaker(["x"], threshold=2)
    assert [br.observe("x"), br.observe("x")] == [False, True]
    br.reset()
    assert not br.tripped
    assert [br.observe("x"), br.observe("x")] == [False, True]
