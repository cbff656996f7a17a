"""Faults, with real processes: kill -9 while indexing and while a write request runs,
a full disk, an unwritable index directory, a corrupt index."""

from __future__ import annotations

import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from falcon import testing

from conftest import serving
from searchsvc.app import create_app
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.store import IndexStore
from searchsvc.writes import Writer
from searchsvc.parsing import article_from_dict
from writeutil import cli, stored_articles, stored_ids

TOKEN = "fault-token"


def test_kill_9_during_incremental_index_keeps_the_last_commit(tmp_path, big_corpus):
    ix = tmp_path / "ix"
    assert cli("index", "--index", ix, EXAMPLE_CORPUS).returncode == 0
    before = set(ix.rglob("*"))
    proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "index", "--index", str(ix), "--quiet",
                             "--workers", "2", str(big_corpus[0])])
    # Killed once it has begun writing (new files under the index), not after a guessed delay
    # that on a busy machine may end before the process got that far.
    while set(ix.rglob("*")) == before and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    ids = stored_ids(ix)
    assert max(ids.values()) == 1 and len(ids) in (12, 12 + len(big_corpus[1]))
    done = cli("index", "--index", ix, "--quiet", big_corpus[0])        # no stale lock in the way
    assert done.returncode == 0, done.stderr
    ids = stored_ids(ix)
    assert len(ids) == 12 + len(big_corpus[1]) and max(ids.values()) == 1


def bulk_body(n: int, tag: str) -> bytes:
    return "\n".join(json.dumps({"id": f"bulk-{i}", "title": f"批量写入{tag}{i}", "body": f"第{i}篇正文。" * 200},
                                ensure_ascii=False) for i in range(n)).encode()


def post_bulk(base: str, body: bytes, timeout=120):
    req = urllib.request.Request(base + "/articles/bulk", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def put_article(base: str, doc: dict, timeout=60) -> int:
    """PUT one article; the HTTP status (raises when no answer came)."""
    req = urllib.request.Request(base + "/articles/" + doc["id"], method="PUT",
                                 data=json.dumps(doc, ensure_ascii=False).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


def article(doc_id: str) -> dict:
    return {"id": doc_id, "title": f"确认写入{doc_id}", "body": f"{doc_id}的正文。" * 50}


ACKNOWLEDGED_BEFORE_KILL = 24


def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path, config, analysis):
    """Writers PUT articles without pause; once enough are acknowledged (2xx) the master
    and its workers are SIGKILLed, writes still in flight. After a restart every
    acknowledged article is served as written; nothing is duplicated or torn."""
    ix = tmp_path / "ix"
    env = {"SEARCHSVC_WRITE_TOKEN": TOKEN, "SEARCHSVC_QUERY_LOG_ENABLED": "0"}
    acknowledged, attempted, failures, lock = [], [], [], threading.Lock()
    enough, killed = threading.Event(), threading.Event()

    def writer(n: int):
        for k in itertools.count():
            if killed.is_set():
                return
            doc = article(f"ack-{n}-{k}")
            with lock:
                attempted.append(doc["id"])
            try:
                status = put_article(base, doc)
            except urllib.error.HTTPError as e:         # 503 busy (the bulk holds the index): not acknowledged
                if e.code != 503:
                    failures.append(f"{doc['id']}: {e.code}")
                continue
            except OSError:                             # the kill: no answer, so not acknowledged
                return
            if status not in (200, 201):
                failures.append(f"{doc['id']}: {status}")
                continue
            with lock:
                acknowledged.append(doc["id"])
                if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                    enough.set()

    with serving(ix, workers=2, env=env) as (base, proc):
        bulk = threading.Thread(target=lambda: _try(post_bulk, base, bulk_body(400, "甲")))
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in [bulk, *threads]:
            t.start()
        assert enough.wait(120), f"only {len(acknowledged)} writes acknowledged in 120 s"
        with lock:                  # what was acknowledged before the kill, taken at the kill
            for child in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                        text=True).stdout.split():
                os.kill(int(child), signal.SIGKILL)
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()
            before_kill = list(acknowledged)
        for t in [bulk, *threads]:
            t.join(60)
        proc.wait()
    assert not failures and len(before_kill) >= ACKNOWLEDGED_BEFORE_KILL
    assert acknowledged == before_kill          # no answer came from a killed server
    assert set(attempted) - set(acknowledged), "no write was in flight at the kill"
    ids = stored_ids(ix)
    assert max(ids.values()) == 1                                   # no duplicate ids
    for doc in stored_articles(ix):
        if doc["id"].startswith("bulk-"):                       # whole articles or none
            i = int(doc["id"].split("-")[1])
            assert doc["body"] == f"第{i}篇正文。" * 200
        elif doc["id"].startswith("ack-"):
            assert doc["body"] == article(doc["id"])["body"]
    writer_ = Writer(config.with_(index_dir=ix, write_lock_wait=2.0), analysis)   # the lock is not stale
    writer_.upsert([article_from_dict({"id": "after", "title": "之后", "body": "正文"})])
    with serving(ix, workers=1, env=env) as (base, _):              # restarted: every acknowledged write is there
        for doc_id in before_kill:
            with urllib.request.urlopen(f"{base}/articles/{doc_id}", timeout=30) as r:
                got = json.loads(r.read())
            want = article(doc_id)
            assert (got["title"], got["body"]) == (want["title"], want["body"]), doc_id
        result = post_bulk(base, bulk_body(400, "甲"))               # and the interrupted bulk completes
        assert result["errors"] == 0 and len(result["results"]) == 400
    ids = stored_ids(ix)
    assert sum(k.startswith("bulk-") for k in ids) == 400 and max(ids.values()) == 1
    assert set(before_kill) <= set(ids)


