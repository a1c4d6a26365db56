"""Static AST scan of a Python file before ``execute_python_file`` runs it.

``scan(source) -> list[Violation]``: empty means the file may run. The scan is
a deny-list over the syntax tree (never a regex), conservative where an alias
could hide something, and it is the *first* of three layers: the file then
runs in a child process with a runtime audit hook (``agents/sandbox_boot.py``)
and kernel limits (``agents/sandbox.py``). Rules:

1. **Modules** that start processes, reach the network, load native code,
   import or execute code from strings/data, or reach any live object
   (:data:`FORBIDDEN_MODULES`) may not be imported in any form.
2. **Names from allowed modules**: ``os.system``/``popen``/``exec*``/``spawn*``/
   ``posix_spawn*``/``fork*``/``kill*``/``chdir``/``symlink``/``mknod``/
   set*id, ``sys.modules``/``path``/``_getframe``/..., through ``import os as o``,
   ``from os import system``, ``o = os`` re-binding (flow-insensitive), and
   ``from os import *`` — all refused. Module chains may not pass through a
   module-named attribute (``shutil.os``, ``logging.sys``).
3. **Unknown receivers**: ``x.system(...)``, ``x.popen``, ``x.exec*``,
   ``x.spawn*``, ``x.fork`` are refused unless ``x`` is a known module
   (``platform.system`` is fine), since ``x`` may be ``os`` in disguise.
4. **Introspection**: dunder attributes that lead to builtins, globals,
   frames, code or subclasses (``__globals__``, ``__builtins__``,
   ``__subclasses__``, ``__self__``, ...), frame attributes (``f_globals``,
   ``tb_frame``, ...), any dunder on a module, the names ``__import__``,
   ``__builtins__``, ``globals``, ``locals``, ``breakpoint``, and those
   strings as constants.
5. **Dynamic code**: ``eval``/``exec``/``compile`` only called directly with
   one constant string literal, which is scanned in turn; ``getattr``/
   ``setattr``/``delattr``/``hasattr``/``vars`` only called directly; a
   constant (or constant-folded, e.g. ``"sys" + "tem"``) attribute name is
   checked like a written attribute; a computed name on a module is refused.
6. **Paths**: constant path arguments of ``open``, ``os.*``, ``shutil.*``,
   ``pathlib.Path`` must be relative without ``..`` or ``~``; ``expanduser``
   and ``Path.home`` are refused; ``shutil.rmtree`` needs a constant relative
   path. Computed paths are left to the runtime hook, which refuses writes
   outside the workspace and reads outside it and the Python installation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from agents.codescan_names import Aliases, fold, quals
from agents.codescan_rules import (
    ATTR_BY_NAME,
    CALL_ONLY,
    DENIED_NAMES,
    DENIED_STRINGS,
    FORBIDDEN_MODULES,
    FRAME_ATTRS,
    GLOBAL_DUNDERS,
    MODULE_DUNDERS_OK,
    PATH_FUNCS,
    PATH_KEYWORDS,
    PROCESS_ATTR_SAFE,
    SENSITIVE_MODULE_NAMES,
    STAR_SENSITIVE,
    module_attr_reason,
    process_attr,
)

MAX_NESTED_SCANS = 8


@dataclass(frozen=True)
class Violation:
    """One reason the file is refused, with where."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _forbidden_module(name: str) -> str | None:
    """The reason module ``name`` (or a parent package of it) is forbidden."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        reason = FORBIDDEN_MODULES.get(".".join(parts[:i]))
        if reason:
            return f"module {'.'.join(parts[:i])!r} is not allowed ({reason})"
    return None


def _path_reason(value: str) -> str | None:
    if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        return "is absolute; only paths relative to the workspace are allowed"
    if value.startswith("~"):
        return "uses the home folder, which is outside the workspace"
    if ".." in value.replace("\\", "/").split("/"):
        return "uses '..'; paths must stay inside the workspace"
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, set[str]], depth: int) -> None:
        self.aliases = aliases
        self.depth = depth
        self.found: list[Violation] = []

    def bad(self, node: ast.AST, reason: str) -> None:
        self.found.append(Violation(getattr(node, "lineno", 0), reason))

    # -- name resolution ------------------------------------------------------------------------

    def quals(self, node: ast.AST) -> set[str]:
        """Dotted names this expression may stand for, via imports and re-bindings."""
        return quals(self.aliases, node)

    def is_module(self, node: ast.AST) -> bool:
        return bool(self.quals(node))

    # -- statements -----------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            reason = _forbidden_module(a.name)
            if reason:
                self.bad(node, reason)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        reason = _forbidden_module(node.module)
        if reason:
            self.bad(node, reason)
            return
        for a in node.names:
            if a.name == "*":
                if node.module.split(".")[0] in STAR_SENSITIVE:
                    self.bad(node, f"'from {node.module} import *' would bring in dangerous names; "
                                   "import what you need by name")
                continue
            qual = f"{node.module}.{a.name}"
            reason = _forbidden_module(qual) or module_attr_reason(node.module, a.name)
            if reason:
                self.bad(node, reason)

    # -- expressions ----------------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DENIED_NAMES:
            self.bad(node, f"{node.id!r} is not allowed ({DENIED_NAMES[node.id]})")
        elif node.id in CALL_ONLY:
            self.bad(node, f"{node.id!r} may only be called directly, not passed around or re-bound")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in DENIED_STRINGS:
            self.bad(node, f"the string {node.value!r} is not allowed (it names an escape from the sandbox)")

    def check_attr(self, node: ast.AST, receiver: ast.AST, attr: str) -> None:
        """The attribute rules, for ``receiver.attr`` written or named by a constant."""
        if attr in GLOBAL_DUNDERS:
            self.bad(node, f"attribute {attr!r} is not allowed (it reaches {GLOBAL_DUNDERS[attr]})")
            return
        if attr in FRAME_ATTRS:
            self.bad(node, f"attribute {attr!r} is not allowed (stack frames reach every global)")
            return
        if attr in ("expanduser", "home"):
            self.bad(node, f"{attr!r} is not allowed: the home folder is outside the workspace")
            return
        quals = self.quals(receiver)
        if quals:
            for q in sorted(quals):
                reason = _forbidden_module(f"{q}.{attr}") or module_attr_reason(q, attr)
                if reason:
                    self.bad(node, reason)
                    return
                if attr.startswith("__") and attr.endswith("__") and attr not in MODULE_DUNDERS_OK:
                    self.bad(node, f"attribute {attr!r} of module {q!r} is not allowed")
                    return
                if attr.lstrip("_") in SENSITIVE_MODULE_NAMES and f"{q}.{attr}" != "os.path":
                    self.bad(node, f"reaching module {attr!r} through {q!r} is not allowed; import what you "
                                   "need directly")
                    return
            if process_attr(attr) and not any(f"{q}.{attr}" in PROCESS_ATTR_SAFE for q in quals):
                self.bad(node, f"{attr!r} starts or signals processes and is not allowed")
            return
        if process_attr(attr) and not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
            self.bad(node, f"calling {attr!r} on an unknown object is not allowed (it may be os.{attr})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attr(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in CALL_ONLY and func.id not in self.aliases:
            self.check_call_only(node, func.id)
        else:
            self.visit(func)
        for q in self.quals(func) | ({f"builtins.{func.id}"} if isinstance(func, ast.Name) else set()):
            if q in PATH_FUNCS:
                self.check_paths(node, q)
            if q in ATTR_BY_NAME:
                self.check_attr_names(node, q)
        for child in node.args + [k.value for k in node.keywords]:
            self.visit(child)

    def check_call_only(self, node: ast.Call, name: str) -> None:
        args = node.args
        if name in ("eval", "exec", "compile"):
            keyed = [k.value for k in node.keywords if k.arg == "source"]
            src = args[0] if args else (keyed[0] if keyed else None)
            if src is None:
                if any(k.arg is None for k in node.keywords):
                    self.bad(node, f"{name}() with unpacked arguments is not allowed")
                return
            if not (isinstance(src, ast.Constant) and isinstance(src.value, str)) \
                    or any(isinstance(a, ast.Starred) for a in args) \
                    or any(k.arg is None for k in node.keywords):
                self.bad(node, f"{name}() of anything but a constant string literal is not allowed")
                return
            self.scan_nested(node, src.value)
            return
        if name == "vars":
            if not args:
                self.bad(node, "vars() without an argument is not allowed (it reaches the builtins)")
            elif self.is_module(args[0]):
                self.bad(node, "vars() of a module is not allowed")
            return
        # getattr / setattr / delattr / hasattr
        if len(args) < 2 or any(isinstance(a, ast.Starred) for a in args[:2]):
            if args:
                self.bad(node, f"{name}() needs its object and attribute name written out")
            return
        attr = fold(args[1])
        if attr is None:
            if self.is_module(args[0]):
                self.bad(node, f"{name}() with a computed attribute name on a module is not allowed")
            return
        self.check_attr(node, args[0], attr)

    def check_attr_names(self, node: ast.Call, qual: str) -> None:
        """``operator.attrgetter("a.b")`` / ``methodcaller("m")``: constant names, each checked."""
        names = node.args if qual == "operator.attrgetter" else node.args[:1]
        if not names or any(k.arg is None for k in node.keywords):
            return
        for arg in names:
            text = fold(arg)
            if text is None:
                self.bad(node, f"{qual}() with a computed attribute name is not allowed")
                return
            for part in text.split("."):
                self.check_attr(node, ast.Name("?"), part)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):
            text = fold(node.right)
            reason = _path_reason(text) if text is not None else None
            if reason:
                self.bad(node, f"joining path {text!r} {reason}")
        self.generic_visit(node)

    def check_paths(self, node: ast.Call, qual: str) -> None:
        values = list(node.args) + [k.value for k in node.keywords if k.arg in PATH_KEYWORDS]
        constant = True
        for i, value in enumerate(values):
            text = fold(value)
            if text is None:
                if i == 0:
                    constant = False
                continue
            reason = _path_reason(text)
            if reason:
                self.bad(node, f"path {text!r} given to {qual.removeprefix('builtins.')}() {reason}")
        if qual == "shutil.rmtree" and (not values or not constant):
            self.bad(node, "shutil.rmtree() needs a constant relative path")

    def scan_nested(self, node: ast.AST, source: str) -> None:
        if self.depth >= MAX_NESTED_SCANS:
            self.bad(node, "code nested too deeply in eval/exec strings")
            return
        for v in scan(source, _depth=self.depth + 1):
            self.bad(node, f"in the string run by eval/exec/compile: {v.reason}")


def scan(source: str, *, _depth: int = 0) -> list[Violation]:
    """Every reason to refuse ``source``; an empty list means it may run."""
    if not isinstance(source, str):
        return [Violation(0, "the file is not text")]
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        if _depth:
            return []  # a broken string literal fails at run time, harmlessly
        return [Violation(exc.lineno or 0, f"syntax error: {exc.msg}")]
    except (ValueError, MemoryError, RecursionError) as exc:
        return [Violation(0, f"the file cannot be parsed: {type(exc).__name__}")]
    aliases = Aliases()
    scanner = _Scanner(aliases.names, _depth)
    try:
        aliases.visit(tree)
        aliases.settle()
        scanner.visit(tree)
    except RecursionError:
        return [Violation(0, "the file is nested too deeply to check")]
    return sorted(set(scanner.found), key=lambda v: (v.line, v.reason))


def report(violations: list[Violation], name: str) -> str:
    """One message for the model listing why ``name`` was refused."""
    lines = "; ".join(str(v) for v in violations[:10])
    more = f" (and {len(violations) - 10} more)" if len(violations) > 10 else ""
    return f"refused to run {name}: {lines}{more}. Nothing was executed."
