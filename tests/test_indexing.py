"""The index and the command line that builds it."""

import copy
import gc
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import index as whoosh_index

from searchsvc.cli import EXAMPLE_CORPUS, main
from searchsvc.indexing import Indexer
from searchsvc.parsing import Article
from searchsvc.searching import Engine, SearchRequest
from searchsvc.spool import Spool
from searchsvc.store import CHANGED, UNRECORDED, IndexStore

from conftest import serving
from writeutil import stored_articles


def run_cli(*args):
    return main([str(a) for a in args])


def test_cli_index_upsert_delete_and_stats(tmp_path, capsys):
    ix = tmp_path / "ix"
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS) == 0
    assert "indexed 12, updated 0, skipped 0" in capsys.readouterr().out
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS / "articles.jsonl") == 0
    assert "indexed 0, updated 6, skipped 0" in capsys.readouterr().out
    assert run_cli("delete", "--index", ix, "jsonl-001", "no-such-id") == 0
    out = capsys.readouterr()
    assert "deleted 1, not found 1" in out.out and "no-such-id" in out.err
    assert run_cli("delete", "--index", ix, "no-such-id") == 1
    capsys.readouterr()
    assert run_cli("stats", "--index", ix, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 11 and stats["undated"] == 1
    assert {s["name"] for s in stats["sections"]} == {"工作动态", "思想建设", "作风建设", "组织建设"}


def test_an_index_made_with_other_normal_forms_is_reported_until_rebuilt(tmp_path, capsys):
    """Another Unicode or OpenCC version normalises some characters otherwise, and the index's
    character grams and stored normal forms would no longer match the queries' (a phrase grep
    finds, missed). The index records the normal forms it was made with; ``stats``, ``index``,
    ``serve`` and ``restore`` name the fix until a rebuild."""
    ix = tmp_path / "ix"
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS) == 0
    meta_path = IndexStore(ix).current_path() / "searchsvc.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    assert len(meta["normal_forms_sha256"]) == 64

    def needs_rebuild():
        capsys.readouterr()
        assert run_cli("stats", "--index", ix, "--json") == 0
        return json.loads(capsys.readouterr().out)["needs_rebuild"]

    assert needs_rebuild() == []
    meta["normal_forms_sha256"] = "0" * 64        # as made under another Unicode or OpenCC version
    meta_path.write_text(json.dumps(meta), "utf-8")
    assert needs_rebuild() == [CHANGED["normal_forms_sha256"]]
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS / "articles.jsonl") == 0
    assert f"warning: {CHANGED['normal_forms_sha256']}: run with --rebuild" in capsys.readouterr().err
    with serving(ix, workers=1) as (_, proc):     # the service starts, and says so
        pass
    assert f"warning: {CHANGED['normal_forms_sha256']}: rebuild with 'searchsvc index --rebuild'" in proc.output
    capsys.readouterr()                           # a snapshot of it, installed elsewhere: said too
    assert run_cli("snapshot", "--index", ix, tmp_path / "snap") == 0
    assert run_cli("restore", "--index", tmp_path / "replica", tmp_path / "snap") == 0
    assert f"warning: {CHANGED['normal_forms_sha256']}" in capsys.readouterr().err
    del meta["normal_forms_sha256"]               # made by a searchsvc that did not record them
    IndexStore(ix).current_path().joinpath("searchsvc.json").write_text(json.dumps(meta), "utf-8")
    assert needs_rebuild() == [UNRECORDED["normal_forms_sha256"]]
    assert run_cli("index", "--rebuild", "--index", ix, EXAMPLE_CORPUS) == 0
    assert needs_rebuild() == []


