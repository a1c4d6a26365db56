"""Unit tests of swarm YAML validation: every error names file, field and line."""

from __future__ import annotations

import pytest

from orchestrator.config import effective_llm, load_config, parse_config
from swarm_core.errors import ConfigError

GOOD = """\
name: demo
goal: "Write a haiku"
root: manager
llm: {provider: replay, cassette: demo.cassette.yaml}
limits: {max_depth: 3}
agents:
  manager:
    role: "Delegate."
    commands: [start_agent, task_complete]
    can_start: [writer]
  writer:
    role: "Write."
    commands: [write_to_file, task_complete]
"""


def test_good_config_loads_with_defaults(tmp_path):
    """A valid file loads, relative paths resolve next to it, defaults fill the rest."""
    p = tmp_path / "s.yaml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.limits.max_depth == 3 and cfg.limits.max_agents == 32
    assert cfg.llm.cassette == str(tmp_path / "demo.cassette.yaml")
    assert cfg.workspace == str(tmp_path / "workspace")


@pytest.mark.parametrize("text,where,what", [
    (GOOD.replace("max_depth: 3", "max_depth: -1"), ":5:", "limits.max_depth"),
    (GOOD.replace("root: manager", "root: boss"), "", "root role 'boss'"),
    (GOOD.replace("[write_to_file, task_complete]", "[write_to_file, hack_the_planet]"), ":13:",
     "unknown command(s) hack_the_planet"),
    (GOOD.replace("can_start: [writer]", "can_start: [poet]"), "", "undefined role 'poet'"),
    (GOOD + "colour: blue\n", ":14:", "colour"),
    (GOOD.replace('goal: "Write a haiku"', "goal: [unclosed"), ":", "invalid YAML"),
    ("just a string\n", ":1:", "mapping"),
    (GOOD.replace("cassette: demo.cassette.yaml", "model: x"), "", "llm.cassette is required"),
    (GOOD.replace("cassette: demo.cassette.yaml", "cassette: c.yaml, seed: -5"), ":4:", "llm.seed"),
    (GOOD.replace("cassette: demo.cassette.yaml", "cassette: c.yaml, seed: lucky"), ":4:", "llm.seed"),
    (GOOD + "limits: {max_steps: 4}\n", ":14:", "duplicate key 'limits' (first on line 5, again on line 14)"),
    (GOOD.replace("max_depth: 3", "max_depth: 3, max_steps: true"), ":5:",
     "limits.max_steps: Value error, expected a number, not true/false"),
    (GOOD.replace("max_depth: 3", "max_wall_seconds: 1e400"), ":5:", "limits.max_wall_seconds"),
    (GOOD + "deep: " + "[" * 3000 + "]" * 3000 + "\n", "", "nested deeper than 64 levels"),
    (GOOD + "deep: " + "[" * 100 + "]" * 100 + "\n", "", "nested deeper than 64 levels"),
    (GOOD.replace("root: manager", "root: supervisor").replace("  manager:", "  supervisor:"), "",
     "role 'supervisor' is named like one of the swarm's own processes"),
    (GOOD.replace("  writer:", "  cli-writer:").replace("[writer]", "[cli-writer]"), "",
     "role 'cli-writer' is named like"),
    (GOOD.replace("max_depth: 3", "loop_threshold: 5, loop_window: 3"), ":5:",
     "limits.loop_window: Value error, must be at least limits.loop_threshold (5)"),
])
def test_bad_config_one_clear_error(tmp_path, text, where, what):
    """Each bad config gives a ConfigError naming the file, the line (when known) and the field."""
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert msg.startswith(str(p)), msg
    assert where in msg and what in msg, msg
    assert ei.value.exit_code == 2
    assert "\n" not in msg


def test_loop_window_follows_the_threshold_unless_given():
    """loop_threshold alone sets a window of the same size; a larger window is kept as given."""
    cfg = parse_config(GOOD.replace("max_depth: 3", "loop_threshold: 7"))
    assert cfg.limits.effective_loop_window == 7
    cfg = parse_config(GOOD.replace("max_depth: 3", "loop_threshold: 3, loop_window: 10"))
    assert cfg.limits.effective_loop_window == 10


def test_missing_file():
    """A missing file is a ConfigError, not an OSError traceback."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config("/nonexistent/swarm.yaml")


def test_env_overrides_provider():
    """SWARM_LLM_PROVIDER / SWARM_LLM_BASE_URL / OPENAI_API_KEY select the provider."""
    cfg = parse_config(GOOD.replace("{provider: replay, cassette: demo.cassette.yaml}", "{provider: local}"))
    assert effective_llm(cfg, {}).provider == "local"
    assert effective_llm(cfg, {"OPENAI_API_KEY": "sk-x"}).provider == "openai"
    llm = effective_llm(cfg, {"SWARM_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert llm.provider == "openai" and llm.base_url == "http://127.0.0.1:9/v1"
    assert effective_llm(cfg, {"SWARM_LLM_PROVIDER": "replay", "OPENAI_API_KEY": "k"}).provider == "replay"


def test_unknown_provider_from_the_environment_is_caught_before_up(monkeypatch, tmp_path):
    """SWARM_LLM_PROVIDER naming no provider fails validate/up's preflight, naming the variable."""
    from orchestrator.preflight import preflight

    p = tmp_path / "s.yaml"
    p.write_text(GOOD.replace("{provider: replay, cassette: demo.cassette.yaml}", "{provider: local}"))
    monkeypatch.setenv("SWARM_LLM_PROVIDER", "telepathy")
    with pytest.raises(ConfigError, match="SWARM_LLM_PROVIDER: unknown provider 'telepathy'"):
        preflight(load_config(p))


def test_unknown_provider_in_the_file_names_its_line(tmp_path):
    """An llm.provider that no module provides is a config error with file, line and field."""
    from orchestrator.preflight import preflight

    p = tmp_path / "s.yaml"
    p.write_text(GOOD.replace("provider: replay, cassette: demo.cassette.yaml", "provider: telepathy"))
    with pytest.raises(ConfigError, match=r"s.yaml:4: llm.provider: unknown provider 'telepathy'"):
        preflight(load_config(p))


def test_infinite_and_nan_numbers_are_refused(tmp_path):
    """``.inf`` and ``.nan`` are out of range for every number field, not silently accepted."""
    for value in (".inf", ".nan", "1e400"):
        p = tmp_path / "s.yaml"
        p.write_text(GOOD.replace("max_depth: 3", f"max_wall_seconds: {value}"))
        with pytest.raises(ConfigError, match="limits.max_wall_seconds"):
            load_config(p)


def test_optional_numbers_refuse_bools_too(tmp_path):
    """A bool in an optional number field (a quota) is a type error as well."""
    p = tmp_path / "s.yaml"
    p.write_text(GOOD + "quotas: {agent: {max_tokens: false}}\n")
    with pytest.raises(ConfigError, match="quotas.agent.max_tokens.*not true/false"):
        load_config(p)
