"""The deny-lists of the static code scan (``agents/codescan.py``), with the reason for each.

Data only: which modules may not be imported, which names of allowed modules
are refused, which attributes and names lead out of the sandbox, which calls
take paths. Changing policy means editing these tables, not the scanner.
"""

from __future__ import annotations

_PROC = "starts or controls other processes"
_NET = "network access"
_NATIVE = "loads native code"
_CODE = "runs code from strings or data"
_INTRO = "reaches any live object, including the builtins"
_PKG = "installs or builds packages"
_SWARM = "the swarm's own internals are not for executed files"

FORBIDDEN_MODULES: dict[str, str] = {
    **dict.fromkeys(["subprocess", "pty", "multiprocessing", "_posixsubprocess", "_multiprocessing",
                     "concurrent.futures.process", "asyncio", "webbrowser", "psutil"], _PROC),
    **dict.fromkeys(["ctypes", "_ctypes", "cffi", "_cffi_backend", "numpy.ctypeslib", "llama_cpp"], _NATIVE),
    **dict.fromkeys(["socket", "_socket", "ssl", "_ssl", "socketserver", "http.client", "http.server",
                     "urllib.request", "ftplib", "smtplib", "poplib", "imaplib", "nntplib", "telnetlib",
                     "xmlrpc", "zmq", "requests", "httpx", "urllib3", "aiohttp", "openai"], _NET),
    **dict.fromkeys(["importlib", "imp", "zipimport", "pkgutil", "runpy", "code", "codeop", "pickle",
                     "_pickle", "marshal", "shelve", "dill", "cloudpickle", "copyreg", "timeit", "trace",
                     "profile", "cProfile", "pdb", "bdb", "doctest", "logging.config", "site"], _CODE),
    **dict.fromkeys(["gc", "inspect", "builtins", "__builtin__", "posix", "nt", "_winapi", "msvcrt",
                     "winreg"], _INTRO),
    **dict.fromkeys(["pip", "ensurepip", "venv", "distutils", "setuptools"], _PKG),
    **dict.fromkeys(["orchestrator", "agents", "bus", "memory"], _SWARM),
    "resource": "it could raise the file's own resource limits",
}

_OS = {
    **dict.fromkeys(["system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "startfile",
                     "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
                     "_execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve",
                     "spawnvp", "spawnvpe", "kill", "killpg", "pidfd_open", "plock", "login_tty"], _PROC),
    **dict.fromkeys(["chdir", "fchdir", "chroot"], "it would move the file out of the workspace"),
    **dict.fromkeys(["symlink", "link", "mknod", "mkfifo"],
                    "links, device files and FIFOs can lead out of the workspace"),
    **dict.fromkeys(["setuid", "seteuid", "setgid", "setegid", "setreuid", "setregid", "setresuid",
                     "setresgid", "setgroups", "initgroups"], "it changes privileges"),
}

_SYS = {
    **dict.fromkeys(["modules", "path", "meta_path", "path_hooks", "path_importer_cache"],
                    "it reaches the import system"),
    **dict.fromkeys(["settrace", "setprofile"], "it reaches every frame"),
}

MODULE_ATTRS: dict[str, dict[str, str]] = {
    "os": _OS,
    "sys": _SYS,
    "signal": dict.fromkeys(["pthread_kill", "pidfd_send_signal"], _PROC),
    "concurrent.futures": {"ProcessPoolExecutor": _PROC},
    "types": {"CodeType": "it builds raw code objects"},
    "yaml": dict.fromkeys(["load", "load_all", "unsafe_load", "unsafe_load_all", "full_load",
                           "full_load_all", "Loader", "UnsafeLoader", "FullLoader"],
                          "it can build arbitrary objects; use yaml.safe_load"),
}

PROCESS_ATTRS = frozenset(k for k, v in _OS.items() if v == _PROC) - {"kill", "killpg", "pidfd_open", "plock"}
PROCESS_ATTR_SAFE = frozenset({"platform.system"})

