"""Checks of a valid config against the machine, run by ``swarm validate`` and ``swarm up``.

The config schema (``config.py``) says what a file may contain; these checks
say whether what it names is usable here, so that ``validate`` catches what
``up`` would otherwise trip over later: a provider that does not exist, a
replay cassette that is missing or malformed, a workspace path that exists
but is not a directory. Each
check raises :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from orchestrator.config import SwarmConfig, effective_llm, field_line
from swarm_core.errors import ConfigError

Check = Callable[[SwarmConfig], None]


def _provider(cfg: SwarmConfig) -> None:
    from orchestrator.gateway.providers.registry import PROVIDERS, RECORDABLE

    for name, value, allowed in (("provider", cfg.llm.provider, tuple(PROVIDERS)),
                                 ("record_provider", cfg.llm.record_provider, RECORDABLE)):
        if value not in allowed:
            line = field_line(cfg.source, ("llm", name))
            where = f":{line}" if line else ""
            raise ConfigError(f"{cfg.source}{where}: llm.{name}: unknown provider {value!r}; one of: "
                              f"{', '.join(allowed)}", file=cfg.source, field=f"llm.{name}", line=line or 0)
    chosen = effective_llm(cfg).provider  # SWARM_LLM_PROVIDER may name another one
    if chosen not in PROVIDERS:
        raise ConfigError(f"environment: SWARM_LLM_PROVIDER: unknown provider {chosen!r}; one of: "
                          f"{', '.join(PROVIDERS)}", field="llm.provider")


def _cassette(cfg: SwarmConfig) -> None:
    if cfg.llm.provider != "replay" or not cfg.llm.cassette:
        return
    from orchestrator.gateway.providers.replay import load_cassette

    try:
        load_cassette(cfg.llm.cassette)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: llm.cassette: {exc.message}", file=cfg.source,
                          field="llm.cassette") from None


def _workspace(cfg: SwarmConfig) -> None:
    path = Path(cfg.workspace)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{cfg.source}: workspace: {path} exists and is not a directory",
                          file=cfg.source, field="workspace")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"{cfg.source}: workspace: {parent} is not a directory", file=cfg.source,
                          field="workspace")


CHECKS: tuple[Check, ...] = (_provider, _cassette, _workspace)


def preflight(cfg: SwarmConfig) -> None:
    """Run every check; the first problem raises ConfigError."""
    for check in CHECKS:
        check(cfg)