def _try(fn, *args):
    try:
        return fn(*args)
    except (OSError, urllib.error.URLError) as e:
        return e


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))     # files over 2 MB: EFBIG, like a full disk


def test_a_full_disk_fails_clearly_and_leaves_the_live_index(tmp_path, big_corpus):
    ix = tmp_path / "ix"
    assert cli("index", "--index", ix, EXAMPLE_CORPUS).returncode == 0
    store = IndexStore(ix)
    live, version = store.current_path(), store.version()
    r = cli("index", "--index", ix, "--rebuild", "--quiet", big_corpus[0], preexec_fn=_limit_file_size)
    assert r.returncode != 0 and "cannot write the index" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert store.current_path() == live and store.version() == version
    assert sorted(p.name for p in ix.glob("gen-*")) == [live.name]            # the partial build is gone
    assert sum(stored_ids(ix).values()) == 12


def test_an_unwritable_index_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = cli("index", "--index", blocker / "ix", EXAMPLE_CORPUS)
    assert r.returncode != 0 and "cannot write the index" in r.stderr and "Traceback" not in r.stderr


def test_a_corrupt_index_makes_healthz_503_and_the_cli_say_how_to_rebuild(tmp_path, config, analysis):
    ix = tmp_path / "ix"
    assert cli("index", "--index", ix, EXAMPLE_CORPUS).returncode == 0
    toc = next(IndexStore(ix).current_path().glob("*.toc"))
    toc.write_bytes(b"\x00garbage" * 10)
    client = testing.TestClient(create_app(config.with_(index_dir=ix)))
    r = client.simulate_get("/healthz")
    assert r.status_code == 503 and "cannot be opened" in r.json["reason"]
    assert client.simulate_get("/search", params={"q": "党建"}).status_code == 503
    r = cli("search", "--index", ix, "党建")
    assert r.returncode != 0 and "searchsvc index --rebuild" in r.stderr and "Traceback" not in r.stderr
    r = cli("index", "--index", ix, "--rebuild", EXAMPLE_CORPUS)                # the way out works
    assert r.returncode == 0 and client.simulate_get("/healthz").status_code == 200


@pytest.mark.parametrize("workers", [2])
def test_writes_are_visible_in_every_worker_within_a_second(tmp_path, workers):
    env = {"SEARCHSVC_WRITE_TOKEN": TOKEN, "SEARCHSVC_QUERY_LOG_ENABLED": "0"}
    with serving(tmp_path / "ix", workers=workers, env=env) as (base, _):
        time.sleep(3)                         # every worker booted, not only the one that answered /healthz
        body = json.dumps({"id": "fresh-1", "title": "刚发布的文章", "body": "新鲜内容"}, ensure_ascii=False)
        req = urllib.request.Request(base + "/articles/fresh-1", data=body.encode(), method="PUT",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 201
        acked = time.monotonic()
        seen = 0
        while seen < 20:                      # new connections: spread over both workers
            try:
                with urllib.request.urlopen(base + "/articles/fresh-1", timeout=5) as r:
                    seen += r.status == 200
            except urllib.error.HTTPError:
                seen = 0
            assert time.monotonic() - acked < 1.5, "a worker did not see the write within 1 s"
