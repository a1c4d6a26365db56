"""Tests of agents.codescan: the static AST scan run before any code executes."""

from __future__ import annotations

import pytest

from agents.codescan import fold, report, scan

BENIGN = {
    "platform.system": "import platform\nprint(platform.system())",
    "methods named like os calls": "class P:\n    def kill(self): return 1\n    def system(self): return 2\n"
                                   "p = P()\nprint(p.kill())\nclass Q(P):\n"
                                   "    def go(self): return self.system()\n",
    "re.compile": "import re\nprint(re.compile('a+').match('aa'))",
    "getattr on objects": "class A:\n    x = 1\nname = 'x'\nprint(getattr(A(), name), hasattr(A, 'x'))",
    "sys.argv and exit": "import sys\nprint(sys.argv, sys.version_info)\nsys.exit(0)",
    "relative paths": "import os\nfrom pathlib import Path\nos.makedirs(os.path.join('a', 'b'), exist_ok=True)\n"
                      "Path('a') / 'b' / 'c.txt'\nopen('out.txt', 'w').write('x')",
    "eval of a literal": "print(eval('1 + 2'))\nexec('x = 3')",
    "class introspection": "class A:\n    def __init__(self):\n        super().__init__()\n"
                           "        self.n = self.__class__.__name__\n        self.d = self.__dict__\nprint(A().n)",
    "module name dunder": "import json\nprint(json.__name__, __name__ == '__main__', __file__)",
    "variable named like a module path": "import os\nprint(os.path.exists('x'), os.getcwd(), os.environ.get('HOME'))",
    "rmtree of a constant relative path": "import shutil\nshutil.rmtree('build', ignore_errors=True)",
    "safe yaml": "import yaml\nprint(yaml.safe_load('a: 1'))",
    "threads": "import threading\nt = threading.Thread(target=print, args=('x',))\nt.start()\nt.join()",
    "string mentions": "print('os.system is refused, so is subprocess')",
}


@pytest.mark.parametrize("source", BENIGN.values(), ids=BENIGN.keys())
def test_benign_code_passes(source):
    """Ordinary code, including look-alikes of dangerous names, is not refused."""
    assert scan(source) == []


HOSTILE = {
    "os.system via from-import alias": ("from os import system as s\ns('id')", "os.system"),
    "alias through for loop": ("import os\nfor m in [os]:\n    m.system('id')", "os.system"),
    "alias through default arg": ("import os\ndef f(m=os):\n    return m.popen('id')", "os.popen"),
    "alias through walrus": ("import os\n(m := os).system('id')", "os.system"),
    "module passed as parameter": ("import os\ndef run(mod):\n    mod.system('id')\nrun(os)", "unknown object"),
    "attrgetter with process name": ("import os, operator\noperator.methodcaller('system', 'id')(os)", "'system'"),
    "attrgetter computed": ("import operator\nn = 'x'\noperator.attrgetter(n)", "computed attribute"),
    "getattr passed around": ("g = getattr\ng(1, 'x')", "may only be called directly"),
    "exec passed around": ("e = exec\ne('1')", "may only be called directly"),
    "compile with keyword source": ("s = 'x'\ncompile(source=s, filename='f', mode='exec')", "constant string"),
    "exec with starred args": ("a = ['x']\nexec(*a)", "constant string"),
    "nested exec in exec": ("exec(\"exec('import subprocess')\")", "subprocess"),
    "vars of module": ("import os\nvars(os)['system']('id')", "vars() of a module"),
    "module dunder dict": ("import os\nos.__dict__['system']('id')", "__dict__"),
    "chain through module attribute": ("import json\njson.sys.modules", "through 'json'"),
    "getattr chain to os": ("import os\ngetattr(getattr(os, 'path'), 'os')", "reaching module 'os'"),
    "string join to system": ("import os\ngetattr(os, ''.join(['sy', 'stem']))('id')", "os.system"),
    "f-string attribute": ("import os\ngetattr(os, f'sys{\"tem\"}')('id')", "os.system"),
    "star import from os": ("from os import *\nsystem('id')", "import *"),
    "urllib.request via attribute": ("import urllib\nurllib.request.urlopen('http://x')", "urllib.request"),
    "process pool": ("from concurrent.futures import ProcessPoolExecutor", "ProcessPoolExecutor"),
    "yaml unsafe loader": ("import yaml\nyaml.load('x', Loader=yaml.Loader)", "yaml.load"),
    "expanduser": ("import os\nopen(os.path.expanduser('~/.ssh/id_rsa'))", "home folder"),
    "path join with absolute": ("import os\nopen(os.path.join('a', '/etc/passwd'))", "absolute"),
    "rmtree computed": ("import shutil\np = 'x'\nshutil.rmtree(p)", "constant relative path"),
    "syntax error": ("def f(:\n  pass", "syntax error"),
    "private sys attribute": ("import sys\nsys._current_frames()", "sys._current_frames"),
    "the swarm's own bus": ("from bus.client import BusClient", "swarm's own internals"),
    "zmq": ("import zmq", "network access"),
}


@pytest.mark.parametrize("source, fragment", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_code_refused_with_reason(source, fragment):
    """Each trick is refused, and the reason names what was found."""
    found = scan(source)
    assert found, source
    assert any(fragment in v.reason for v in found), [str(v) for v in found]


def test_violation_lines_point_at_the_code():
    """Violations carry the line of the offending code."""
    found = scan("x = 1\n\nimport subprocess\n")
    assert [v.line for v in found] == [3]
    assert str(found[0]).startswith("line 3: module 'subprocess'")


def test_report_is_one_message_for_the_model():
    """report() names the file, lists the reasons and says nothing ran."""
    text = report(scan("import os\nos.system('a')\nos.fork()\n"), "job.py")
    assert text.startswith("refused to run job.py: line 2: os.system") and "line 3: os.fork" in text
    assert text.endswith("Nothing was executed.")


@pytest.mark.parametrize("expr, value", [
    ("'a' + 'b'", "ab"), ("f'x{\"y\"}'", "xy"), ("'-'.join(['a', 'b'])", "a-b"), ("'a' + b", None), ("x", None),
])
def test_constant_folding(expr, value):
    """Constant string expressions are folded; anything dynamic is not."""
    import ast
    assert fold(ast.parse(expr, mode="eval").body) == value


def test_pathological_sources_do_not_crash():
    """Deep nesting, NUL bytes and non-text give violations, never exceptions."""
    assert scan("(" * 500 + ")" * 500)
    assert scan("x = 1\x00")
    assert scan(b"import os")  # type: ignore[arg-type]
    nested = "1"
    for _ in range(3):
        nested = f"exec({nested!r})"
    assert scan(nested) == []
    for _ in range(10):
        nested = f"exec({nested!r})"
    assert any("nested too deeply" in v.reason for v in scan(nested))


def test_method_named_like_os_call_on_unknown_object_is_refused():
    """x.system() on an object the scan cannot identify is refused: x may be os in disguise."""
    found = scan("class P:\n    def system(self): return 2\nP().system()")
    assert [v.line for v in found] == [3] and "may be os.system" in found[0].reason
