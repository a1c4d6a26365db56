"""The root folder that code run by ``execute_python_file`` is locked into (``chroot``).

:func:`build` mounts a small tmpfs on ``root`` and binds into it, at their
own absolute paths, only what :func:`agents.confine.paths.exec_view` keeps:
the Python installation, the system libraries and a few files of ``/etc``
(all read-only, nosuid, nodev), the workspace (read-write) and a few
devices (``/dev/null`` …). Symbolic links on the way (``/lib`` →
``usr/lib``) are recreated, so every path means what it means outside. No
``/proc``, ``/sys``, ``/tmp``, ``/run``, no run directory and no bus socket
exist in it. Then the tmpfs itself is made read-only.

It needs a mount namespace of its own where the caller holds
``CAP_SYS_ADMIN`` and no Landlock domain (mounting is denied under
Landlock): the zygote child before it confines an agent, or the sandbox
bootstrap when the caller was not confined. :func:`is_prepared` tells a
prepared root (it holds :data:`MARKER`) from an empty mount point.
"""

from __future__ import annotations

import os

from agents.confine import namespaces
from agents.confine.paths import DEVICES, exec_view

MARKER = ".swarm-exec-root"


def is_prepared(root: str) -> bool:
    """Whether ``root`` is a built exec root (in this mount namespace)."""
    return os.path.exists(os.path.join(root, MARKER))


def inside(root: str, path: str) -> str:
    """Where absolute ``path`` lives inside ``root``."""
    return os.path.join(root, path.lstrip("/"))


def _links_on_the_way(root: str, path: str) -> None:
    """Recreate in ``root`` every symbolic link among the components of ``path``."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        target = inside(root, current)
        if os.path.islink(current):
            if not os.path.lexists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(os.readlink(current), target)
            _links_on_the_way(root, os.path.realpath(current))
            return


def build(root: str, workspace: str | None) -> None:
    """Mount the exec root on ``root`` for ``workspace`` (see the module docstring)."""
    view = exec_view(workspace)
    namespaces.mount_tmpfs(root)
    for path in view.read:
        namespaces.bind(path, inside(root, path), readonly=True)
    for path in view.write:
        namespaces.bind(path, inside(root, path), readonly=False)
    for path in view.files_rw:
        namespaces.bind(path, inside(root, path), readonly=False)
    for path in (*view.read, *view.execute, *DEVICES, *view.write, *_aliases()):
        _links_on_the_way(root, path)
    os.close(os.open(inside(root, MARKER), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    namespaces.set_mount_attr(root, namespaces.MOUNT_ATTR_RDONLY, recursive=False)


def _aliases() -> tuple[str, ...]:
    """Paths the interpreter is known by that may go through links (``sys.executable`` in a venv)."""
    import sys

    return tuple(p for p in (sys.executable, sys.prefix, sys.base_prefix, "/lib", "/lib64") if p)
