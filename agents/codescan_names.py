"""Name resolution for the static code scan: constant folding and module aliases.

:func:`fold` evaluates string expressions that are constant whatever runs
(``"sys" + "tem"``, f-strings of constants, ``"".join([...])``).
:class:`Aliases` finds every local name bound to a module or to a name from
a module; :func:`quals` says which dotted names an expression may stand for.
"""

from __future__ import annotations

import ast


def fold(node: ast.AST) -> str | None:
    """The constant string an expression always evaluates to, if we can tell."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = fold(node.left), fold(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.FormattedValue) and node.conversion == -1 and node.format_spec is None:
        return fold(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = [fold(v) for v in node.values]
        return None if any(p is None for p in parts) else "".join(parts)  # type: ignore[arg-type]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple))):
        sep = fold(node.func.value)
        items = [fold(e) for e in node.args[0].elts]
        return None if sep is None or any(i is None for i in items) else sep.join(items)  # type: ignore
    return None


def quals(aliases: dict[str, set[str]], node: ast.AST, depth: int = 0) -> set[str]:
    """Dotted names ``node`` may stand for: ``o.path`` with ``import os as o`` is ``os.path``."""
    if depth > 50:
        return set()
    if isinstance(node, ast.Name):
        return set(aliases.get(node.id, ()))
    if isinstance(node, ast.Attribute):
        return {f"{q}.{node.attr}" for q in quals(aliases, node.value, depth + 1)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2):
        attr = fold(node.args[1])
        if attr is not None:
            return {f"{q}.{attr}" for q in quals(aliases, node.args[0], depth + 1)}
    if isinstance(node, ast.NamedExpr):
        return quals(aliases, node.value, depth + 1)
    return set()


class Aliases(ast.NodeVisitor):
    """First pass: every local name ever bound to a module or to a name from a module.

    Flow-insensitive on purpose: ``o = os`` anywhere makes ``o`` an alias of
    ``os`` everywhere. Re-bindings (assignments, walrus, ``for`` over a
    literal list, parameter defaults) are resolved to a fixed point.
    """

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.pending: list[tuple[str, ast.AST]] = []

    def bind(self, local: str, qual: str) -> bool:
        known = self.names.setdefault(local, set())
        if qual in known:
            return False
        known.add(qual)
        return True

    def later(self, target: ast.AST, value: ast.AST | None) -> None:
        if value is None:
            return
        if isinstance(target, ast.Name):
            self.pending.append((target.id, value))
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for t, v in zip(target.elts, value.elts):
                self.later(t, v)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.later(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.later(node.target, node.value)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.later(node.target, node.value)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if isinstance(node.iter, (ast.List, ast.Tuple, ast.Set)):
            for element in node.iter.elts:
                self.later(node.target, element)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if isinstance(node.iter, (ast.List, ast.Tuple, ast.Set)):
            for element in node.iter.elts:
                self.later(node.target, element)
        self.generic_visit(node)

    def visit_arguments(self, node: ast.arguments) -> None:
        positional = node.posonlyargs + node.args
        for arg, default in zip(positional[len(positional) - len(node.defaults):], node.defaults):
            self.later(ast.Name(arg.arg), default)
        for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults):
            self.later(ast.Name(arg.arg), kw_default)
        self.generic_visit(node)

    def settle(self) -> None:
        """Propagate re-bindings until nothing changes."""
        for _ in range(len(self.pending) + 1):
            changed = False
            for local, value in self.pending:
                for qual in quals(self.names, value):
                    changed |= self.bind(local, qual)
            if not changed:
                return

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.bind(a.asname, a.name)
            else:
                self.bind(a.name.split(".")[0], a.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for a in node.names:
                self.bind(a.asname or a.name, f"{node.module}.{a.name}")
