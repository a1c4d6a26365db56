"""Model providers of the gateway, one module each; :func:`make_provider` picks one.

``replay`` and ``record`` need nothing beyond the core install; ``openai``
imports the ``openai`` client; ``local`` imports ``llama_cpp`` lazily (the
``local`` extra) when it first loads the model.
"""

from __future__ import annotations

from typing import Any

from orchestrator.config import LLM
from orchestrator.gateway.providers.base import Provider, Request, Result
from swarm_core.errors import ConfigError


def make_provider(llm: LLM, log: Any, provider: str | None = None) -> Provider:
    """Build the provider ``llm`` names (``provider`` overrides it, e.g. record's inner one)."""
    kind = provider or llm.provider
    if kind == "replay":
        from orchestrator.gateway.providers.replay import ReplayProvider

        if not llm.cassette:
            raise ConfigError("llm.cassette is required when llm.provider is replay", field="llm.cassette")
        return ReplayProvider.from_file(llm.cassette)
    if kind == "record":
        from orchestrator.gateway.providers.record import RecordProvider

        if not llm.record_to:
            raise ConfigError("llm.record_to (the cassette to write) is required when llm.provider "
                              "is record", field="llm.record_to")
        return RecordProvider(make_provider(llm, log, llm.record_provider), llm.record_to)
    if kind == "openai":
        from orchestrator.gateway.providers.openai import OpenAIProvider

        return OpenAIProvider(llm, log=log)
    if kind == "local":
        from orchestrator.gateway.providers.local import LocalProvider

        return LocalProvider(llm, log=log)
    raise ConfigError(f"llm.provider: unknown provider {kind!r} (replay, record, openai, local)",
                      field="llm.provider")


__all__ = ["Provider", "Request", "Result", "make_provider"]
