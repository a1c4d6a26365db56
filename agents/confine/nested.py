"""The nested sandbox around code run by ``execute_python_file`` (called by ``agents/sandbox_boot.py``).

:func:`enter` turns the bootstrap process into three, and returns only in
the last one, which then runs the code:

- the **outer** process (the one the agent started and watches) creates a
  user, PID, network and mount namespace for its children, forks *init*,
  waits for it and ends exactly as the code's process ended (same exit
  code, or killed by the same signal), so the caller sees no difference;
- **init** (PID 1 of the new PID namespace) locks itself into the exec root
  with ``chroot``, adds a Landlock layer (:func:`agents.confine.paths.exec_view`),
  drops every capability, forks *main*, reaps everything and, when main
  exits, exits too: the kernel then kills whatever main forked, detached or
  daemonized inside the namespace;
- **main** runs the code: no network (an empty network namespace, and
  Landlock handles TCP with no port allowed), only the workspace writable,
  only the interpreter executable, no ``/proc``, no run directory, no bus
  socket, no capability, no signal or abstract socket outside its domain.

Each of the three dies with its parent (``PR_SET_PDEATHSIG``): the agent's
death kills the outer process, whose death kills init, whose death empties
the namespace.

When the caller is itself confined (an agent), the exec root was prepared
in its mount namespace (``spec["prepared"]``) and the new user namespace
stays unmapped (Landlock denies writing uid maps); otherwise (a caller
without a sandbox, e.g. a test) the outer process maps itself and builds the
exec root on ``spec["root"]``, an empty folder the caller made.
"""

from __future__ import annotations

import os
import select
import signal
import struct

from agents.confine import namespaces
from agents.confine.paths import enforce, exec_view

# No typing import: this runs at the start of every execute_python_file (each import costs start-up time);
# the functions annotated "-> None" below that never return say so in their docstrings.

PARENT_GONE_EXIT = 87
NAMESPACES = (namespaces.CLONE_NEWUSER | namespaces.CLONE_NEWNS | namespaces.CLONE_NEWPID
              | namespaces.CLONE_NEWNET)


def _die_with_parent(alive_fd: int | None = None, parent: int | None = None) -> None:
    """SIGKILL when the parent dies; exit now if it is already gone (checked after asking)."""
    namespaces.set_parent_death_signal(signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(PARENT_GONE_EXIT)
    if alive_fd is not None and select.select([alive_fd], [], [], 0)[0]:  # EOF: the writer is dead
        os._exit(PARENT_GONE_EXIT)


def enter(spec: dict) -> None:
    """Become *main* inside the nested sandbox (see the module docstring); returns only there."""
    uid, gid = os.getuid(), os.getgid()
    namespaces.unshare(NAMESPACES)
    if not spec["prepared"]:
        from agents.confine import execroot

        namespaces.write_id_maps(uid, gid)
        execroot.build(spec["root"], spec["workspace_root"])
    _die_with_parent(parent=int(spec["parent"]))  # a change of credentials cleared it
    alive_r, alive_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        os.close(status_r)
        _init(spec, alive_r, status_w)
        return
    os.close(alive_r)
    os.close(status_w)
    _outer(pid, status_r)


def _outer(init: int, status_r: int) -> None:
    """Wait for init; then end the way main ended (exit code or signal). Never returns."""
    while True:
        try:
            _, status = os.waitpid(init, 0)
            break
        except InterruptedError:
            continue
    data = os.read(status_r, 4)
    if len(data) == 4:
        status = struct.unpack("=i", data)[0]
    _end_like(status)


def _end_like(status: int) -> None:
    """Exit with the code, or die of the signal, of wait status ``status``. Never returns."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)


def _init(spec: dict, alive_r: int, status_w: int) -> None:
    """PID 1: lock in, fork main, reap, report main's status, exit (which empties the namespace)."""
    _die_with_parent(alive_fd=alive_r)
    os.close(alive_r)
    os.chroot(spec["root"])
    os.chdir(spec["workspace"])
    enforce(exec_view(spec["workspace"]))
    namespaces.drop_capabilities()
    main = os.fork()
    if main == 0:
        os.close(status_w)
        namespaces.set_parent_death_signal(signal.SIGKILL)
        return
    status = _reap_until(main)
    os.write(status_w, struct.pack("=i", status))
    os._exit(0)


def _reap_until(main: int) -> int:
    """Reap every child (orphans are re-parented to PID 1) until ``main`` has exited; its wait status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 70 << 8
        if pid == main:
            return status
