"""The Ray backend: one host actor per node runs our zygote; agents stay plain processes.

The only package of the project that imports Ray (a boundary test checks
it); it is loaded only for ``backend: {kind: ray}``. ``cluster.py`` connects
to a cluster (or starts a private one, ``address: local``), ``actor.py`` is
the host actor around :class:`~orchestrator.supervisor.backends.hostnode.NodeHost`,
``links.py`` watches one host from the supervisor, and ``driver.py`` is the
backend the supervisor uses.
"""
