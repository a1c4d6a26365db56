"""The copy of the workspace that executed code works on, in a size-limited tmpfs (the kernel sandbox).

With ``safety.sandbox: kernel`` every agent gets, before it confines itself,
a tmpfs of ``limits.workspace_mb`` mounted over the workspace's place in the
exec root, in its own mount namespace (:func:`agents.confine.agent.mount_scratch`).
Code run by ``execute_python_file`` sees and writes only that tmpfs, so the
kernel stops it at the limit (``ENOSPC``, "No space left on device") however
many files it writes. Around each run the agent:

* :func:`stage_in` empties the tmpfs and copies the workspace into it
  (regular files and folders; symbolic links as links), and returns what it
  copied (:data:`Manifest`);
* :func:`stage_out` copies back, through the agent's
  :class:`~agents.workspace.Workspace` (its jail and its limit), every
  regular file the code created or changed, deletes what it deleted, leaves
  out anything else it made (links, FIFOs ...), then empties the tmpfs. A file the
  workspace limit refuses is left out and named in the result.

A run therefore costs a copy of the workspace in and of its changes out;
other agents see the code's files when the run has ended.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.commands.context import CommandError

Manifest = dict[str, tuple[int, int, int]]  # relative path -> (size, mtime_ns, inode) of the staged copy
LINK = (-1, 0, 0)  # the manifest's entry for a symbolic link (copied as a link, never copied back)
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class StageOut:
    """What :func:`stage_out` did."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # over the workspace limit, or refused by the jail
    skipped: list[str] = field(default_factory=list)  # not regular files

    def note(self) -> str:
        """A line for the model when something was not copied back ("" when all was)."""
        parts = []
        if self.refused:
            refused = ", ".join(self.refused[:10])
            parts.append(f"not copied back to the workspace (limit or path refused): {refused}")
        if self.skipped:
            parts.append(f"left out (not regular files): {', '.join(self.skipped[:10])}")
        return "; ".join(parts)


def clear(scratch: str) -> None:
    """Remove everything inside ``scratch`` (not the folder itself: it is a mount point)."""
    for entry in os.scandir(scratch):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def stage_in(workspace: str, scratch: str) -> Manifest:
    """Empty ``scratch`` and copy ``workspace`` into it; CommandError when it does not fit."""
    clear(scratch)
    manifest: Manifest = {}
    try:
        for top, dirs, files, _ in os.fwalk(workspace, follow_symlinks=False):
            rel_top = os.path.relpath(top, workspace)
            dest_top = os.path.normpath(os.path.join(scratch, rel_top))
            for name in dirs:  # fwalk lists links to folders here too (and does not follow them)
                src = os.path.join(top, name)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), os.path.join(dest_top, name))
                    manifest[os.path.normpath(os.path.join(rel_top, name))] = LINK
                else:
                    os.mkdir(os.path.join(dest_top, name), 0o755)
            for name in files:
                src, dst = os.path.join(top, name), os.path.join(dest_top, name)
                st = os.lstat(src)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src), dst)
                    manifest[os.path.normpath(os.path.join(rel_top, name))] = LINK
                elif stat.S_ISREG(st.st_mode):
                    shutil.copyfile(src, dst, follow_symlinks=False)
                    manifest[os.path.normpath(os.path.join(rel_top, name))] = _key(os.lstat(dst))
    except OSError as exc:
        clear(scratch)
        raise CommandError(f"cannot prepare the workspace for the run: {exc.strerror or exc} "
                           "(it may hold more than limits.workspace_mb)") from None
    return manifest


def _read(path: str) -> bytes:
    fd = os.open(path, _O_READ)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def stage_out(scratch: str, ws: Any, manifest: Manifest) -> StageOut:
    """Copy the code's new and changed files back through ``ws``, delete what it deleted, empty the tmpfs."""
    out, seen = StageOut(), set()
    usage = [ws.usage() if getattr(ws, "quota_bytes", None) is not None else 0]  # kept up to date below
    try:
        for top, dirs, files, _ in os.fwalk(scratch, follow_symlinks=False):
            rel_top = os.path.relpath(top, scratch)
            links = [d for d in dirs if os.path.islink(os.path.join(top, d))]  # links to folders
            for name in sorted(files + links):
                rel = os.path.normpath(os.path.join(rel_top, name))
                st = os.lstat(os.path.join(top, name))
                seen.add(rel)
                if not stat.S_ISREG(st.st_mode):
                    if not (stat.S_ISLNK(st.st_mode) and manifest.get(rel) == LINK):
                        out.skipped.append(rel)  # a link the code made, a FIFO, a device...
                elif manifest.get(rel) != _key(st):
                    _copy_back(ws, rel, os.path.join(top, name), out, usage)
        for rel in sorted(set(manifest) - seen):
            try:
                ws.delete(Path(rel).as_posix())
                out.deleted.append(rel)
            except CommandError:
                pass  # already gone, or replaced by something the jail refuses to touch
    finally:
        clear(scratch)
    return out


def _copy_back(ws: Any, rel: str, path: str, out: StageOut, usage: list[int]) -> None:
    """Write one file back through the jail and its limit; ``usage[0]`` is the workspace's running total."""
    shown = Path(rel).as_posix()
    try:
        data = _read(path)
        before = usage[0]
        if getattr(ws, "quota_bytes", None) is not None:
            usage[0] = ws.check_quota(shown, len(data), replacing=True, usage=before)
        ws.write_bytes(shown, data, usage=before)
        out.written.append(rel)
    except (CommandError, OSError):
        out.refused.append(rel)
