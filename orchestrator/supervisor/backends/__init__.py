"""Backends that run agent processes, chosen by ``backend.kind`` (see ``base.py`` for the seam).

Only :mod:`orchestrator.supervisor.backends.onray` imports Ray; it is loaded
when a swarm asks for ``kind: ray``, never otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from orchestrator.config import SwarmConfig
from orchestrator.supervisor.backends.base import Backend, Report


def _local(cfg: SwarmConfig, run_dir: Path, report: Report, log: Any, keys: Any) -> Backend:
    from orchestrator.supervisor.backends.local import LocalBackend

    return LocalBackend(run_dir, report, log, keys)


def _ray(cfg: SwarmConfig, run_dir: Path, report: Report, log: Any, keys: Any) -> Backend:
    from orchestrator.supervisor.backends.onray.driver import RayBackend

    return RayBackend(cfg, run_dir, report, log, keys)


BACKENDS: dict[str, Callable[[SwarmConfig, Path, Report, Any, Any], Backend]] = {"local": _local, "ray": _ray}


def make_backend(cfg: SwarmConfig, run_dir: Path, report: Report, log: Any, keys: Any = None) -> Backend:
    """The backend ``cfg.backend.kind`` names; ``keys`` (a ``bus.keyring.Keyring``) issues its agents'
    credentials."""
    return BACKENDS[cfg.backend.kind](cfg, Path(run_dir), report, log, keys)


def release_leftovers(facts: dict[str, Any] | None, run_dir: Path, *, keep_agents: bool = False) -> int:
    """After a supervisor that did not go down cleanly: end what its backend left running.

    ``facts`` is what the backend recorded (``Backend.facts``); returns how many processes were ended
    (SwarmError when they cannot be reached). The local backend leaves nothing beyond its agents,
    which ``swarm down`` finds by their pids. With ``keep_agents`` (a resume) only what cannot be
    taken over goes: a private Ray cluster died with its supervisor; hosts on a shared one stay.
    """
    if not facts or facts.get("kind") != "ray":
        return 0
    from orchestrator.supervisor.backends.onray.leftovers import release

    return release(facts, Path(run_dir), keep_agents=keep_agents)
