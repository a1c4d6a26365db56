"""Linux namespaces, mounts and capabilities for the sandbox (``ctypes`` over libc).

Python 3.11 has no ``os.unshare`` and no ``mount``: these are thin wrappers
that raise :class:`OSError` with the call and the errno in the message.

Facts the callers rely on (Linux):

- ``unshare(CLONE_NEWUSER)`` needs a single-threaded caller; the caller gets
  every capability *inside* the new user namespace and none outside it, and
  it must write its own uid/gid maps (:func:`write_id_maps`) before a mapped
  uid exists there. Landlock denies those writes (``/proc``), so a process
  that will later be confined enters its namespace first.
- ``CLONE_NEWPID`` applies to the caller's *children*: the first one forked
  is PID 1 of the new namespace, and when it exits the kernel kills every
  process left in it.
- A process under a Landlock filesystem domain may not mount, unmount or
  ``pivot_root``; ``chroot`` stays allowed (it needs ``CAP_SYS_CHROOT``).
- Capabilities dropped with :func:`drop_capabilities` are gone for good
  (the bounding set is cleared too), which is what keeps a ``chroot`` shut.
"""

from __future__ import annotations

import ctypes
import errno
import os
from functools import lru_cache

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same on every architecture
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 24, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@lru_cache(maxsize=None)  # one handle on the C library per process (forked children share it)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (``CLONE_NEW*`` flags)."""
    _check(_libc().unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def write_id_maps(uid: int, gid: int) -> None:
    """Map uid/gid 0 of the caller's (new) user namespace to ``uid``/``gid`` outside it."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def enter_user_namespace(more: int = 0) -> None:
    """A new user namespace (plus ``more`` namespaces) where the caller is root, mapped to itself."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER | more)
    write_id_maps(uid, gid)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """``mount(2)``."""
    enc = (lambda s: None if s is None else os.fsencode(s))
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source or fstype} on {target}")


def mount_tmpfs(target: str, size: str = "1m", mode: int = 0o755, inodes: int = 0) -> None:
    """A fresh tmpfs of ``size`` bytes (``1m``...) on ``target`` (nosuid, nodev); ``inodes``: at most that
    many files and folders (0: the kernel's default)."""
    data = f"size={size},mode={mode:o}" + (f",nr_inodes={inodes}" if inodes else "")
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data)


def private_mounts() -> None:
    """Make every mount of this mount namespace private: nothing mounted here propagates elsewhere."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def set_mount_attr(target: str, attr: int, *, recursive: bool, clear: bool = False) -> None:
    """Add (with ``clear``: remove) ``MOUNT_ATTR_*`` flags of the mount at ``target`` (and those below it)."""
    libc = _libc()
    mattr = _MountAttr(0, attr, 0, 0) if clear else _MountAttr(attr, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    _check(libc.syscall(SYS_MOUNT_SETATTR, ctypes.c_int(AT_FDCWD), os.fsencode(target),
                        ctypes.c_uint(flags), ctypes.byref(mattr), ctypes.c_size_t(ctypes.sizeof(mattr))),
           f"mount_setattr {target}")


def read_only_except(writable: list[str]) -> None:
    """Make every mount of this mount namespace read-only but ``writable`` (each bound on itself first)."""
    for path in writable:
        mount(path, path, None, MS_BIND | MS_REC)
    set_mount_attr("/", MOUNT_ATTR_RDONLY, recursive=True)
    for path in writable:
        set_mount_attr(path, MOUNT_ATTR_RDONLY, recursive=False, clear=True)


def bind(source: str, target: str, *, readonly: bool) -> None:
    """Bind ``source`` (with everything mounted below it) on ``target``, creating the mount point."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        set_mount_attr(target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=True)


def set_parent_death_signal(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when the thread that forked it dies."""
    _check(_libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def drop_capabilities() -> None:
    """Drop every capability: effective, permitted, inheritable, ambient and the bounding set."""
    libc = _libc()
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err == errno.EINVAL:  # past the last capability this kernel knows
                break
            raise OSError(err, f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(err)}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    machine = os.uname().machine
    nr = _SYS_CAPSET.get(machine)
    if nr is None:
        raise OSError(0, f"capset: unknown system call number on {machine}")
    _check(libc.syscall(nr, ctypes.byref(header), ctypes.byref(data)), "capset")