@pytest.mark.parametrize("content", ["[]", '"x"', "null", "{", "\udcff"])
def test_a_meta_file_that_is_not_a_json_object_is_read_as_none_and_the_service_still_starts(tmp_path, analysis,
                                                                                         content):
    """A hand-edited or damaged ``searchsvc.json``: the index is reported as one to rebuild,
    by the command line and by the app plain gunicorn loads (which used to fail to import)."""
    ix = tmp_path / "ix"
    assert run_cli("index", "--quiet", "--index", ix, EXAMPLE_CORPUS) == 0
    (IndexStore(ix).current_path() / "searchsvc.json").write_text(content, "utf-8", errors="surrogateescape")
    warnings = IndexStore(ix).serving_warnings(analysis.index_meta())
    assert any("the index schema changed" in w for w in warnings), warnings
    env = {**os.environ, "SEARCHSVC_INDEX": str(ix)}
    loaded = subprocess.run([sys.executable, "-c", "import searchsvc.wsgi"], env=env, capture_output=True, text=True)
    assert loaded.returncode == 0 and "Traceback" not in loaded.stderr, loaded.stderr
    assert "the index schema changed" in loaded.stderr and "searchsvc index --rebuild" in loaded.stderr


def test_the_normal_forms_digest_is_of_the_forms(analysis):
    """The same forms give the same digest (a second normaliser, its tables read from the
    cache file as another process would); any form changed, another one."""
    from searchsvc.analysis import Normalizer
    normalizer = analysis.normalizer
    assert Normalizer(analysis.segmenter.cache_dir).digest == normalizer.digest
    for attribute, change in (("table", {ord("Ａ"): "b"}), ("t2s", {ord("們"): "门"}), ("_contextual_cps", {0x301})):
        other = copy.copy(normalizer)
        other.__dict__.pop("digest", None)
        before = getattr(normalizer, attribute)
        setattr(other, attribute, {**before, **change} if isinstance(before, dict) else before ^ change)
        assert other.digest != normalizer.digest, attribute


def test_exit_status_for_skips_nothing_and_usage(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "t", "body": "b"}\nnot json\n', "utf-8")
    ix = tmp_path / "ix"
    assert run_cli("index", "--index", ix, bad) == 0                    # skips are reported, not fatal
    assert "skipped" in capsys.readouterr().err
    assert run_cli("index", "--index", ix, "--strict", bad) == 1
    only_bad = tmp_path / "only.jsonl"
    only_bad.write_text("not json\n", "utf-8")
    assert run_cli("index", "--index", ix, only_bad) == 1               # nothing indexed
    assert run_cli("index", "--index", ix, tmp_path / "missing.jsonl") == 2
    with pytest.raises(SystemExit) as e:
        run_cli("index")
    assert e.value.code == 2


def test_rebuild_swaps_generations_atomically(tmp_path, capsys):
    ix = tmp_path / "ix"
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS / "articles.jsonl") == 0
    store = IndexStore(ix)
    first = store.current_path()
    assert run_cli("index", "--index", ix, "--rebuild", EXAMPLE_CORPUS) == 0
    second = store.current_path()
    assert first != second and (ix / "current").is_symlink()
    assert whoosh_index.open_dir(str(second)).doc_count() == 12
    assert first.exists()          # the previous generation stays for readers still on it


def test_killed_rebuild_leaves_the_live_index(tmp_path, big_corpus):
    ix = tmp_path / "ix"
    assert run_cli("index", "--index", ix, EXAMPLE_CORPUS) == 0
    live = IndexStore(ix).current_path()
    proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "index", "--index", str(ix), "--rebuild",
                             "--quiet", str(big_corpus[0])])
    # Killed once the rebuild has begun writing its new generation (not after a guessed delay,
    # which on a busy machine may end before the process got that far, or after it finished).
    while not [p for p in ix.glob("gen-*") if p != live] and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the rebuild finished before it could be killed"
    proc.kill()
    proc.wait()
    assert IndexStore(ix).current_path() == live
    assert whoosh_index.open_dir(str(live)).doc_count() == 12
    assert run_cli("index", "--index", ix, "--rebuild", EXAMPLE_CORPUS) == 0   # and the next run completes


