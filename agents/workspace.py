"""The swarm workspace: every file path an agent names resolves inside it, or is refused.

``Workspace(root, agent_subdir=None)`` jails paths in ``root`` (or in the
per-agent folder ``root/agent_subdir``, which then cannot see its siblings).
:meth:`Workspace.resolve` turns a model-supplied path into a real path inside
the jail or raises :class:`~agents.commands.context.CommandError` saying why:

- lexical: not a string, empty, NUL byte, control characters, undecodable
  text, longer than ``MAX_PATH_CHARS`` or a name longer than 255 bytes,
  absolute (``/...``), home (``~``), Windows drive (``C:``) or backslash
  paths, URLs, any ``..`` component;
- on disk (every existing component is checked with ``lstat``): a component
  that is a file but has more after it, a symlink whose target (followed to
  the end of its chain) leaves the jail, a broken or looping symlink, and a
  final component that is a device, FIFO or socket.

The file operations (:meth:`read_bytes`, :meth:`write_bytes`, :meth:`delete`,
:meth:`list_files`) then re-open the resolved path one component at a time
from a directory descriptor of the jail with ``O_NOFOLLOW``, so a symlink
swapped in after the check is refused instead of followed; missing parent
folders are created inside only.

With ``quota_bytes`` (``limits.workspace_mb``) every write first adds up the
regular files of the jail (:meth:`usage`, symlinks not followed) and refuses,
with the figures, a write that would take the total past the quota.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

from agents.commands.context import CommandError

_MB = 1 << 20  # limits.workspace_mb counts in MiB, like the other *_mb limits
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class Workspace:
    """A folder that jails every path an agent uses."""

    def __init__(self, root: str | os.PathLike[str], agent_subdir: str | None = None,
                 quota_bytes: int | None = None) -> None:
        self.quota_bytes = quota_bytes
        os.makedirs(root, exist_ok=True)
        self.root = Path(os.path.realpath(root))
        base = self.root
        if agent_subdir is not None:
            name = str(agent_subdir)
            if (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
                    or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES):
                raise ValueError(f"agent workspace folder {agent_subdir!r} is not a single plain name")
            base = self.root / name
            try:
                os.mkdir(base, 0o755)
            except FileExistsError:
                pass
            if not stat.S_ISDIR(os.lstat(base).st_mode):
                raise ValueError(f"agent workspace folder {str(base)!r} is not a real folder")
        self.base = base

    # -- resolution -----------------------------------------------------------------------------

    def _refuse(self, path: Any, reason: str) -> CommandError:
        if isinstance(path, str):
            shown = repr(path if len(path) <= 120 else f"{path[:60]}…")
        else:
            shown = repr(path)[:60]
        return CommandError(f"refused path {shown}: {reason}")

    def _parts(self, path: Any) -> list[str]:
        """Lexical checks; the path's components without ``.`` and empty ones."""
        if not isinstance(path, str):
            raise self._refuse(path, f"a path must be a string, not {type(path).__name__}")
        if "\x00" in path:
            raise self._refuse(path, "it contains a NUL byte")
        if not path.strip():
            raise self._refuse(path, "the path is empty")
        if len(path) > MAX_PATH_CHARS:
            raise self._refuse(path, f"it is {len(path)} characters long, more than {MAX_PATH_CHARS}")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise self._refuse(path, "it is not valid text") from None
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            raise self._refuse(path, "it contains a control character")
        if path.startswith("~"):
            raise self._refuse(path, "home folders ('~') are outside the workspace; use a relative path")
        if path.startswith("/"):
            raise self._refuse(path, "absolute paths are not allowed; use a path relative to the workspace")
        if "\\" in path:
            raise self._refuse(path, "backslashes are not allowed; separate folders with '/'")
        if _DRIVE.match(path):
            raise self._refuse(path, "drive paths are not allowed; use a path relative to the workspace")
        if "://" in path:
            raise self._refuse(path, "URLs are not file paths")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self._refuse(path, "'..' is not allowed; paths stay inside the workspace")
        for part in parts:
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                raise self._refuse(path, f"a name is longer than {MAX_NAME_BYTES} bytes")
        return parts

    def _inside(self, real: str) -> bool:
        base = str(self.base)
        return real == base or real.startswith(base + os.sep)

    def _follow(self, link: Path, path: str) -> Path:
        """The end of the symlink chain at ``link``, if it stays inside the jail."""
        try:
            real = os.path.realpath(link, strict=True)
        except OSError as exc:
            target = os.path.realpath(link)
            if not self._inside(target):
                raise self._refuse(path, "it goes through a symlink leading out of the workspace") from None
            if exc.errno == errno.ELOOP:
                raise self._refuse(path, "it goes through a symlink loop") from None
            raise self._refuse(path, "it goes through a broken symlink") from None
        if not self._inside(real):
            raise self._refuse(path, "it goes through a symlink leading out of the workspace")
        return Path(real)

    def resolve(self, path: Any, *, must_exist: bool = False, allow_base: bool = False,
                follow_final: bool = True) -> Path:
        """The real path inside the jail that ``path`` names; CommandError with the reason if refused.

        ``allow_base``: the path may name the jail folder itself (``.``).
        ``follow_final=False``: a final symlink (pointing inside) is returned as the link itself.
        """
        parts = self._parts(path)
        if not parts:
            if allow_base:
                return self.base
            raise self._refuse(path, "it names the workspace folder itself, not a file")
        cur = self.base
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            nxt = cur / name
            try:
                st = os.lstat(nxt)
            except FileNotFoundError:
                if must_exist:
                    raise self._refuse(path, f"{self.show(nxt)!r} does not exist") from None
                return nxt.joinpath(*parts[i + 1:])
            except OSError as exc:
                raise self._refuse(path, exc.strerror or str(exc)) from None
            if stat.S_ISLNK(st.st_mode):
                real = self._follow(nxt, path)
                if last and not follow_final:
                    return nxt
                nxt, st = real, os.stat(real)
            if not last and not stat.S_ISDIR(st.st_mode):
                raise self._refuse(path, f"{self.show(nxt)!r} is a file, not a folder")
            if last and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise self._refuse(path, f"it is {_kind(st.st_mode)}")
            cur = nxt
        return cur

    def show(self, real: Path) -> str:
        """``real`` relative to the jail, as the model should see it."""
        try:
            rel = Path(real).relative_to(self.base).as_posix()
        except ValueError:
            return str(real)
        return rel if rel != "." else "."

    # -- descriptor-walk operations -------------------------------------------------------------

    def _open_parent(self, real: Path, create: bool) -> tuple[int, str]:
        """A descriptor of ``real``'s folder, reached without following symlinks, and its name."""
        parts = real.relative_to(self.base).parts
        dfd = os.open(self.base, _O_DIR)
        try:
            for name in parts[:-1]:
                try:
                    nfd = os.open(name, _O_DIR, dir_fd=dfd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, 0o755, dir_fd=dfd)
                    except FileExistsError:
                        pass
                    nfd = os.open(name, _O_DIR, dir_fd=dfd)
                os.close(dfd)
                dfd = nfd
        except BaseException:
            os.close(dfd)
            raise
        return dfd, parts[-1]

    def _error(self, exc: OSError, verb: str, path: str) -> CommandError:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return self._refuse(path, "a symlink or file appeared where a folder was expected")
        return CommandError(f"cannot {verb} {path!r}: {exc.strerror or exc}")

    def _open_file(self, path: str, flags: int, *, create: bool, verb: str) -> tuple[int, Path]:
        real = self.resolve(path, must_exist=not create)
        if real == self.base or (real.exists() and real.is_dir()):
            raise CommandError(f"cannot {verb} {path!r}: it is a folder")
        try:
            dfd, name = self._open_parent(real, create)
            try:
                fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644, dir_fd=dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise self._error(exc, verb, path) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise self._refuse(path, f"it is {_kind(mode)}")
        return fd, real

    def read_bytes(self, path: str, limit: int) -> tuple[bytes, int]:
        """At most ``limit`` bytes of the file and its full size."""
        fd, _ = self._open_file(path, os.O_RDONLY, create=False, verb="read")
        try:
            size = os.fstat(fd).st_size
            chunks, got = [], 0
            while got < limit:
                chunk = os.read(fd, min(65536, limit - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks), max(size, got)
        except OSError as exc:
            raise self._error(exc, "read", path) from None
        finally:
            os.close(fd)

    def usage(self) -> int:
        """Bytes in the regular files of the jail (symlinks are not followed)."""
        total = 0
        walker = os.fwalk(self.base, follow_symlinks=False)
        try:
            for _, _, files, dfd in walker:
                for name in files:
                    try:
                        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    except OSError:
                        continue  # gone meanwhile
                    if stat.S_ISREG(st.st_mode):
                        total += st.st_size
        finally:
            walker.close()
        return total

    def check_quota(self, path: str, adding: int, *, replacing: bool, usage: int | None = None) -> int:
        """CommandError unless writing ``adding`` bytes to ``path`` keeps the jail within its quota; the
        total after the write. ``usage``: the jail's current total when the caller keeps count."""
        if self.quota_bytes is None:
            return 0
        old = 0
        if replacing:
            try:
                st = os.lstat(self.resolve(path))
                old = st.st_size if stat.S_ISREG(st.st_mode) else 0
            except OSError:
                old = 0
        total = (self.usage() if usage is None else usage) - old + adding
        if total > self.quota_bytes:
            raise CommandError(
                f"cannot write {path!r}: the workspace would hold {total / _MB:.1f} MB, more than its limit "
                f"of {self.quota_bytes / _MB:g} MB (limits.workspace_mb); delete files it no longer needs")
        return total

    def write_bytes(self, path: str, data: bytes, *, append: bool = False, usage: int | None = None) -> Path:
        """Write (or append) ``data`` within the quota, creating missing folders inside; the real path.

        ``usage``: the jail's current total, when the caller keeps count (else it is added up).
        """
        self.check_quota(path, len(data), replacing=not append, usage=usage)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        fd, real = self._open_file(path, flags, create=True, verb="append to" if append else "write")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        finally:
            os.close(fd)
        return real

    def delete(self, path: str) -> Path:
        """Remove one file (a symlink inside is removed itself, not its target)."""
        real = self.resolve(path, must_exist=True, follow_final=False)
        if real == self.base or (not real.is_symlink() and real.is_dir()):
            raise CommandError(f"cannot delete {path!r}: it is a folder; delete_file removes files only")
        try:
            dfd, name = self._open_parent(real, create=False)
            try:
                os.unlink(name, dir_fd=dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise self._error(exc, "delete", path) from None
        return real

    def list_files(self, path: str, limit: int) -> tuple[list[str], bool]:
        """Files under folder ``path`` (hidden names skipped), relative to the jail; and truncated?"""
        real = self.resolve(path, must_exist=True, allow_base=True)
        if not real.is_dir():
            raise CommandError(f"cannot search {path!r}: it is a file, not a folder")
        found: list[str] = []
        walker = os.fwalk(real, follow_symlinks=False)
        try:
            for top, dirs, files, _ in walker:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    if len(found) >= limit:
                        return found, True
                    found.append(self.show(Path(top) / name))
        except OSError as exc:
            raise self._error(exc, "search", path) from None
        finally:
            walker.close()
        return found, False
