"""Static checks that catch what a merge can break: undefined names, unused imports, import order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("swarm_core", "bus", "memory", "agents", "orchestrator", "bench")


def test_packages_pass_pyflakes_checks():
    """ruff's pyflakes rules (F: undefined names, unused imports, ...) find nothing in the packages."""
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--output-format",
                          "concise", *PACKAGES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