@pytest.mark.parametrize("limit", [None, 64 << 10], ids=["merged", "left alone"])
def test_upserts_leave_large_segments_out_of_their_merges(tmp_path, analysis, config, monkeypatch, limit):
    """Whoosh merges small segments by document count: without a size limit, the fifth
    upsert after a long article rewrites that article's one-document segment too."""
    from searchsvc import indexing
    from searchsvc.whoosh_adapter import write
    if limit:
        monkeypatch.setattr(write, "MERGE_MAX_BYTES", limit)
    cfg = config.with_(index_dir=tmp_path / "ix")
    indexer = indexing.Indexer(cfg, analysis)
    indexer.index_articles([Article(id=f"base{i}", title=f"基础{i}", body="党建工作" * 50) for i in range(40)],
                           rebuild=True, workers=1)
    before = {s.segment_id() for s in IndexStore(cfg.index_dir).open()._segments()}
    body = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(6_000))    # ~2 MB of terms
    indexer.index_articles([Article(id="long", title="长文", body=body)], workers=1)
    (large,) = {s.segment_id() for s in IndexStore(cfg.index_dir).open()._segments()} - before
    for i in range(6):
        indexer.index_articles([Article(id=f"p{i}", title=f"短文{i}", body="会议")], workers=1)
    segments = {s.segment_id() for s in IndexStore(cfg.index_dir).open()._segments()}
    assert (large in segments) == bool(limit)
    assert len(segments) <= 4                 # the small ones were merged either way
    assert IndexStore(cfg.index_dir).open().doc_count() == 47


