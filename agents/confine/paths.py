"""What a confined process may read, write, execute and connect to: a :class:`View`.

Two views exist. :func:`agent_view` is an agent process: the interpreter
(prefixes, system libraries, the project's packages) read-only, its
workspace read-write, its own JSON log as a single writable file, TCP
connect to the bus port only. :func:`exec_view` is code run by
``execute_python_file``: the interpreter read-only, the workspace
read-write, nothing else. Both may execute only the Python interpreter
itself (and its ELF loader): no shell, no other program.

:func:`enforce` turns a view into a Landlock ruleset that handles every
right, so anything not listed is denied, and restricts the calling process.
"""

from __future__ import annotations

import os
import struct
import sys
from collections import namedtuple
from functools import lru_cache

from agents.confine import landlock

SYSTEM_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# the files of /etc an interpreter reads (not /etc as a whole: it holds /etc/shadow and private keys)
EXEC_ETC = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group")
AGENT_ETC = EXEC_ETC + ("/etc/nsswitch.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf",
                        "/etc/resolv.conf", "/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/pki/tls/certs",
                        "/etc/ca-certificates")
PT_INTERP = 3


# What a confined process keeps; everything else is denied. (A namedtuple, not a dataclass: this module is
# imported by the sandbox bootstrap of every execute_python_file run, where dataclasses' imports cost ~20 ms.)
View = namedtuple("View", ["read", "execute", "write", "files_rw", "ports"], defaults=((), (), (), (), ()))
View.__doc__ = """read: read-only (a directory: its subtree); execute: files it may execve; write:
directories with every right; files_rw: single files it may read and write (devices, its own log);
ports: TCP ports it may connect to."""


def minimal(paths: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Real paths of those that exist, without any that lies inside another, sorted."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    out: list[str] = []
    for p in real:
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return tuple(out)


@lru_cache(maxsize=None)  # the interpreter's layout does not change while it runs
def python_roots() -> tuple[str, ...]:
    """The interpreter's installation: its prefixes (a venv and the Python it was made from)."""
    return minimal([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix])


def elf_interpreter(path: str) -> str | None:
    """The ELF loader named in ``path``'s PT_INTERP header (64-bit little-endian ELF), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                ph = f.read(phentsize)
                if len(ph) >= 40 and struct.unpack_from("<I", ph, 0)[0] == PT_INTERP:
                    offset, = struct.unpack_from("<Q", ph, 8)
                    size, = struct.unpack_from("<Q", ph, 32)
                    f.seek(offset)
                    return f.read(size).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


@lru_cache(maxsize=None)
def interpreter_files(executable: str = sys.executable) -> tuple[str, ...]:
    """The files an ``execve`` of the interpreter opens for execution: the binary and its loader."""
    real = os.path.realpath(executable)
    loader = elf_interpreter(real)
    return minimal([real] + ([os.path.realpath(loader)] if loader else []))


def project_dirs(packages: tuple[str, ...]) -> tuple[str, ...]:
    """The folders of the project's (already imported) top-level packages."""
    dirs: list[str] = []
    for name in packages:
        module = sys.modules.get(name)
        dirs.extend(getattr(module, "__path__", []) or [])
    return minimal(dirs)


def tcp_port(endpoint: str) -> int | None:
    """The port of a ``tcp://host:port`` endpoint, None for other transports."""
    if not endpoint.startswith("tcp://"):
        return None
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


@lru_cache(maxsize=None)
def static_reads(etc: tuple[str, ...], packages: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The read-only part of a view that depends only on the installation (computed once)."""
    return minimal([*python_roots(), *project_dirs(packages), *SYSTEM_ROOTS, *etc])


@lru_cache(maxsize=None)
def devices() -> tuple[str, ...]:
    """The device files of :data:`DEVICES` this machine has."""
    return minimal(list(DEVICES))


def exec_view(workspace: str | None) -> View:
    """Code run by ``execute_python_file``: the interpreter read-only, the workspace read-write."""
    return View(read=static_reads(EXEC_ETC), execute=interpreter_files(),
                write=minimal([workspace] if workspace else []), files_rw=devices())


def agent_view(*, workspace: str | None, log_file: str, packages: tuple[str, ...], endpoint: str,
               scratch: str | None = None) -> View:
    """An agent process: interpreter, project packages and own /proc read-only; workspace, the scratch
    tmpfs its executed code works in (``agents.stage``) and log writable.

    Nothing of the run directory but its own log: its bus credential came in its spec, in memory.
    """
    port = tcp_port(endpoint)
    own_proc = os.path.realpath("/proc/self")
    read = static_reads(AGENT_ETC, packages) + (own_proc,)
    return View(read=read, execute=interpreter_files(), write=minimal([p for p in (workspace, scratch) if p]),
                files_rw=devices() + minimal([log_file]), ports=(port,) if port else ())


def enforce(view: View) -> None:
    """Restrict the calling process to ``view`` (Landlock; signals and abstract sockets scoped)."""
    rs = landlock.Ruleset()
    try:
        for p in view.read:
            rs.allow(p, landlock.READ)
        for p in view.execute:
            rs.allow(p, landlock.EXECUTE | landlock.READ_FILE)
        for p in view.write:
            rs.allow(p, landlock.EVERYTHING)
        for p in view.files_rw:
            rs.allow(p, landlock.FILE_RW | landlock.IOCTL_DEV)
        for port in view.ports:
            rs.allow_port(port)
        rs.restrict_self()
    finally:
        rs.close()
