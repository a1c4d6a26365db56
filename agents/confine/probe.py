"""Can this kernel provide the sandbox? (``swarm up`` asks before starting a ``kernel`` swarm.)

:func:`probe` checks, without changing the calling process: Landlock with
ABI ≥ :data:`MIN_ABI` (6: TCP rules and the scoping of signals and abstract
Unix sockets), and, in a forked child, that a user namespace with PID,
network and mount namespaces can be created, mapped and given a tmpfs (what
the zygote and every nested sandbox do). It returns a :class:`Probe` whose
``reason`` says what is missing in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agents.confine import landlock, namespaces

MIN_ABI = 6
_NAMESPACES = namespaces.CLONE_NEWNS | namespaces.CLONE_NEWPID | namespaces.CLONE_NEWNET


@dataclass(frozen=True)
class Probe:
    """What the kernel offers: ``ok`` when all of the sandbox works; otherwise ``reason``."""

    ok: bool
    abi: int
    reason: str = ""


def _namespaces_work() -> str:
    """'' if a child can create and use the namespaces, else what failed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports the first error on the pipe and never returns
        os.close(r)
        try:
            namespaces.enter_user_namespace(_NAMESPACES)
            namespaces.mount_tmpfs("/tmp")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(w, str(exc).encode()[:500] or b"failed")
        os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            error = f.read().decode(errors="replace")
    finally:
        os.waitpid(pid, 0)
    return error


def probe() -> Probe:
    """Check Landlock's ABI and the namespaces the sandbox needs."""
    abi = landlock.abi_version()
    if abi < MIN_ABI:
        have = f"ABI {abi}" if abi else "no Landlock (disabled or too old a kernel)"
        return Probe(False, abi, f"the kernel sandbox needs Landlock ABI >= {MIN_ABI} (Linux >= 6.12); "
                                 f"this kernel has {have}")
    error = _namespaces_work()
    if error:
        return Probe(False, abi, f"the kernel sandbox needs user, mount, PID and network namespaces: {error}")
    return Probe(True, abi)
