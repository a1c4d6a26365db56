"""A small tmpfs a test mounts (and always unmounts) to make a directory full or read-only for real.

Everything runs as root on the project's machines and in CI; where mounting
is not allowed the tests that need it are skipped with the reason, and the
failing-write-hook unit tests (tests/unit/test_memory_requests.py,
tests/unit/test_storage_watch.py) still cover the behaviour.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest


class SmallDisk:
    """A size-limited tmpfs at ``path``: fill it, free it, remount it read-only or read-write."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.filler = path / "filler"
        path.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or out.returncode})")

    def fill(self) -> int:
        """Write a file until the disk is full; return the bytes it took."""
        chunk = b"\0" * (64 << 10)
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return written
                    chunk = chunk[: len(chunk) // 2]  # fill the last corner too
        finally:
            os.close(fd)

    def free(self) -> None:
        """Remove the filler: the disk has room again."""
        self.filler.unlink(missing_ok=True)

    def remount(self, readonly: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if readonly else 'rw'}", str(self.path)], check=True)

    def unmount(self) -> None:
        """Unmount (lazily: a process of a failed test may still hold a file)."""
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
