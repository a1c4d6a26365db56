"""Tests of the gateway's circuit breaker on model outputs."""

from __future__ import annotations

from orchestrator.gateway.breaker import Breaker


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
