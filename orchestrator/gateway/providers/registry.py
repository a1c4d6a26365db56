"""Which model providers exist: a name → factory table, read by the gateway and the config.

**Add a provider:** one module in this package with a class that follows
``base.Provider`` (``complete(Request) -> Result``, ``close()``, ``name``,
``concurrency``), one factory below that builds it from the ``llm`` settings,
its entry in :data:`PROVIDERS`, and its tests. ``llm.provider`` in a swarm
YAML is checked against this table, so nothing else changes.

Factories import their module when called: ``openai`` and ``llama_cpp`` are
loaded only by a gateway that uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from swarm_core.errors import ConfigError

if TYPE_CHECKING:
    from orchestrator.config import LLM
    from orchestrator.gateway.providers.base import Provider

Factory = Callable[["LLM", Any], "Provider"]


def _replay(llm: LLM, log: Any) -> Provider:
    from orchestrator.gateway.providers.replay import ReplayProvider

    if not llm.cassette:
        raise ConfigError("llm.cassette is required when llm.provider is replay", field="llm.cassette")
    return ReplayProvider.from_file(llm.cassette)


def _record(llm: LLM, log: Any) -> Provider:
    from orchestrator.gateway.providers.record import RecordProvider

    if not llm.record_to:
        raise ConfigError("llm.record_to (the cassette to write) is required when llm.provider "
                          "is record", field="llm.record_to")
    return RecordProvider(make_provider(llm, log, llm.record_provider), llm.record_to)


def _openai(llm: LLM, log: Any) -> Provider:
    from orchestrator.gateway.providers.openai import OpenAIProvider

    return OpenAIProvider(llm, log=log)


def _local(llm: LLM, log: Any) -> Provider:
    from orchestrator.gateway.providers.local import LocalProvider

    return LocalProvider(llm, log=log)


PROVIDERS: dict[str, Factory] = {"replay": _replay, "record": _record, "openai": _openai, "local": _local}
RECORDABLE = ("local", "openai")  # what ``record`` may wrap (a real model)


def make_provider(llm: LLM, log: Any, provider: str | None = None) -> Provider:
    """Build the provider ``llm`` names (``provider`` overrides it, e.g. record's inner one)."""
    kind = provider or llm.provider
    factory = PROVIDERS.get(kind)
    if factory is None:
        raise ConfigError(f"llm.provider: unknown provider {kind!r} ({', '.join(PROVIDERS)})",
                          field="llm.provider")
    return factory(llm, log)
