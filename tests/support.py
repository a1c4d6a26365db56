"""What every test suite shares: the one deadline-polling wait."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition", step: float = 0.01,
               pump: Callable[[], None] | None = None) -> Any:
    """Poll ``cond`` until it is truthy and return its value; fail after ``timeout`` seconds.

    Between tries it runs ``pump`` (e.g. a bus client's poll) or waits ``step``
    seconds: the polling interval of a deadline wait, never a synchronisation.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if pump is not None:
            pump()
        else:
            time.sleep(step)
