"""``swarm dashboard``: a live web page and a JSON API over one run directory.

Parts, owner to owned: :mod:`server` (HTTP, auth, static files, the SSE
stream) owns an :class:`~orchestrator.dashboard.api.Api` (the route table
and its handlers) and an :class:`~orchestrator.dashboard.events.EventHub`
(one watcher thread that turns registry changes and bus events into
server-sent events). Reading goes through :mod:`source` (the registry,
read-only); operator actions go through :mod:`orchestrator.runctl`, the
same path as the CLI's.
"""
