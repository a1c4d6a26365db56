"""The replay cassette format exactly, and record → replay round trips."""

from __future__ import annotations

import json
import threading

import pytest
import yaml

from orchestrator.gateway.providers.base import Request, Result
from orchestrator.gateway.providers.record import RecordProvider, cassette_item
from orchestrator.gateway.providers.replay import ReplayProvider, load_cassette
from swarm_core.errors import CassetteExhausted, ConfigError, ProviderError


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _req(agent, name="", prompt="p" * 40):
    return Request(agent_id=agent, prompt=prompt, name=name)


class _Sleeps:
    def __init__(self):
        self.calls = []

    def __call__(self, seconds):
        self.calls.append(seconds)


def test_mapping_is_sent_as_json_and_string_verbatim(tmp_path):
    """A mapping item comes back as its JSON text, a string item exactly as written."""
    p = _write(tmp_path, """
manager:
  - {thoughts: {text: hi}, command: {name: task_complete, args: {reason: done}}}
  - "this is {not json"
""")
    rp = ReplayProvider.from_file(p)
    first = rp.complete(_req("manager"))
    assert json.loads(first.text) == {"thoughts": {"text": "hi"},
                                      "command": {"name": "task_complete", "args": {"reason": "done"}}}
    assert first.text == json.dumps(json.loads(first.text), ensure_ascii=False)
    assert rp.complete(_req("manager")).text == "this is {not json"


def test_usage_is_estimated_from_prompt_and_answer(tmp_path):
    """Replay reports len//4 token estimates so quotas work."""
    p = _write(tmp_path, 'a: ["' + "x" * 80 + '"]\n')
    res = ReplayProvider.from_file(p).complete(_req("a", prompt="y" * 400))
    assert (res.prompt_tokens, res.completion_tokens, res.model) == (100, 20, "replay")


def test_running_out_fails_with_a_clear_error_naming_the_agent(tmp_path):
    """A list that runs out raises CassetteExhausted naming the agent and the cassette."""
    p = _write(tmp_path, "writer: [one]\n")
    rp = ReplayProvider.from_file(p)
    assert rp.complete(_req("writer")).text == "one"
    with pytest.raises(CassetteExhausted) as err:
        rp.complete(_req("writer"))
    assert "'writer'" in str(err.value) and str(p) in str(err.value)
    assert err.value.code == "cassette_exhausted"


def test_unknown_agent_fails_listing_the_agents_in_the_cassette(tmp_path):
    """An agent with no entry gets CassetteExhausted listing who is in the cassette."""
    rp = ReplayProvider.from_file(_write(tmp_path, "a: [x]\nb: [y]\n"))
    with pytest.raises(CassetteExhausted, match="no responses for agent 'zed'.*a, b"):
        rp.complete(_req("zed"))


def test_repeat_repeats_the_last_response_for_ever(tmp_path):
    """The long form with repeat: true serves the last response again and again."""
    p = _write(tmp_path, """
loop:
  responses: [first, {command: {name: do_nothing, args: {}}}]
  repeat: true
""")
    rp = ReplayProvider.from_file(p)
    texts = [rp.complete(_req("loop")).text for _ in range(6)]
    assert texts[0] == "first"
    assert all(json.loads(t) == {"command": {"name": "do_nothing", "args": {}}} for t in texts[1:])


def test_long_form_without_repeat_runs_out(tmp_path):
    """The long form with repeat false behaves like a plain list."""
    rp = ReplayProvider.from_file(_write(tmp_path, "a: {responses: [x], repeat: false}\n"))
    rp.complete(_req("a"))
    with pytest.raises(CassetteExhausted):
        rp.complete(_req("a"))


def test_delay_s_is_waited_and_removed_from_the_answer(tmp_path):
    """delay_s makes the provider wait that long and is not part of the JSON sent."""
    p = _write(tmp_path, "a:\n  - {command: {name: do_nothing, args: {}}, delay_s: 2.5}\n")
    sleeps = _Sleeps()
    rp = ReplayProvider(load_cassette(p), source=str(p), sleep=sleeps)
    res = rp.complete(_req("a"))
    assert json.loads(res.text) == {"command": {"name": "do_nothing", "args": {}}}
    assert sleeps.calls == [2.5]


def test_delay_is_cut_to_the_callers_deadline(tmp_path):
    """A delay longer than the time left before the deadline waits only the time left."""
    import time

    p = _write(tmp_path, "a:\n  - {x: 1, delay_s: 100}\n")
    sleeps = _Sleeps()
    rp = ReplayProvider(load_cassette(p), sleep=sleeps)
    rp.complete(Request(agent_id="a", prompt="p", deadline=time.time() + 1.0))
    assert 0 < sleeps.calls[0] <= 1.0