def test_new_segments_are_read_back_before_they_are_published(tmp_path, analysis, monkeypatch):
    """What a rebuild's parent does before its commit (``view.verify``), on segments a worker
    finished in the new generation a rebuild writes (``IndexStore.create_generation``), read
    as the service reads them (``pread``, not Whoosh's mmap path): intact ones pass; an
    article missing from them, a flipped bit in the sidecar's postings or a truncated
    segment file raises UnreadableIndex."""
    from searchsvc import sidecar
    from searchsvc.filestore import PreadFileStorage
    from searchsvc.schema import document
    from searchsvc.view import UnreadableIndex, verify
    from searchsvc.whoosh_adapter import FastSegmentWriter

    opened = []
    pread_open = PreadFileStorage.open_file
    monkeypatch.setattr(PreadFileStorage, "open_file", lambda self, name, **kw: opened.append(name) or
                        pread_open(self, name, **kw))

    generation, ix = IndexStore(tmp_path).create_generation(analysis.index_meta())
    worker = FastSegmentWriter(ix, recorder=sidecar.Recorder, _lk=False)
    articles = [Article(id=f"a{i}", title=f"会议{i}", body="全面从严治党，" * (i + 1)) for i in range(40)]
    for a in articles:
        worker.add_document(**document(a, analysis))
    segment = worker.finish_segment()
    ids = [a.id for a in articles]
    opened.clear()                            # (the writer read its TOC)
    verify(ix.storage, ix.schema, [segment], ids)
    assert opened, "verify read through the writer's storage"
    with pytest.raises(UnreadableIndex, match="'gone' is missing"):
        verify(ix.storage, ix.schema, [segment], ids + ["gone"])

    side = next(generation.glob("*.ssp"))
    intact = side.read_bytes()
    (n,) = sidecar._HEADER.unpack_from(intact, len(sidecar.MAGIC))    # the layout Sidecar() reads
    meta = json.loads(intact[len(sidecar.MAGIC) + sidecar._HEADER.size:][:n])
    start = -(-(len(sidecar.MAGIC) + sidecar._HEADER.size + n) // sidecar.ALIGN) * sidecar.ALIGN
    damaged = bytearray(intact)
    damaged[start + meta["arrays"]["ids"]["offset"]] ^= 0x10    # only the checksums see it
    side.write_bytes(bytes(damaged))
    with pytest.raises(UnreadableIndex, match="checksum"):
        verify(ix.storage, ix.schema, [segment], ids)
    side.write_bytes(intact)

    seg = next(generation.glob("*.seg"))
    seg.write_bytes(seg.read_bytes()[:seg.stat().st_size // 2])
    with pytest.raises(UnreadableIndex):
        verify(ix.storage, ix.schema, [segment], ids)


# ------------------------------------------------------------------ the spool
_spooled = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=30)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(items=_spooled)
def test_the_spool_holds_what_a_dict_of_articles_holds(tmp_path_factory, items):
    """A later article with the same id replaces the earlier one in its place, as
    ``dict[id] = article`` does; a process forked right after the writes, slices and
    iteration read the same, and the file holds each record once (nothing left in a
    buffer for the forked process to write again)."""
    model, written = {}, 0
    with Spool(tmp_path_factory.mktemp("spool")) as spool:
        for doc_id, title in items:
            article = Article(id=doc_id, title=title, body=title * 3)
            spool.add(article)
            model[doc_id] = article
            written += 8 + len(pickle.dumps(article, pickle.HIGHEST_PROTOCOL))
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_send_titles, args=(spool, out))    # (inherited, not pickled)
        child.start()
        assert out.get(timeout=30) == [a.title for a in model.values()]
        child.join()
        assert spool.ids == list(model) and len(spool) == len(model)
        assert list(spool) == list(model.values()) == spool[:]
        assert spool[1:3] == list(model.values())[1:3]
        assert os.fstat(spool._file.fileno()).st_size == written


def _send_titles(spool, out):
    out.put([a.title for a in spool])


def test_a_later_line_wins_and_the_parent_holds_no_article(tmp_path, analysis, config):
    """index_paths: the last line of an id is indexed, and while two workers index, the
    parent process holds no Article: they read their batches from the spool."""
    lines = [{"id": f"a{i}", "title": f"第{i}篇", "body": "党建工作" * 50} for i in range(600)]
    lines.append({"id": "a7", "title": "改过的标题", "body": "乡村振兴"})
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")

    def articles_held():
        gc.collect()
        return sum(isinstance(o, Article) for o in gc.get_objects())

    def progress(_count):       # called in the parent as workers report batches
        seen.append(articles_held())

    before, seen = articles_held(), []     # (other tests' objects may still be alive)
    cfg = config.with_(index_dir=tmp_path / "ix")
    summary = Indexer(cfg, analysis).index_paths([corpus], rebuild=True, workers=2, progress=progress)
    assert summary.indexed == 600 and summary.documents == 600
    assert seen and max(seen) <= before
    assert {doc["id"]: doc for doc in stored_articles(cfg.index_dir)}["a7"]["title"] == "改过的标题"


def test_segment_postings_bounds_each_workers_segments_and_answers_stay_the_same(tmp_path, analysis, config,
                                                                                  corpus):
    """``segment_postings`` only decides where a worker cuts its segments: a small bound gives
    many segments, and every search (ids, order, scores, totals) answers as with the default."""
    default = config.with_(index_dir=tmp_path / "one")
    small = config.with_(index_dir=tmp_path / "many", segment_postings=5_000)
    alone = config.with_(index_dir=tmp_path / "alone", segment_postings=5_000)    # one worker cuts too
    for cfg, workers in ((default, 2), (small, 2), (alone, 1)):
        Indexer(cfg, analysis).index_paths([corpus[0]], rebuild=True, workers=workers)
    counts = []
    for cfg in (default, small, alone):
        with IndexStore(cfg.index_dir).open().reader() as reader:
            counts.append(len([leaf for leaf, _ in reader.leaf_readers()]))
    assert counts[0] == 2 and counts[1] > 4 and counts[2] > 2    # (a worker cuts between jobs of 200 articles)
    engines = [Engine.from_config(cfg.with_(result_cache_size=0), analysis) for cfg in (default, small, alone)]
    for q in ["党建", "乡村振兴", "学习 会议", '"党的建设"', "title:工作", "发展 -会议"]:
        for sort in ("relevance", "newest"):
            one, *others = (e.search(SearchRequest(q=q, per_page=50, sort=sort)) for e in engines)
            assert one.total > 0, q
            for many in others:
                assert one.total == many.total, q
                assert [(h["id"], h["score"]) for h in one.hits] == [(h["id"], h["score"]) for h in many.hits], q


def test_document_order_is_the_input_order_whichever_worker_finishes_first(tmp_path, analysis, config):
    """The first worker gets long articles and finishes last; its segment still comes first,
    so document numbers (and the order of equal scores) do not depend on scheduling."""
    long = [Article(id=f"long{i}", title=f"长文{i}", body="党的建设和乡村振兴。" * 400) for i in range(200)]
    short = [Article(id=f"short{i}", title=f"短文{i}", body="会议") for i in range(200)]
    cfg = config.with_(index_dir=tmp_path / "ix")
    Indexer(cfg, analysis).index_articles(long + short, rebuild=True, workers=2)
    with IndexStore(cfg.index_dir).open().searcher() as s:
        assert [s.stored_fields(d)["id"] for d in range(400)] == [a.id for a in long + short]
