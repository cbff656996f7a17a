"""Issue 12, durable writes: one regression test per way an acknowledged write was
lost (torn journal tail, bulk order, dates before 1000, concurrent writers,
rejected writes replayed) and per leak (segments, descriptors, cached 404s,
directories created by read/delete commands, a killed rebuild's leftovers)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from searchsvc.journal import JOURNAL, Journal, JournalCorrupt
from searchsvc.parsing import article_from_dict
from searchsvc.store import IndexStore
from searchsvc.writes import Writer
from writeutil import (AUTH, TOKEN, app_client, bulk, cli, gen_article, make_config, open_fds, put, rebuild,
                       served, stored_ids, write_corpus)


@pytest.fixture()
def env(tmp_path, config, analysis):
    """(client, cfg, corpus): an app over a fresh index of a 20-article generated corpus."""
    cfg = make_config(config, tmp_path)
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    rebuild(cfg, analysis, corpus)
    return app_client(cfg, analysis), cfg, corpus


# A writer process under RLIMIT_FSIZE: files may not grow past LIMIT bytes (EFBIG, as on a full disk).
FULL_DISK_WRITER = """
import json, signal, sys
from falcon import testing
from searchsvc.app import create_app
from searchsvc.config import Config
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)           # EFBIG instead of being killed
cfg = Config.from_env(environ={}, index_dir=sys.argv[1], write_token=sys.argv[2], query_log_enabled=False)
client = testing.TestClient(create_app(cfg))
body = "\\n".join(json.dumps({"id": f"full-{i}", "title": f"满盘{i}", "body": "填满磁盘的正文。" * 300},
                             ensure_ascii=False) for i in range(40)).encode()
codes = [client.simulate_post("/articles/bulk", body=body,
                              headers={"Authorization": "Bearer " + sys.argv[2]}).status_code for _ in range(3)]
