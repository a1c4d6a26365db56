"""Checks of a valid config against the machine, run by ``swarm validate`` and ``swarm up``.

The config schema (``config.py``) says what a file may contain; these checks
say whether what it names is usable here, so that ``validate`` catches what
``up`` would otherwise trip over later: a replay cassette that is missing
or malformed, a workspace path that exists but is not a directory. Each
check raises :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from orchestrator.config import SwarmConfig
from swarm_core.errors import ConfigError

Check = Callable[[SwarmConfig], None]


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


CHECKS: tuple[Check, ...] = (_cassette, _workspace)


def preflight(cfg: SwarmConfig) -> None:
    """Run every check; the first problem raises ConfigError."""
    for check in CHECKS:
        check(cfg)
