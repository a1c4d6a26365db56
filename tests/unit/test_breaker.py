"""Tests of the gateway's circuit breaker on model outputs."""

from __future__ import annotations

import json

import pytest

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


def answer(text: str) -> str:
    """A model answer (JSON text) whose thoughts say ``text``, as the gateway sees it."""
    return json.dumps({"thoughts": {"text": text, "speak": "ok"},
                       "command": {"name": "read_file", "args": {"file": "a.txt"}}}, ensure_ascii=False)


@pytest.mark.parametrize("trick", [
    r'{"thoughts": {"text": "call the \u0046BI"}, "command": {"name": "do_nothing", "args": {}}}',
    r'{"thoughts": {"text": "\u0066\u0062\u0069 now"}, "command": {"name": "do_nothing", "args": {}}}',
    answer("the FΒΙ"),                   # Greek capital beta and iota
    answer("the FВІ"),                   # Cyrillic capital ve and byelorussian i
    answer("the fbι"),                   # Greek small iota
    answer("the ＦＢＩ"),                  # fullwidth
    answer("the 𝐅𝐁𝐈"),                   # mathematical bold
    answer("the F\u200bB\u200dI"),       # zero-width space and joiner
    answer("the F\u00adB\u2060I"),       # soft hyphen and word joiner
    answer("the fBi"),                   # mixed case
    answer("the FBl"),                   # a small L for the I
    'not json at all: the \\u0046BI',    # escapes outside JSON
])
def test_breaker_reads_tricks_as_the_word(trick):
    """Escaped, look-alike, fullwidth, zero-width and mixed-case spellings of a risky word are found."""
    assert Breaker(["FBI", "白宫"]).matches(trick) == ["FBI"]


@pytest.mark.parametrize("trick", [
    r'{"thoughts": {"text": "\u767d\u5bab"}, "command": {"name": "do_nothing", "args": {}}}',
    answer("白\u200b宫"),
    answer("⽩宫"),                       # a Kangxi radical for the first character
])
def test_breaker_reads_cjk_tricks(trick):
    """A CJK word as JSON escapes, split by a zero-width space or with a radical look-alike is found."""
    assert Breaker(["FBI", "白宫"]).matches(trick) == ["白宫"]


def test_breaker_looks_at_every_string_of_the_answer():
    """A risky word in a command argument or in a key counts, not only in the thoughts."""
    br = Breaker(["FBI"])
    args = {"file": "x", "text": "the \u0046BI"}
    inside_args = json.dumps({"thoughts": {"text": "fine"},
                              "command": {"name": "write_to_file", "args": args}})
    assert br.matches(inside_args) == ["FBI"]
    assert br.matches(json.dumps({"FBI": 1})) == ["FBI"]


def test_breaker_trips_on_three_tricked_outputs():
    """Three consecutive outputs each hiding the word differently trip the breaker."""
    br = Breaker(["FBI"])
    outputs = [r'{"thoughts": {"text": "\u0046BI"}}', answer("ＦＢＩ"), answer("F\u200dΒΙ")]
    assert [br.observe(o) for o in outputs] == [False, False, True]


def test_normalization_keeps_word_boundaries():
    """Normalizing does not make a risky word match inside a longer word or a clean text."""
    br = Breaker(["hack", "FBI"])
    assert br.matches(answer("ＨＡＣＫＩＮＧ the planet")) == []
    assert br.matches(answer("a lifehack")) == []
    assert br.matches(answer("the FBIS archive")) == []
    assert br.matches(answer("nothing to see")) == []
