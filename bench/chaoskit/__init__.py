"""The parts of ``bench/chaos.py``: the workload, the seeded fault schedule, the injector, the checks.

``workload`` writes the swarm (config and replay cassettes) a run of a given duration needs;
``schedule`` turns a seed into faults pinned to the run's progress; ``swarm`` reads the run (registry,
logs, processes); ``injector`` carries the faults out; ``invariants`` judges the run; ``report``
prints the tables.
"""
