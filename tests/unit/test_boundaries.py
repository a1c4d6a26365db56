"""Import boundaries (STYLE.md §12): checked statically and in fresh interpreters."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "agents", "bus", "memory")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_protocol_module_imports_msgpack():
    """No module but bus/protocol.py imports msgpack: one module owns the wire."""
    offenders = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                 if "msgpack" in _imports(p) and p != ROOT / "bus" / "protocol.py"]
    assert offenders == []


def _modules_after(import_line: str) -> set[str]:
    code = f"import sys, json; {import_line}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_agent_runtime_imports_no_faiss_or_numpy():
    """An agent process (its runtime and every command) loads neither faiss nor numpy."""
    mods = _modules_after("import agents.process; from agents.commands import registry; "
                          "registry.load_builtin_commands()")
    assert "faiss" not in mods and "numpy" not in mods


def test_supervisor_imports_no_faiss():
    """The supervisor does not load the memory index."""
    mods = _modules_after("import orchestrator.supervisor.service")
    assert "faiss" not in mods
