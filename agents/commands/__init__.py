"""The commands an agent's model may issue: one module per command family.

Each command is declared once in the catalog (``swarm_core.catalog``); a
module here binds one function to it with ``@implements("name")``
(``binding.py``), and ``registry.py`` finds every module of this package by
itself and dispatches by name. This ``__init__`` imports nothing, so loading
one command module never loads the others.
"""
