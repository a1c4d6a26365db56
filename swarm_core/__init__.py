"""The bottom layer of Swarm: contracts every other package shares.

Errors with their codes, logging set-up, peer names, agent statuses and
stop reasons, the typed agent spec, defaults written once, message bodies
(``swarm_core.messages``) and their registry (``swarm_core.wire``), and the
command catalog (``swarm_core.catalog``).

It imports nothing from ``bus``, ``memory``, ``agents`` or ``orchestrator``
(``tests/unit/test_boundaries.py`` enforces the layer table), and no zmq,
msgpack, faiss or numpy.
"""