def test_each_agent_id_has_its_own_cursor(tmp_path):
    """Two agents with the same name each replay that name's list from the start."""
    rp = ReplayProvider.from_file(_write(tmp_path, "writer: [one, two]\n"))
    assert rp.complete(_req("writer", name="writer")).text == "one"
    assert rp.complete(_req("writer-2", name="writer")).text == "one"
    assert rp.complete(_req("writer", name="writer")).text == "two"
    assert rp.complete(_req("writer-2", name="writer")).text == "two"


def test_lookup_by_name_then_falls_back_to_agent_id(tmp_path):
    """The name given to start_agent selects the list; without a name, the agent id does."""
    rp = ReplayProvider.from_file(_write(tmp_path, "poet: [by-name]\nroot: [by-id]\n"))
    assert rp.complete(_req("x-7", name="poet")).text == "by-name"
    assert rp.complete(_req("root")).text == "by-id"


def test_exact_agent_id_key_wins_over_the_name(tmp_path):
    """A key equal to the agent's id (as record writes for a reused name) is used first."""
    rp = ReplayProvider.from_file(_write(tmp_path, "writer: [a]\nwriter-2: [b]\n"))
    assert rp.complete(_req("writer-2", name="writer")).text == "b"
    assert rp.complete(_req("writer", name="writer")).text == "a"


def test_concurrent_calls_consume_each_response_once(tmp_path):
    """Many threads replaying one agent get every response exactly once."""
    items = "\n".join(f"  - r{i}" for i in range(200))
    rp = ReplayProvider.from_file(_write(tmp_path, f"a:\n{items}\n"))
    got, lock = [], threading.Lock()

    def worker():
        for _ in range(50):
            t = rp.complete(_req("a")).text
            with lock:
                got.append(t)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"r{i}" for i in range(200))


@pytest.mark.parametrize("text, match", [
    ("- a\n- b\n", "must be a mapping of agent name"),
    ("a: 3\n", "a: expected a list of responses"),
    ("a: [[1, 2]]\n", r"a\[0\]: a response must be a mapping"),
    ("a: [{x: 1, delay_s: -1}]\n", r"a\[0\]: delay_s must be a number"),
    ("a: [{x: 1, delay_s: soon}]\n", "delay_s must be a number"),
    ("a: {responses: [x], again: true}\n", "long form takes 'responses'"),
    ("a: {responses: [x], repeat: 'yes'}\n", "repeat must be true or false"),
    ("a: {responses: [], repeat: true}\n", "repeat needs at least one response"),
    ("a: [x\n", "invalid YAML"),
])
def test_bad_cassettes_are_config_errors_naming_the_file(tmp_path, text, match):
    """Every malformed cassette is a ConfigError naming the file and what is wrong."""
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as err:
        load_cassette(p)
    assert str(p) in str(err.value)


def test_missing_cassette_is_a_config_error(tmp_path):
    """A cassette path that does not exist is reported as not found."""
    with pytest.raises(ConfigError, match="cassette not found"):
        load_cassette(tmp_path / "nope.yaml")


def test_empty_cassette_file_has_no_agents(tmp_path):
    """An empty file is a cassette with no agents (every call is exhausted)."""
    rp = ReplayProvider.from_file(_write(tmp_path, ""))
    with pytest.raises(CassetteExhausted):
        rp.complete(_req("a"))


# ----------------------------------------------------------------- record


class _Scripted:
    """A provider that answers from a fixed list (stands in for a real model)."""

    name = "scripted"
    concurrency = 0

    def __init__(self, answers):
        self.answers = list(answers)
        self.closed = False

    def complete(self, req):
        return Result(self.answers.pop(0), 7, 3, "m")

    def close(self):
        self.closed = True


def test_cassette_item_keeps_objects_as_mappings_and_the_rest_verbatim():
    """A JSON object is stored as a mapping; other text (or an object with delay_s) as a string."""
    assert cassette_item('{"a": 1}') == {"a": 1}
    assert cassette_item("[1, 2]") == "[1, 2]"
    assert cassette_item("not json") == "not json"
    assert cassette_item('{"delay_s": 1}') == '{"delay_s": 1}'


