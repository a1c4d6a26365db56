"""Work handed to a client's loop thread from other threads, and the pipe that wakes its poll.

Any thread calls :meth:`LoopCalls.call_soon`; the loop thread polls
``fd`` with its socket and, when it is readable (or at any poll), runs what
is queued with :meth:`run`. The write end is non-blocking: a full pipe means
the loop is awake anyway.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Callable


class LoopCalls:
    """A queue of calls for the loop thread plus a self-pipe to wake it."""

    def __init__(self) -> None:
        self.calls: collections.deque[Callable[[], None]] = collections.deque()
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)
        self._lock = threading.Lock()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Queue ``fn`` for the loop thread and wake its poll (any thread may call)."""
        self.calls.append(fn)
        with self._lock:
            if self._write_fd < 0:
                return  # closed: the loop is gone (and the fd number may belong to a new file)
            try:
                os.write(self._write_fd, b"x")
            except BlockingIOError:
                pass  # the pipe is full: the loop is awake anyway

    def clear_wakeups(self) -> None:
        """Empty the pipe (the loop thread, after its poll saw ``fd`` readable)."""
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass

    def run(self) -> None:
        """Run every queued call, in order (the loop thread)."""
        calls = self.calls
        while calls:
            calls.popleft()()

    def close(self) -> None:
        """Close both ends of the pipe (idempotent); later ``call_soon`` calls only queue."""
        with self._lock:
            fds, self.fd, self._write_fd = (self.fd, self._write_fd), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)
