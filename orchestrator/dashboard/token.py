"""The dashboard's secret: one random token per run directory, in a 0600 file."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "dashboard.token"


def ensure_token(run_dir: Path) -> str:
    """The token of ``run_dir``'s dashboard, created (mode 0600) when there is none yet."""
    path = Path(run_dir) / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        os.chmod(path, 0o600)
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # an empty file left by a crash: replace it
    token = secrets.token_urlsafe(32)
    # O_EXCL with the mode set at creation: the secret is never readable by others, even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token (constant time; None and empty never match)."""
    if not given or not token:
        return False
    return hmac.compare_digest(given.encode(), token.encode())
