"""The kernel sandbox: Landlock rulesets, namespaces, the allow-listed environment.

- :mod:`agents.confine.landlock`: Landlock rulesets (filesystem, TCP ports,
  signal and abstract-socket scoping) through the raw system calls;
- :mod:`agents.confine.namespaces`: user, mount, PID and network namespaces,
  bind mounts, capabilities;
- :mod:`agents.confine.paths`: which paths a confined process may read,
  write and execute (pure functions over the interpreter's layout);
- :mod:`agents.confine.execroot`: the root folder that code run by
  ``execute_python_file`` is locked into;
- :mod:`agents.confine.agent`: the sandbox the zygote applies to each agent;
- :mod:`agents.confine.nested`: the stricter nested sandbox around executed code;
- :mod:`agents.confine.environment`: environments rebuilt from an allow-list;
- :mod:`agents.confine.denials`: which rule refused what a program died of;
- :mod:`agents.confine.probe`: whether this kernel can provide all of it.

The modules the sandbox bootstrap loads into every ``execute_python_file``
run (``landlock``, ``namespaces``, ``paths``, ``execroot``, ``nested``,
``denials``) import only the standard library and each other, and keep off
slow imports (``typing``, ``dataclasses``): their import time is paid on
every run.
"""