def test_record_then_replay_gives_the_same_answers(tmp_path):
    """A recorded run replays: every agent gets the same answers in the same order."""
    path = tmp_path / "out" / "rec.yaml"
    answers = ['{"command": {"name": "write_to_file", "args": {"file": "a.txt", "text": "x: y\\n"}}}',
               "broken {json", '{"command": {"name": "task_complete", "args": {"reason": "ok"}}}',
               "  leading spaces and ünïcode\n"]
    rec = RecordProvider(_Scripted(answers), path)
    calls = [("manager", "manager"), ("writer", "writer"), ("manager", "manager"), ("writer", "writer")]
    got = [rec.complete(_req(agent, name)).text for agent, name in calls]
    assert got == answers
    rp = ReplayProvider.from_file(path)
    replayed = [rp.complete(_req(agent, name)).text for agent, name in calls]
    for original, again in zip(answers, replayed):
        try:
            assert json.loads(again) == json.loads(original)
        except ValueError:
            assert again == original


def test_record_keeps_agents_sharing_a_name_apart(tmp_path):
    """A second agent given a used name is recorded under its id and replays its own answers."""
    path = tmp_path / "rec.yaml"
    rec = RecordProvider(_Scripted(["w1", "w2-first", "w1-second"]), path)
    rec.complete(_req("writer", "writer"))
    rec.complete(_req("writer-2", "writer"))
    rec.complete(_req("writer", "writer"))
    assert yaml.safe_load(path.read_text()) == {"writer": ["w1", "w1-second"], "writer-2": ["w2-first"]}
    rp = ReplayProvider.from_file(path)
    assert rp.complete(_req("writer-2", "writer")).text == "w2-first"
    assert rp.complete(_req("writer", "writer")).text == "w1"


def test_cassette_is_valid_after_every_call(tmp_path):
    """After each recorded call the file on disk is a complete, loadable cassette."""
    path = tmp_path / "rec.yaml"
    rec = RecordProvider(_Scripted([f'{{"n": {i}}}' for i in range(5)]), path)
    assert load_cassette(path) == {}
    for i in range(5):
        rec.complete(_req("a"))
        track = load_cassette(path)["a"]
        assert [json.loads(x.text)["n"] for x in track.answers] == list(range(i + 1))
    assert not [p for p in tmp_path.iterdir() if p.name != "rec.yaml"]  # no temporary files left


def test_record_reports_an_unwritable_cassette_as_a_provider_error(tmp_path):
    """A cassette path that cannot be written is a one-line ProviderError."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProviderError, match="cannot write the cassette"):
        RecordProvider(_Scripted([]), blocker / "sub" / "rec.yaml")


def test_record_close_closes_the_inner_provider(tmp_path):
    """Closing the recorder closes the real provider it wraps."""
    inner = _Scripted([])
    RecordProvider(inner, tmp_path / "r.yaml").close()
    assert inner.closed


def test_cursors_survive_a_restart_of_the_provider(tmp_path):
    """A new provider on the same cursor file (a restarted gateway) goes on where the old one was."""
    from orchestrator.gateway.providers.cursors import CursorLog

    path = _write(tmp_path, "a: [one, two, three]\nb: {responses: [x, y], repeat: true}\n")
    first = ReplayProvider.from_file(path, cursors=CursorLog(tmp_path / "run" / "cursors.jsonl"))
    assert [first.complete(_req("a")).text for _ in range(2)] == ["one", "two"]
    assert [first.complete(_req("b")).text for _ in range(4)] == ["x", "y", "y", "y"]
    # killed: no close(); the restarted one reads the same file
    second = ReplayProvider.from_file(path)  # as the gateway does it
    second.persist_cursors(tmp_path / "run" / "cursors.jsonl")
    assert second.complete(_req("a")).text == "three"
    assert second.complete(_req("b")).text == "y"
    assert ReplayProvider.from_file(path).complete(_req("a")).text == "one"  # no cursor file: from the top


def test_cursor_file_ignores_a_torn_line_and_compacts(tmp_path):
    """A half-written last line is ignored (the earlier value holds); opening rewrites one line per agent."""
    from orchestrator.gateway.providers.cursors import CursorLog

    path = tmp_path / "cursors.jsonl"
    path.write_text('["a", 1]\n["a", 2]\n["b", 5]\n["a", 3')
    log = CursorLog(path)
    assert (log.get("a"), log.get("b"), log.get("c")) == (2, 5, 0)
    assert path.read_text().splitlines() == ['["a", 2]', '["b", 5]']
    log.set("a", 4)
    log.close()
    assert CursorLog(path).get("a") == 4
