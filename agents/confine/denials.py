"""Which rule refused a program, from the exception that ended it (for the swarm's log line).

:func:`classify` maps an uncaught exception to the mechanism that refused
the operation, or None when the failure looks like the program's own:

- ``audit_hook``: a ``PermissionError`` of the runtime audit hook (``sandbox: ...``);
- ``landlock``: ``EACCES``/``EPERM`` (files, TCP, signals, exec: Landlock and capabilities);
- ``read_only_mount``: ``EROFS`` (the exec root's read-only mounts);
- ``network_namespace``: no route or no network (the empty network namespace);
- ``pid_namespace``: ``ESRCH`` (a process outside the PID namespace does not exist there).

Stdlib only: the sandbox bootstrap loads it into the code's own interpreter.
"""

from __future__ import annotations

import errno

_RULES = {
    errno.EACCES: "landlock", errno.EPERM: "landlock", errno.EROFS: "read_only_mount",
    errno.ENETUNREACH: "network_namespace", errno.ENETDOWN: "network_namespace",
    errno.EHOSTUNREACH: "network_namespace", errno.ESRCH: "pid_namespace",
}


def classify(exc: BaseException) -> str | None:
    """The rule that refused the operation behind ``exc``, or None if none did."""
    if isinstance(exc, PermissionError) and str(exc).startswith("sandbox:"):
        return "audit_hook"
    if isinstance(exc, OSError) and exc.errno is not None:
        return _RULES.get(exc.errno)
    return None