print(json.dumps(codes))
"""


def _fsize_limit(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_1_a_full_disk_during_bulk_writes_leaves_no_torn_tail_and_later_writes_survive(env, analysis):
    client, cfg, corpus = env
    assert put(client, gen_article("before-full", 1)).status_code == 201
    journal = Path(cfg.index_dir) / JOURNAL
    limit = journal.stat().st_size + 3000     # the next bulk's journal record does not fit
    r = subprocess.run([sys.executable, "-c", FULL_DISK_WRITER, str(cfg.index_dir), TOKEN],
                       capture_output=True, text=True, preexec_fn=_fsize_limit(limit), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert set(json.loads(r.stdout)) <= {500, 507} and 507 in json.loads(r.stdout), r.stdout
    assert not any(i.startswith("full-") for i in stored_ids(cfg.index_dir))     # errors: not applied
    assert put(client, gen_article("after-full", 2)).status_code == 201
    rebuild(cfg, analysis, corpus)
    assert served(client, "after-full") is not None and served(client, "before-full") is not None
    assert not any(i.startswith("full-") for i in stored_ids(cfg.index_dir))     # ...nor replayed


def test_2_bulk_lines_apply_in_line_order(env, analysis):
    client, cfg, corpus = env
    r = bulk(client, [{"delete": "base-1"}, gen_article("base-1", 7),
                      gen_article("ord-2", 1), {"delete": "ord-2"},
                      {"delete": "ord-3"}, gen_article("ord-3", 2), gen_article("ord-3", 3)])
    assert r.status_code == 200, r.text
    assert [x["result"] for x in r.json["results"]] == [
        "deleted", "created", "created", "deleted", "not_found", "created", "updated"]
    expect = {"base-1": gen_article("base-1", 7)["title"], "ord-2": None, "ord-3": gen_article("ord-3", 3)["title"]}
    for _ in range(2):                          # live, then after a rebuild
        assert {i: (served(client, i) or (None,))[0] for i in expect} == expect
        rebuild(cfg, analysis, corpus)


@pytest.mark.parametrize("given,stored", [("0001-01-01", "0001-01-01"),
                                          ("0999-05-05T10:00", "0999-05-05T10:00"),
                                          ("9999-12-31T23:59", "9999-12-31T23:59")])
def test_3_dates_of_any_4_digit_year_round_trip_through_journal_and_rebuild(env, analysis, given, stored):
    client, cfg, corpus = env
    assert put(client, gen_article("old-date", 3, date=given)).status_code == 201
    assert served(client, "old-date")[2] == stored
    rebuild(cfg, analysis, corpus)
    assert served(client, "old-date")[2] == stored


def test_4_concurrent_writers_journal_order_is_commit_order(env, analysis):
    client, cfg, corpus = env
    acked = []                                  # n of each acknowledged PUT
    lock = threading.Lock()

    def writer(k):
        for j in range(6):
            n = k * 100 + j
            if put(client, gen_article("contended", n)).status_code in (200, 201):
                with lock:
                    acked.append(n)
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acked) == 24
    live = served(client, "contended")
    writes = [r for r in Journal(cfg.index_dir).records() if r.kind == "w"]
    assert [r.seq for r in writes] == sorted({r.seq for r in writes})
    assert live[0] == writes[-1].ops[0]["article"]["title"]          # the last in the journal is live
    rebuild(cfg, analysis, corpus)
    assert served(client, "contended") == live


def test_5_writes_answered_503_are_never_applied_later(env, analysis):
    client, cfg, corpus = env
    held = IndexStore(cfg.index_dir).open().writer()          # another writer holds Whoosh's lock
    try:
        client_busy = app_client(cfg.with_(write_lock_wait=0.2), analysis)
        assert client_busy.simulate_delete("/articles/base-2", headers=AUTH).status_code == 503
        assert put(client_busy, gen_article("rejected", 1)).status_code == 503
        r = bulk(client_busy, [gen_article("rejected-2", 1), {"delete": "base-3"}])
        assert r.status_code == 503
    finally:
        held.cancel()
    assert served(client, "base-2") and served(client, "base-3") and not served(client, "rejected")
    rebuild(cfg, analysis, corpus)
    assert served(client, "base-2") and served(client, "base-3")
    assert served(client, "rejected") is None and served(client, "rejected-2") is None


def test_a_delete_of_a_missing_id_is_404_and_not_journaled(env, analysis, tmp_path):
    client, cfg, corpus = env
    before = Journal(cfg.index_dir).stats()
    assert client.simulate_delete("/articles/base-99", headers=AUTH).status_code == 404
    assert Journal(cfg.index_dir).stats() == before
    write_corpus(corpus, 100)                   # the corpus gains base-99 later: it must stay
    rebuild(cfg, analysis, corpus)
    assert served(client, "base-99") is not None


def test_segments_merge_and_descriptors_stay_flat_over_many_puts(env):
    client, cfg, _ = env
    for i in range(20):                         # warm up: caches, lazily opened files
        assert put(client, gen_article(f"warm-{i}", i)).status_code == 201
        assert served(client, f"warm-{i}") is not None
    fds = open_fds()
    for i in range(200):                        # main leaked one descriptor per PUT
        assert put(client, gen_article(f"many-{i}", i)).status_code == 201
        assert served(client, f"many-{i}") is not None
    assert open_fds() <= fds + 8, (fds, open_fds())
    segments = len(IndexStore(cfg.index_dir).open()._segments())
    assert segments <= 12, segments


def test_read_your_write_in_the_same_worker_while_others_read(env):
    client, _, _ = env
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            client.simulate_get("/articles/base-0")
            client.simulate_get("/search", params={"q": "党建"})
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(30):
            assert put(client, gen_article(f"ryw-{i}", i)).status_code == 201
            assert served(client, f"ryw-{i}") is not None, f"404 right after the 201 of ryw-{i}"
            assert client.simulate_delete(f"/articles/ryw-{i}", headers=AUTH).status_code == 200
            assert served(client, f"ryw-{i}") is None
    finally:
        stop.set()
        for t in readers:
            t.join()


def test_404s_are_not_cached_publicly(env):
    client, _, _ = env
    r = client.simulate_get("/articles/not-yet")
    assert r.status_code == 404 and "public" not in r.headers.get("Cache-Control", "")
    assert "no-store" in r.headers["Cache-Control"]
    assert client.simulate_get("/articles/base-0").headers["Cache-Control"].startswith("public")


def test_delete_and_stats_on_a_missing_index_create_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    for args in (("delete", "--index", missing, "x"), ("stats", "--index", missing),
                 ("snapshot", "--index", missing, tmp_path / "snap")):
        r = cli(*args)
        assert r.returncode != 0 and "no index" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not missing.exists() and not (tmp_path / "no").exists()


def test_a_killed_rebuild_is_removed_never_kept_as_previous(env, analysis, tmp_path):
    client, cfg, corpus = env
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps(gen_article(f"big-{i}", i), ensure_ascii=False) + "\n"
                           for i in range(2000)), "utf-8")
    store = IndexStore(cfg.index_dir)
    rebuild(cfg, analysis, corpus)
    live = store.current_path()
    assert len(list(Path(cfg.index_dir).glob("gen-*"))) == 2          # live and previous
    proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "index", "--index", str(cfg.index_dir),
                             "--rebuild", "--quiet", "--workers", "1", str(big)])
    deadline = time.monotonic() + 60
    while len(list(Path(cfg.index_dir).glob("gen-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.current_path() == live and len(list(Path(cfg.index_dir).glob("gen-*"))) == 3
    rebuild(cfg, analysis, corpus)
    gens = {p.name for p in Path(cfg.index_dir).glob("gen-*")}
    assert gens == {live.name, store.current_path().name}       # the real previous one is kept


def test_a_torn_tail_is_cut_at_open_and_reported(env, analysis, caplog):
    client, cfg, corpus = env
    assert put(client, gen_article("torn-1", 1)).status_code == 201
    path = Path(cfg.index_dir) / JOURNAL
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x50\x00\x00\x00garbage-partial-record")
    assert put(client, gen_article("torn-2", 2)).status_code == 201
    assert "torn" in caplog.text and str(good) in caplog.text
    rebuild(cfg, analysis, corpus)
    assert served(client, "torn-1") and served(client, "torn-2")


def test_a_corrupt_record_in_the_middle_stops_replay_naming_it(env, analysis):
    client, cfg, corpus = env
    for i in range(3):
        assert put(client, gen_article(f"mid-{i}", i)).status_code == 201
    path = Path(cfg.index_dir) / JOURNAL
    recs = [r for r in Journal(cfg.index_dir).records() if r.kind == "w"]
    data = bytearray(path.read_bytes())
    data[recs[1].offset + 12] ^= 0xFF           # a payload byte of the second write
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match=rf"record at byte {recs[1].offset}\b"):
        rebuild(cfg, analysis, corpus)
    r = cli("index", "--index", cfg.index_dir, "--rebuild", "--quiet", corpus)
    assert r.returncode == 2 and f"byte {recs[1].offset}" in r.stderr and "Traceback" not in r.stderr


def test_a_record_that_cannot_be_replayed_stops_the_rebuild_naming_it(env, analysis):
    client, cfg, corpus = env
    with Journal(cfg.index_dir).locked(timeout=1) as log:       # e.g. written by a laxer version
        log.done(log.intent([{"op": "put", "article": {"id": "bad", "title": ""}}]))
        seq = log.seq
    with pytest.raises(JournalCorrupt, match=rf"\(seq {seq}\) cannot be replayed"):
        rebuild(cfg, analysis, corpus)


def test_the_old_unframed_journal_is_migrated(tmp_path, config, analysis):
    cfg = make_config(config, tmp_path)
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    rebuild(cfg, analysis, corpus)
    legacy = Path(cfg.index_dir) / "journal.jsonl"
    legacy.write_text("\n".join([
        json.dumps({"op": "put", "article": {**gen_article("legacy-1", 1), "date": "1-01-01T00:00"}},
                   ensure_ascii=False),
        json.dumps({"op": "delete", "id": "base-4"}),
        "{torn"]), "utf-8")
    rebuild(cfg, analysis, corpus)
    client = app_client(cfg, analysis)
    assert served(client, "legacy-1")[2] == "0001-01-01T00:00" and served(client, "base-4") is None
    assert not legacy.exists() and (Path(cfg.index_dir) / "journal.jsonl.migrated").exists()


def test_a_crash_between_journal_and_commit_is_rolled_forward(env, analysis):
    """The rule: a write in the journal without its outcome (the process died before
    answering) is completed by the next writer and by a rebuild: both agree."""
    client, cfg, corpus = env
    journal = Journal(cfg.index_dir)
    with journal.locked(timeout=1) as log:      # what a writer killed right after the intent leaves
        log.intent([{"op": "put", "article": gen_article("half-done", 5)}])
    assert served(client, "half-done") is None
    assert put(client, gen_article("next", 1)).status_code == 201
    assert served(client, "half-done") is not None
    rebuild(cfg, analysis, corpus)
    assert served(client, "half-done") is not None and served(client, "next") is not None


def test_rebuild_checkpoints_the_journal_and_stats_show_it(env, analysis):
    client, cfg, corpus = env
    for n in range(30):
        assert put(client, gen_article("often", n)).status_code in (200, 201)
    assert client.simulate_delete("/articles/base-5", headers=AUTH).status_code == 200
    size, last = Journal(cfg.index_dir).stats()
    rebuild(cfg, analysis, corpus)
    size2, last2 = Journal(cfg.index_dir).stats()
    assert last2 == last and size2 < size / 5
    assert served(client, "often")[0] == gen_article("often", 29)["title"] and served(client, "base-5") is None
    rebuild(cfg, analysis, corpus)              # a checkpoint replays like the writes it stands for
    assert served(client, "often")[0] == gen_article("often", 29)["title"] and served(client, "base-5") is None
    r = cli("stats", "--index", cfg.index_dir, "--json")
    stats = json.loads(r.stdout)
    assert stats["journal"] == {"bytes": size2, "last_seq": last}
    r = cli("stats", "--index", cfg.index_dir)
    assert f"last sequence {last}" in r.stdout


def test_snapshot_and_restore(env, analysis, tmp_path):
    client, cfg, corpus = env
    assert put(client, gen_article("in-snapshot", 1)).status_code == 201
    snap = tmp_path / "snap"
    r = cli("snapshot", "--index", cfg.index_dir, snap)
    assert r.returncode == 0 and "verified" in r.stdout, r.stderr
    assert put(client, gen_article("after-snapshot", 2)).status_code == 201
    assert client.simulate_delete("/articles/in-snapshot", headers=AUTH).status_code == 200
    r = cli("restore", "--index", cfg.index_dir, snap)
    assert r.returncode == 0, r.stderr
    assert served(client, "in-snapshot") is not None and served(client, "after-snapshot") is None
    rebuild(cfg, analysis, corpus)              # the restored journal is what a rebuild replays
    assert served(client, "in-snapshot") is not None and served(client, "after-snapshot") is None
    r = cli("snapshot", "--index", cfg.index_dir, snap)
    assert r.returncode != 0 and "not empty" in r.stderr and "Traceback" not in r.stderr
    r = cli("restore", "--index", cfg.index_dir, tmp_path / "nothing")
    assert r.returncode != 0 and "no snapshot" in r.stderr and "Traceback" not in r.stderr


def test_cli_delete_is_journaled_with_the_same_order(env, analysis):
    client, cfg, corpus = env
    r = cli("delete", "--index", cfg.index_dir, "base-6", "base-77")
    assert r.returncode == 0 and "deleted 1, not found 1" in r.stdout
    writer = Writer(cfg, analysis)
    writer.upsert([article_from_dict(gen_article("base-6", 9))])
    rebuild(cfg, analysis, corpus)
    assert served(client, "base-6")[0] == gen_article("base-6", 9)["title"]
