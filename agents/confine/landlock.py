"""Landlock rulesets through the raw system calls (Linux ≥ 6.7 for all of it).

Why not a binding: the PyPI ``landlock`` package (1.0.0.dev5, alpha) covers
filesystem rules only; Swarm also needs TCP port rules (ABI 4) and the
scoping of signals and abstract Unix sockets (ABI 6). The kernel interface is
three system calls and two packed structures, so a small module over
``ctypes`` is less code to trust than a wrapper that lacks half of it.

Use::

    rs = Ruleset()                          # handles every right this kernel knows
    rs.allow("/usr", READ)                  # a directory: its whole subtree
    rs.allow(python, EXECUTE | READ_FILE)   # a file: file rights only
    rs.allow_port(5555)                     # TCP connect to this port
    rs.restrict_self()                      # this thread and all its future children

Landlock only ever removes rights: a restricted process can add a further
(stricter) layer but never lift one, and every child inherits the domain. It
applies to root too. ``restrict_self`` sets ``PR_SET_NO_NEW_PRIVS`` first.
Paths that do not exist are skipped (``allow`` returns False).
"""

from __future__ import annotations

import ctypes
import os
import stat
from functools import lru_cache

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38

# filesystem rights (bit, ABI that introduced it)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a rule on a file may grant

READ = READ_FILE | READ_DIR
FILE_RW = READ_FILE | WRITE_FILE | TRUNCATE
EVERYTHING = (1 << 16) - 1

# network rights (ABI 4) and scopes (ABI 6)
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


class LandlockError(OSError):
    """The kernel refused a Landlock call (the message names which)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


@lru_cache(maxsize=None)  # one handle on the C library per process (forked children share it)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


@lru_cache(maxsize=None)  # the running kernel's ABI does not change
def abi_version() -> int:
    """The Landlock ABI this kernel offers; 0 when Landlock is missing or disabled."""
    libc = _libc()
    version = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(version))


def handled_fs(abi: int) -> int:
    """Every filesystem right ABI ``abi`` knows (all of them are handled: deny unless allowed)."""
    return _FS_BY_ABI[min(max(abi, 1), 5)]


class Ruleset:
    """A Landlock ruleset being built; :meth:`restrict_self` enforces it on this process."""

    def __init__(self, abi: int | None = None, *, network: bool = True, scope: bool = True) -> None:
        self.abi = abi_version() if abi is None else abi
        if self.abi < 1:
            raise LandlockError(0, "Landlock is not available in this kernel")
        self.fs = handled_fs(self.abi)
        net = BIND_TCP | CONNECT_TCP if network and self.abi >= 4 else 0
        scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scope and self.abi >= 6 else 0
        self._libc = _libc()
        attr = _RulesetAttr(self.fs, net, scoped)
        fd = self._libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                                ctypes.c_uint32(0))
        if fd < 0:
            self._fail("landlock_create_ruleset")
        self.fd = int(fd)
        self.network = bool(net)

    def _fail(self, what: str) -> None:
        err = ctypes.get_errno()
        raise LandlockError(err, f"{what}: {os.strerror(err)}")

    def allow(self, path: str | os.PathLike[str], access: int) -> bool:
        """Grant ``access`` beneath ``path`` (file rights only for a file); False if it does not exist."""
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                access &= FILE_ONLY
            access &= self.fs
            if not access:
                return False
            rule = _PathBeneathAttr(access, pfd)
            if self._libc.syscall(SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_PATH_BENEATH),
                                  ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                self._fail(f"landlock_add_rule {os.fspath(path)}")
        finally:
            os.close(pfd)
        return True

    def allow_port(self, port: int, access: int = CONNECT_TCP) -> None:
        """Allow TCP ``access`` (connect by default) to ``port``; no-op when network is not handled."""
        if not self.network:
            return
        rule = _NetPortAttr(access, port)
        if self._libc.syscall(SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_NET_PORT),
                              ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            self._fail(f"landlock_add_rule port {port}")

    def restrict_self(self) -> None:
        """Enforce the ruleset on the calling thread (and every child it makes); closes the ruleset."""
        try:
            if self._libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                self._fail("prctl(PR_SET_NO_NEW_PRIVS)")
            if self._libc.syscall(SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)) != 0:
                self._fail("landlock_restrict_self")
        finally:
            self.close()

    def close(self) -> None:
        """Release the ruleset's descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
