"""Import boundaries: the layer table, no cycles, and what each process loads.

Checked statically over every module of the packages (imports inside
functions count too) and, for what a process loads, in fresh interpreters.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("swarm_core", "bus", "memory", "agents", "orchestrator")

# what each package (or sub-package: the longest prefix wins) may import of ours
LAYERS: dict[str, frozenset[str]] = {
    "swarm_core": frozenset(),
    "bus": frozenset({"swarm_core"}),
    "memory": frozenset({"swarm_core", "bus"}),
    "agents": frozenset({"swarm_core", "bus", "memory.client"}),
    "orchestrator": frozenset({"swarm_core", "bus", "memory", "agents"}),
    "orchestrator.gateway": frozenset({"swarm_core", "bus", "orchestrator.config", "orchestrator.gateway"}),
}
# third-party modules a layer must never load, even indirectly in a function
# (agents stay light: spans are plain data there, only the supervisor loads the OpenTelemetry SDK)
FORBIDDEN: dict[str, frozenset[str]] = {
    "swarm_core": frozenset({"zmq", "msgpack", "faiss", "numpy", "opentelemetry"}),
    "bus": frozenset({"faiss", "numpy", "opentelemetry"}),
    "agents": frozenset({"faiss", "numpy", "opentelemetry"}),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, module: str) -> set[str]:
    """Every module name imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except what sits under ``if TYPE_CHECKING:`` (type hints, never imported at run time)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if id(n) not in skip]


def _rule_for(module: str) -> str:
    return max((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), key=len)


def _allowed(module: str, target: str) -> bool:
    own = module.split(".")[0]
    if target == own or target.startswith(own + ".") and _rule_for(module) == own:
        return True
    rule = _rule_for(module)
    return any(target == a or target.startswith(a + ".") for a in LAYERS[rule] | {rule})


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` refers to (``pkg.mod.Class`` → ``pkg.mod``), if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_import_respects_the_layer_table():
    """No module imports a layer above its own (bus/ and memory/ never reach orchestrator/ or agents/)."""
    modules = _modules()
    leaks = []
    for module, path in modules.items():
        for name in _imports(path, module):
            target = _ours(name, modules)
            if target is not None and not _allowed(module, target):
                leaks.append(f"{module} imports {target}")
    assert sorted(set(leaks)) == []


def test_no_layer_imports_a_forbidden_library():
    """swarm_core imports no zmq/msgpack/faiss/numpy/opentelemetry; bus and agents no faiss/numpy/opentelemetry."""
    modules = _modules()
    leaks = []
    for module, path in modules.items():
        banned = FORBIDDEN.get(module.split(".")[0], frozenset())
        leaks += [f"{module} imports {n}" for n in _imports(path, module) if n.split(".")[0] in banned]
    assert leaks == []


def test_there_is_no_import_cycle():
    """The module import graph (function-level imports included) has no cycle."""
    modules = _modules()
    graph = {m: {t for n in _imports(p, m) if (t := _ours(n, modules)) and t != m} for m, p in modules.items()}
    # a package's __init__ is imported by its modules implicitly; edges into it are not a cycle
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_only_the_protocol_module_imports_msgpack():
    """No module but bus/protocol.py imports msgpack: one module owns the wire."""
    offenders = [m for m, p in _modules().items()
                 if "msgpack" in {n.split(".")[0] for n in _imports(p, m)} and m != "bus.protocol"]
    assert offenders == []


RAY_BACKEND = "orchestrator.supervisor.backends.onray"


def test_only_the_ray_backend_imports_ray():
    """No module outside orchestrator/supervisor/backends/onray/ imports ray (it is an optional extra)."""
    offenders = [m for m, p in _modules().items()
                 if "ray" in {n.split(".")[0] for n in _imports(p, m)}
                 and not (m == RAY_BACKEND or m.startswith(RAY_BACKEND + "."))]
    assert offenders == []


def _modules_after(import_line: str) -> set[str]:
    code = f"import sys, json; {import_line}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_agent_runtime_imports_no_faiss_or_numpy():
    """An agent process (its runtime and every command) loads neither faiss nor numpy nor the OTel SDK."""
    mods = _modules_after("import agents.process; from agents.commands import registry; "
                          "registry.load_builtin_commands()")
    assert "faiss" not in mods and "numpy" not in mods and "opentelemetry" not in mods


def test_supervisor_imports_no_faiss():
    """The supervisor does not load the memory index."""
    mods = _modules_after("import orchestrator.supervisor.service")
    assert "faiss" not in mods


def test_a_local_swarm_loads_no_ray():
    """The supervisor, the CLI and the local backend run without loading Ray."""
    mods = _modules_after("import orchestrator.supervisor.service, orchestrator.cli, orchestrator.runctl; "
                          "from orchestrator.supervisor.backends import local")
    assert "ray" not in mods