# Modules whose name may not be reached as an attribute of another module (``shutil.os``).
SENSITIVE_MODULE_NAMES = frozenset({
    "os", "sys", "subprocess", "builtins", "posix", "shutil", "importlib", "socket", "ctypes", "pty",
    "multiprocessing", "resource", "gc", "inspect", "pickle", "marshal", "runpy", "code", "asyncio",
    "posixsubprocess", "signal", "io",
})

STAR_SENSITIVE = frozenset({"os", "sys", "shutil", "posix", "signal", "io", "pathlib"})

MODULE_DUNDERS_OK = frozenset({"__name__", "__doc__", "__file__", "__version__", "__all__",
                               "__stdout__", "__stderr__", "__stdin__"})

GLOBAL_DUNDERS: dict[str, str] = {
    "__globals__": "a function's globals and the builtins",
    "__builtins__": "the builtins",
    "__subclasses__": "every loaded class",
    "__bases__": "the class hierarchy", "__base__": "the class hierarchy", "__mro__": "the class hierarchy",
    "__code__": "raw code objects", "__closure__": "closure cells",
    "__self__": "the bound object; print.__self__ is the builtins module",
    "__getattribute__": "any attribute by computed name",
    "__loader__": "the import system", "__spec__": "the import system", "__import__": "the import system",
    "__reduce__": "pickling internals", "__reduce_ex__": "pickling internals",
}

FRAME_ATTRS = frozenset({"f_globals", "f_builtins", "f_locals", "f_back", "f_code", "gi_frame", "gi_code",
                         "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame"})

DENIED_NAMES: dict[str, str] = {
    "__import__": "imports by computed name", "__builtins__": "it reaches the builtins",
    "__builtin__": "it reaches the builtins", "__loader__": "it reaches the import system",
    "__spec__": "it reaches the import system", "__build_class__": "it reaches the builtins",
    "globals": "it reaches the builtins by name", "locals": "it reaches the builtins by name",
    "breakpoint": "it starts a debugger that runs commands",
}

DENIED_STRINGS = frozenset({"__builtins__", "__import__", "__globals__", "__subclasses__", "__code__",
                            "__getattribute__", "__loader__", "__spec__", "f_globals", "f_builtins"})

CALL_ONLY = frozenset({"eval", "exec", "compile", "getattr", "setattr", "delattr", "hasattr", "vars"})

PATH_FUNCS = frozenset({
    "builtins.open", "io.open", "io.FileIO", "codecs.open",
    "os.open", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename", "os.renames",
    "os.replace", "os.mkdir", "os.makedirs", "os.listdir", "os.scandir", "os.walk", "os.fwalk", "os.stat",
    "os.lstat", "os.chmod", "os.chown", "os.lchown", "os.truncate", "os.utime", "os.access",
    "os.readlink", "os.statvfs", "os.path.join",
    "shutil.rmtree", "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move",
    "shutil.copymode", "shutil.copystat", "shutil.make_archive", "shutil.unpack_archive", "shutil.chown",
    "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath",
    "glob.glob", "glob.iglob", "tarfile.open", "zipfile.ZipFile", "sqlite3.connect",
})

PATH_KEYWORDS = frozenset({"file", "path", "src", "dst", "dir", "name", "base_name", "root_dir",
                           "extract_dir", "filename", "top", "database", "pathname"})

ATTR_BY_NAME = frozenset({"operator.attrgetter", "operator.methodcaller"})


def process_attr(attr: str) -> bool:
    """True for names that start processes on ``os`` (refused on unknown receivers too)."""
    return attr in PROCESS_ATTRS


def module_attr_reason(module: str, attr: str) -> str | None:
    """Why ``module.attr`` is refused, or None."""
    reason = MODULE_ATTRS.get(module, {}).get(attr)
    if reason:
        return f"{module}.{attr} is not allowed ({reason})"
    if module == "sys" and attr.startswith("_") and not attr.startswith("__"):
        return f"sys.{attr} is not allowed (private interpreter internals, e.g. frames)"
    return None
