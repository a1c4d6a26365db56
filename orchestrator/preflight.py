"""Checks of a valid config against the machine, run by ``swarm validate`` and ``swarm up``.

The config schema (``config.py``) says what a file may contain; these checks
say whether what it names is usable here, so that ``validate`` catches what
``up`` would otherwise trip over later: a provider that does not exist, a
replay cassette that is missing or malformed, a workspace path that exists
but is not a directory. Each
check raises :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
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


# filesystems every node of a cluster can mount at the same path (a workspace on any other is one node's)
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "lustre", "glusterfs", "gpfs",
                      "beegfs", "9p", "virtiofs", "afs", "ocfs2", "gfs2", "fuse")


def filesystem_of(path: str) -> str:
    """The type of the filesystem ``path`` (or its nearest existing parent) lies on; '' if unknown."""
    import psutil

    real = Path(os.path.realpath(path))
    while not real.exists() and real != real.parent:
        real = real.parent
    best, fstype = "", ""
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") or "/"
        inside = str(real) == mount or str(real).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, part.fstype
    return fstype


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _refuse(cfg: SwarmConfig, loc: tuple[str, ...], what: str) -> ConfigError:
    """A ConfigError naming the file, the line of field ``loc`` (when the file tells it) and ``what``."""
    field = ".".join(loc)
    line = field_line(cfg.source, loc)
    where = f":{line}" if line else ""
    return ConfigError(f"{cfg.source}{where}: {field}: {what}", file=cfg.source, field=field, line=line or 0)


def _backend(cfg: SwarmConfig) -> None:
    """``backend: ray``: Ray installed; on a real cluster, a bus other nodes can reach, a shared workspace."""
    b = cfg.backend
    if b.kind != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise _refuse(cfg, ("backend", "kind"),
                      "ray is not installed; install the extra: pip install 'swarm[ray]'")
    if b.address == "local":
        return  # a private cluster on this machine: every node sees this bus and this workspace
    if _loopback(cfg.bus.host):
        raise _refuse(cfg, ("bus", "host"), f"{cfg.bus.host} is not reachable from other nodes; "
                                            "set it to an address of this machine they can dial")
    fstype = filesystem_of(cfg.workspace)
    if fstype.split(".")[0] not in SHARED_FILESYSTEMS:
        raise _refuse(cfg, ("workspace",), "with backend ray the workspace must be a path visible on "
                      f"every node (a shared filesystem: NFS, CephFS, ...); {cfg.workspace} is on "
                      f"{fstype or 'an unknown filesystem'}")


CHECKS: tuple[Check, ...] = (_provider, _cassette, _workspace, _backend)


def preflight(cfg: SwarmConfig) -> None:
    """Run every check; the first problem raises ConfigError."""
    for check in CHECKS:
        check(cfg)
