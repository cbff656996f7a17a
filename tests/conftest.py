"""Shared fixtures: one index per test session over the bundled examples plus a
generated corpus (``corpus_gen``: the repository alone), one analysis chain, one
engine, one Falcon app. The shared archive (``../shared``) is needed only by the
tests that measure quality against grep on real articles (``shared_slice``)."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from falcon import testing

from searchsvc.analysis import Analysis
from searchsvc.app import create_app
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.config import Config
from searchsvc.indexing import Indexer
from searchsvc.searching import Engine
from searchsvc.store import IndexStore
from searchsvc.synonyms import Synonyms

import corpus_gen

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SEARCHSVC_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "articles.jsonl.gz"
SAMPLE_PAGE = SHARED / "samples" / "page-utf8.txt"
SLICE = int(os.environ.get("SEARCHSVC_TEST_SLICE", "3000"))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (set SEARCHSVC_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def analysis(config):
    """The process's one analysis (jieba's dictionary loaded once): the one the CLI, the
    app and the indexer get from the same settings."""
    return Analysis.shared(config.userdict, config.cache_dir)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """The generated test corpus (see ``corpus_gen``), as a JSONL file and as dicts."""
    articles = corpus_gen.generate()
    return corpus_gen.write_jsonl(articles, tmp_path_factory.mktemp("corpus") / "generated.jsonl"), articles


@pytest.fixture(scope="session")
def big_corpus(tmp_path_factory):
    """A generated corpus large enough that indexing it takes seconds (kill and full-disk tests)."""
    articles = corpus_gen.generate(4000, seed=4000)
    return corpus_gen.write_jsonl(articles, tmp_path_factory.mktemp("big") / "big.jsonl"), articles


@pytest.fixture(scope="session")
def shared_slice(tmp_path_factory):
    """The first SLICE articles of the shared archive, as a JSONL file and as dicts
    (skips without ``../shared``: only tests of quality on real articles use it)."""
    path = tmp_path_factory.mktemp("shared") / "slice.jsonl"
    with gzip.open(need(CORPUS), "rt", encoding="utf-8") as src:
        lines = list(itertools.islice(src, SLICE))
    path.write_text("".join(lines), encoding="utf-8")
    return path, [json.loads(line) for line in lines]


@pytest.fixture(scope="session")
def config(tmp_path_factory):
    return Config.from_env(environ={}, index_dir=tmp_path_factory.mktemp("index") / "index",
                           reload_interval=0.0, query_log=tmp_path_factory.mktemp("log") / "querylog.jsonl")


@pytest.fixture(scope="session")
def built_index(config, analysis, corpus):
    """The session index: generated corpus + example corpus, built with two workers."""
    summary = Indexer(config, analysis).index_paths([corpus[0], EXAMPLE_CORPUS], rebuild=True, workers=2)
    assert summary.documents == len(corpus[1]) + 12
    return config.index_dir


@pytest.fixture(scope="session")
def engine(built_index, config):
    """The session engine, with the analysis ``serve`` gives it (Engine.from_config: jieba's
    dictionary compact) over the index the plain one built."""
    served = Analysis.shared(config.userdict, config.cache_dir, compact=True)
    return Engine(IndexStore(built_index), served, reload_interval=0.0,
                  synonyms=Synonyms(config.synonyms, served.normalizer))


@pytest.fixture(scope="session")
def client(config, engine):
    return testing.TestClient(create_app(config.with_(cors_origins=("https://example.gov.cn",)), engine=engine))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(index_dir: Path, workers: int = 2, env: dict | None = None, healthy: bool = True):
    """`searchsvc serve` as a real gunicorn process; yields (base URL, process) once /healthz
    answers 200 (with ``healthy=False``: answers at all, e.g. 503 for a damaged index).
    On exit it is stopped, its output (then ``process.output``) must hold no traceback."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--index", str(index_dir),
                             "--port", str(port), "--workers", str(workers)],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Drain the output while the server runs: a full pipe (one access line per request)
    # would block its workers.
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                if r.status == 200:
                    break
        except urllib.error.HTTPError:
            if not healthy:
                break
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        reader.join(timeout=10)
        pytest.fail("server did not start: " + b"".join(output).decode(errors="replace")[-2000:])
    try:
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    out = b"".join(output).decode(errors="replace")
    proc.output = out
    assert "Traceback" not in out, out


def whoosh_postings(leaf, field: str, tbytes: bytes) -> tuple[list[int], list[float]]:
    """A term's (docnums, weights) in one segment through Whoosh's public matcher API
    (deleted documents skipped): the oracle of what we read from its files."""
    m = leaf.postings(field, tbytes)
    ids, weights = [], []
    while m.is_active():
        ids.append(m.id())
        weights.append(m.weight())
        m.next()
    return ids, weights


def search(client, q, **params):
    r = client.simulate_get("/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json


def grep(articles, text, norm):
    """Ids of the articles containing ``text`` after normalisation (the ground truth)."""
    needle = norm(text)
    return {a["id"] for a in articles if needle in norm(a["title"] + "\n" + a["body"])}
