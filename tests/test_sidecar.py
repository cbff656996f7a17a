"""The posting sidecar (``searchsvc.sidecar``) is derived from Whoosh and never a source
of wrong answers: for every term of every segment its postings equal Whoosh's own
matcher's; the one the writer records equals the one built from the segment; a
missing, damaged, foreign or truncated one is rebuilt or ignored, and searches answer
the same with and without it."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from searchsvc import sidecar
from searchsvc.analysis import char_grams
from searchsvc.indexing import Indexer
from searchsvc.postings import TermBlocks
from searchsvc.searching import Engine, SearchRequest
from searchsvc.store import IndexStore
from searchsvc.whoosh_adapter import posting_extents

import corpus_gen
import oracle
from conftest import serving, whoosh_postings
from writeutil import make_config


def assert_sidecars_equal_whoosh(index_dir: Path) -> int:
    """Every term's sidecar postings and every field length equal Whoosh's; returns terms checked."""
    checked = 0
    with IndexStore(index_dir).open().reader() as reader:
        for leaf, _ in reader.leaf_readers():
            if not leaf.doc_count_all():    # an index of no articles
                continue
            side = sidecar.open_for(leaf)
            assert side is not None, f"{leaf.segment().segment_id()} has no sidecar"
            side.check()
            checked_in_leaf = 0
            for field in [f for f in leaf.schema.names() if leaf.schema[f].indexed]:   # (the file's order)
                for tbytes, postfile, offset, length in posting_extents(leaf, field):
                    span = side.lookup(field, tbytes)
                    t = side.find(field, tbytes)
                    assert side.span(field, tbytes) == (*span, t) == (int(side.starts[t]), int(side.starts[t + 1]), t)
                    checked_in_leaf += 1
                    ids, tfs = side.postings(*span)
                    live = [(d, w) for d, w in zip(ids.tolist(), tfs.tolist()) if not leaf.is_deleted(d)]
                    # Whoosh's matcher skips deleted documents; the sidecar, like the blocks, holds them
                    assert ([d for d, _ in live], [w for _, w in live]) == whoosh_postings(leaf, field, tbytes), \
                        (field, tbytes)
                    blocks = TermBlocks(postfile, offset, length).decode()
                    assert (ids.tolist(), tfs.tolist()) == (blocks[0].tolist(), blocks[1].tolist())
                    probe = np.array(sorted({0, *ids[:3].tolist(), leaf.doc_count_all() - 1}))
                    expect = [tfs[ids.tolist().index(d)] if d in ids else 0.0 for d in probe.tolist()]
                    assert side.freqs_of(*span, probe).tolist() == expect
                    assert [side.freq_of(*span, d) for d in probe.tolist()] == expect
                    absent = tbytes + b"\xff"       # never a UTF-8 term: the dictionary must say so
                    assert side.lookup(field, absent) is None
                    checked += 1
            assert checked_in_leaf == len(side.starts) - 1         # no term Whoosh lacks
            for field in sidecar.LENGTH_FIELDS:
                public = [leaf.doc_field_length(d, field) or 0 for d in range(leaf.doc_count_all())]
                assert side.lengths(field).tolist() == public
            assert_positions_equal_texts(leaf, side)
    return checked


def assert_positions_equal_texts(leaf, side) -> None:
    """The positions kept are those of every text_c bigram without whitespace held by
    1/POSITION_SHARE of the segment's documents, and equal where ``char_grams`` finds it
    in the stored text."""
    count = leaf.doc_count_all()
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for d in range(count):
        for i, gram in enumerate(char_grams(_norm(leaf, d), unigrams=False)):
            found[gram].append((d, i))
    least = max(1, count // sidecar.POSITION_SHARE)
    want = {g for g, occ in found.items() if len({d for d, _ in occ}) >= least and " " not in g}
    kept = {}
    for t in side.pos_term.tolist():
        key = side.terms[int(side.term_at[t]):int(side.term_at[t + 1])].tobytes()
        assert key[0] == side.field_numbers["text_c"]
        keys = side.phrase_keys(t, 0, np.arange(count))
        kept[key[1:].decode("utf-8")] = list(zip((keys >> 32).tolist(), (keys & 0xFFFFFFFF).tolist()))
    assert set(kept) == want
    for gram, occurrences in kept.items():
        assert occurrences == found[gram], gram


def _norm(leaf, docnum: int) -> str:
    return leaf.column_reader("norm")[docnum].decode("utf-8")


def sidecar_files(index_dir: Path) -> list[str]:
    return sorted(glob.glob(str(index_dir / "current" / f"*{sidecar.SUFFIX}")))


def test_session_index_sidecars_equal_whoosh(built_index):
    """The generated corpus and the bundled examples, written by two indexing workers."""
    assert assert_sidecars_equal_whoosh(built_index) > 10_000


TEXT = st.text(st.sampled_from("党建的是一二三发展高质量中国式现代化 \n，。AbC1"), max_size=400)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(bodies=[("的", "的")], repeat=254)     # 256 的: the first frequency past a byte
@example(bodies=[("", "")], repeat=700)
@given(bodies=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=6),
       repeat=st.integers(0, 700))
def test_generated_articles_sidecars_equal_whoosh(config, analysis, tmp_path_factory, bodies, repeat):
    """Odd articles (empty, whitespace, one character 700 times: a frequency past a byte)."""
    tmp = tmp_path_factory.mktemp("sidecar")
    cfg = make_config(config, tmp)
    articles = [{"id": f"g{i}", "title": t, "body": b + "的" * repeat} for i, (t, b) in enumerate(bodies)]
    path = corpus_gen.write_jsonl(articles, tmp / "gen.jsonl")
    Indexer(cfg, analysis).index_paths([path], rebuild=True, workers=1)
    # Upserts add segments and merge small ones: each new segment gets its own sidecar.
    Indexer(cfg, analysis).index_paths([corpus_gen.write_jsonl(articles[:1], tmp / "again.jsonl")])
    assert_sidecars_equal_whoosh(cfg.index_dir)
    shutil.rmtree(tmp)


ALPHABET = "党建的是一二三𠀀"      # (an astral character: positions count code points)
PHRASE = st.text(st.sampled_from(ALPHABET), min_size=2, max_size=8)


def phrase_totals(cfg, analysis, phrases) -> dict[str, int]:
    engine = Engine.from_config(cfg.with_(reload_interval=0.0), analysis)
    return {p: engine.search(SearchRequest(q=f'"{p}"', per_page=1)).total for p in phrases}


def grep_totals(norms, phrases) -> dict[str, int]:
    return {p: sum(p in n for n in norms) for p in phrases}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(texts=["党" * 300], phrases=["党党党", "党党党党党"])     # frequencies past a byte
@given(texts=st.lists(st.text(st.sampled_from(ALPHABET + " \n\t\u3000，"), max_size=300), min_size=1, max_size=8),
       phrases=st.lists(PHRASE, min_size=1, max_size=10))
def test_phrases_decided_by_positions_equal_grep(config, analysis, tmp_path_factory, texts, phrases):
    """A phrase confirmed from bigram positions, never from the text, is found exactly
    where the normalised text holds it: asked of every article (those lacking one of its
    bigrams included), and through a search. A small segment keeps every bigram's
    positions, so each is decided; each article's own pieces are asked too."""
    from searchsvc.view import IndexView
    tmp = tmp_path_factory.mktemp("phrases")
    cfg = make_config(config, tmp)
    articles = [{"id": f"p{i}", "title": t[:20], "body": t} for i, t in enumerate(texts)]
    Indexer(cfg, analysis).index_paths([corpus_gen.write_jsonl(articles, tmp / "p.jsonl")], rebuild=True, workers=1)
    norms = [analysis.normalizer(a["title"]) + "\n" + analysis.normalizer(a["body"]) for a in articles]
    runs = [r for n in norms for r in re.split(r"[\s，]+", n) if len(r) >= 2]
    pieces = [p for r in runs for p in (r, r[:5], r[1:7], r[-6:]) if len(p) >= 2]
    asked = list(dict.fromkeys(phrases + pieces[:40]))
    with IndexStore(cfg.index_dir).open().reader() as reader:
        view = IndexView(reader, "test")
        by_id = {view.searcher.stored_fields(d)["id"]: d for d in range(view.n)}
        norm_of = {by_id[a["id"]]: n for a, n in zip(articles, norms) if a["id"] in by_id}   # (empty ones refused)
        for phrase in asked:
            docs = np.arange(view.n)
            decided, holds = view.phrase_positions(phrase, docs)
            assert decided.all()
            assert {int(d) for d in docs[holds]} == {d for d, n in norm_of.items() if phrase in n}, phrase
    assert phrase_totals(cfg, analysis, asked) == grep_totals(norm_of.values(), asked)
    shutil.rmtree(tmp)


def test_phrases_across_segments_with_and_without_positions_equal_grep(config, analysis, tmp_path, monkeypatch):
    """Several segments: one of 200 articles (a bigram keeps positions only if 6 articles
    hold it, so some phrases are decided by positions, some partly, some by reading), one
    of later upserts, and one whose sidecar is gone (read through Whoosh's blocks).
    Positions are asked even for a single candidate here (a real index asks from 8)."""
    import random
    from searchsvc import matching
    monkeypatch.setattr(matching, "POSITIONS_MIN_CANDIDATES", 1)
    rng = random.Random(7)
    cfg = make_config(config, tmp_path)
    # 40 characters: ~1,600 bigrams over 200 articles, some held by 6 of them, most by fewer
    chars = "党建的是一二三设国家人民发展中华社会主义新时代经济文化生态安全法治改革开放创新协调绿色共享，\n"
    articles = [{"id": f"a{i}", "title": "".join(rng.choices(chars[:-2], k=6)),
                 "body": "".join(rng.choices(chars, k=rng.randint(5, 120)))} for i in range(200)]
    Indexer(cfg, analysis).index_paths([corpus_gen.write_jsonl(articles, tmp_path / "a.jsonl")], rebuild=True,
                                       workers=1)
    later = [{"id": f"b{i}", "title": "党建", "body": "".join(rng.choices(chars, k=40))} for i in range(30)]
    Indexer(cfg, analysis).index_paths([corpus_gen.write_jsonl(later, tmp_path / "b.jsonl")])
    norms = [analysis.normalizer(a["title"]) + "\n" + analysis.normalizer(a["body"]) for a in articles + later]
    phrases = list(dict.fromkeys("".join(rng.choices(chars[:8], k=rng.randint(3, 4))) for _ in range(150)))
    phrases += [n[i:i + k] for n in norms[:60] for i, k in ((8, 3), (12, 4), (20, 5)) if len(n) > i + k]
    phrases = [p for p in phrases if not any(c.isspace() or c == "，" for c in p)]
    assert sum(grep_totals(norms, phrases).values()) > 100
    assert phrase_totals(cfg, analysis, phrases) == grep_totals(norms, phrases)
    with IndexStore(cfg.index_dir).open().reader() as reader:
        sides = [sidecar.open_for(leaf) for leaf, _ in reader.leaf_readers()]
    assert any(len(s.pos_term) for s in sides)
    os.remove(sidecar_files(cfg.index_dir)[0])
    assert phrase_totals(cfg, analysis, phrases) == grep_totals(norms, phrases)


@pytest.fixture(scope="module")
def small_built(config, analysis, corpus, tmp_path_factory):
    cfg = make_config(config, tmp_path_factory.mktemp("small"))
    Indexer(cfg, analysis).index_paths([corpus[0]], rebuild=True, workers=2)
    return cfg


@pytest.fixture
def small(small_built, tmp_path):
    """A copy of a two-segment index of the generated corpus, for one test to damage."""
    shutil.copytree(small_built.index_dir, tmp_path / "ix", symlinks=True)
    return small_built.with_(index_dir=tmp_path / "ix")


QUERIES = ["党建", "高质量发展", '"乡村振兴"', "title:工作", "教育 -医疗", "的"]


def test_words_found_together_match_as_grep_with_and_without_sidecars(config, analysis, tmp_path):
    """A query's words find their candidates together, and a word of one gram (发展) is
    proven by them alone: every gram must have been applied, also the common one a search
    without sidecars would skip (its list 30x longer than the candidates left)."""
    articles = ([{"id": f"a{i}", "title": "标题", "body": "乡村振兴"} for i in range(2)]
                + [{"id": "a2", "title": "标题", "body": "乡村发展"}, {"id": "a3", "title": "标题", "body": "乡村振兴与发展"}]
                + [{"id": f"b{i}", "title": "标题", "body": f"经济发展第{i}年"} for i in range(96)])
    model = {a["id"]: a for a in articles}
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), "utf-8")
    cfg = make_config(config, tmp_path)
    Indexer(cfg, analysis).index_paths([tmp_path / "a.jsonl"], rebuild=True, workers=1)
    queries = ["振兴 乡村 发展", "发展 振兴", "乡村 发展", "振兴 乡村 经济"]
    for with_sidecars in (True, False):
        if not with_sidecars:
            for f in sidecar_files(cfg.index_dir):
                os.remove(f)
        engine = Engine.from_config(cfg.with_(reload_interval=0.0), analysis)
        assert engine.view().mapped == with_sidecars
        for q in queries:
            r = engine.search(SearchRequest(q=q, per_page=100, typos=False))
            want, relaxed = oracle.search(model, q)
            assert ({h["id"] for h in r.hits}, r.relaxed) == (want, relaxed), (q, with_sidecars)


def answers(cfg, analysis) -> list:
    engine = Engine.from_config(cfg.with_(reload_interval=0.0), analysis)
    out = []
    for q in QUERIES:
        r = engine.search(SearchRequest(q=q, per_page=50))
        out.append((r.total, [(h["id"], round(h["score"], 6)) for h in r.hits]))
    return out


def test_builder_equals_writer_and_searches_agree(small, analysis):
    """Deleted sidecars are rebuilt byte for byte; without any, the view reads Whoosh's
    blocks and every query answers exactly the same."""
    files = sidecar_files(small.index_dir)
    assert len(files) == 2                      # one segment per indexing worker
    written = {f: Path(f).read_bytes() for f in files}
    with_sidecars = answers(small, analysis)
    for f in files:
        os.remove(f)
    engine = Engine.from_config(small.with_(reload_interval=0.0), analysis)
    assert all(side is None for side in engine.view().sidecars)
    assert answers(small, analysis) == with_sidecars
    assert Indexer(small, analysis).ensure_sidecars() == 2
    os.remove(files[0])                             # one segment mapped, the other read from its blocks
    sides = Engine.from_config(small.with_(reload_interval=0.0), analysis).view().sidecars
    assert sorted(side is None for side in sides) == [False, True]
    assert answers(small, analysis) == with_sidecars
    os.remove(files[1])
    assert Indexer(small, analysis).ensure_sidecars() == 2
    assert {f: Path(f).read_bytes() for f in files} == written
    assert Indexer(small, analysis).ensure_sidecars() == 0


def test_damaged_foreign_or_truncated_sidecars_are_never_used(small, analysis, caplog):
    files = sidecar_files(small.index_dir)
    good = {f: Path(f).read_bytes() for f in files}
    expected = answers(small, analysis)
    a, b = files
    # a flipped bit in the postings: only the checksums see it; ensure() rebuilds the file
    data = bytearray(good[a])
    data[len(data) // 2] ^= 0x10
    Path(a).write_bytes(bytes(data))
    assert Indexer(small, analysis).ensure_sidecars() == 1
    assert Path(a).read_bytes() == good[a]
    assert "checksum mismatch" in caplog.text
    # another segment's sidecar under this one's name, and a truncated file: readers ignore them
    Path(a).write_bytes(good[b])
    Path(b).write_bytes(good[b][:len(good[b]) // 3])
    engine = Engine.from_config(small.with_(reload_interval=0.0), analysis)
    assert engine.view().sidecars == [None, None]
    assert answers(small, analysis) == expected
    assert Indexer(small, analysis).ensure_sidecars() == 2
    assert {f: Path(f).read_bytes() for f in files} == good


def test_sidecars_go_with_their_segments(small, analysis):
    """Upserts merge small segments; Whoosh deletes merged segments' files, sidecars included."""
    for i in range(6):
        corpus_gen.write_jsonl([{"id": f"u{i}", "title": f"更新{i}", "body": "内容"}], small.index_dir.parent / "u.jsonl")
        Indexer(small, analysis).index_paths([small.index_dir.parent / "u.jsonl"])
    gen = (small.index_dir / "current").resolve()
    segments = {p.stem for p in gen.glob("*.seg")}
    assert {Path(f).stem for f in sidecar_files(small.index_dir)} == segments
    assert not list(gen.glob("*.tmp"))
    assert_sidecars_equal_whoosh(small.index_dir)


def test_serve_builds_missing_sidecars(small):
    """An index written before sidecars existed gets them when the service starts, before
    its workers open it (the command says how many it built)."""
    for f in sidecar_files(small.index_dir):
        os.remove(f)
    with serving(small.index_dir, workers=1) as (base, _proc):
        with urllib.request.urlopen(base + "/search?q=" + urllib.parse.quote("党建")) as r:
            assert json.load(r)["total"] > 0
    assert len(sidecar_files(small.index_dir)) == 2
    assert "built the posting sidecars of 2 segment(s)" in _proc.output


def test_segments_past_65536_documents_and_frequencies_past_a_byte(tmp_path):
    """Document numbers as uint32 beyond 65,536; frequencies of 255, 300, 1000 and 0.5 kept aside."""
    n = 70_000
    ids = [np.arange(0, n, 7, dtype=np.uint32), np.array([65_535, 65_536, 69_999], np.uint32)]
    weights = [np.ones(len(ids[0]), np.float32), np.array([255, 300, 0.5], np.float32)]
    weights[0][[3, 5000]] = [1000, 254]
    starts = np.array([0, len(ids[0]), len(ids[0]) + 3])
    path = str(tmp_path / "MAIN_x.ssp")
    sidecar._write(path, "MAIN_x", n, ["f"], [b"\0a", b"\0b"], starts, np.concatenate(ids),
                   np.concatenate(weights), {})
    side = sidecar.Sidecar(path, "MAIN_x", n)
    side.check()
    for term, want_ids, want_w in zip([b"a", b"b"], ids, weights):
        got_ids, got_w = side.postings(*side.lookup("f", term))
        assert got_ids.dtype == np.uint32
        assert got_ids.tolist() == want_ids.tolist() and got_w.tolist() == want_w.tolist()
        probe = np.array([0, 7, 21, 35_000, 65_535, 65_536, 69_999])
        want = [float(want_w[want_ids.tolist().index(d)]) if d in want_ids else 0.0 for d in probe.tolist()]
        assert side.freqs_of(*side.lookup("f", term), probe).tolist() == want
        assert [side.freq_of(*side.lookup("f", term), d) for d in probe.tolist()] == want
        start, end = side.lookup("f", term)             # copied into a view's arrays, base added
        into_ids, into_w = np.zeros(end - start + 2, np.int32), np.zeros(end - start + 2, np.float32)
        side.fill(start, end, 1_000_000, into_ids[1:-1], into_w[1:-1])
        assert into_ids[1:-1].tolist() == (want_ids.astype(np.int64) + 1_000_000).tolist()
        assert into_w[1:-1].tolist() == want_w.tolist() and into_ids[0] == into_ids[-1] == 0
    assert side.lookup("f", b"c") is None and side.lookup("g", b"a") is None


def test_terms_whose_hashes_collide_are_told_apart(tmp_path):
    """The dictionary finds a term by the CRC-32 of its key, then compares the bytes: two
    terms with one CRC (there are many in a segment of 10^6 terms) each find their own postings."""
    first, second = b"\x001785887", b"\x0011060400"     # found by counting up: the same CRC-32
    assert zlib.crc32(first) == zlib.crc32(second)
    keys = sorted([first, second, b"\0x"])
    starts = np.array([0, 1, 3, 4])
    path = str(tmp_path / "MAIN_y.ssp")
    sidecar._write(path, "MAIN_y", 10, ["f"], keys, starts, np.array([1, 2, 3, 4], np.uint32),
                   np.ones(4, np.float32), {})
    side = sidecar.Sidecar(path, "MAIN_y", 10)
    ids = [[1], [2, 3], [4]]
    for k, key in enumerate(keys):
        assert side.postings(*side.lookup("f", key[1:]))[0].tolist() == ids[k]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.binary(min_size=1, max_size=6), max_size=3000), st.lists(st.binary(max_size=6), max_size=50))
@example(set(), [b"a"])
@example({b"a"}, [b"b"])
@example({b"\x001785887"[1:], b"\x0011060400"[1:]}, [b"x"])     # one CRC-32 (see above)
@example({b"%d" % i for i in range(20_000)}, [b"%d" % i for i in range(20_000, 20_050)])   # 2,048 buckets
def test_the_dictionary_finds_every_term_and_only_those(tmp_path_factory, terms, probes):
    """Whatever the number of terms (none, one, thousands: the hash directory's buckets hold
    none to many), each term finds its own postings and every other key finds none."""
    keys = sorted(b"\0" + t for t in terms)
    n = len(keys)
    path = str(tmp_path_factory.mktemp("dict") / "MAIN_z.ssp")
    sidecar._write(path, "MAIN_z", max(n, 1), ["f"], keys, np.arange(n + 1), np.arange(n, dtype=np.uint32),
                   np.ones(n, np.float32), {})
    side = sidecar.Sidecar(path, "MAIN_z", max(n, 1))
    for k, key in enumerate(keys):
        assert side.postings(*side.lookup("f", key[1:]))[0].tolist() == [k]
    for p in probes:
        if p not in terms:
            assert side.lookup("f", p) is None
    assert side.lookup("g", next(iter(terms), b"a")) is None       # another field's number


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 32, 1000])
def test_the_hash_directory_puts_every_hash_in_its_bucket_even_on_a_bucket_edge(n):
    """Random CRCs almost never fall on a bucket's first value: this puts them there (and at
    0, 2^32 - 1 and repeated), so an off-by-one at an edge cannot pass unseen."""
    bits = min(24, (n // sidecar.HASHES_PER_BUCKET).bit_length())
    edges = [b << (32 - bits) for b in range(1 << bits)]
    values = [0, 2**32 - 1] + [e + d for e in edges for d in (-1, 0, 1) if 0 <= e + d < 2**32]
    hashes = np.array(sorted((values * (n // len(values) + 1))[:n]), np.uint32)
    shift, starts = sidecar._hash_buckets(hashes)
    assert shift == 32 - bits and len(starts) == (1 << bits) + 1 and starts[-1] == n
    assert list(starts) == sorted(starts)
    for i, h in enumerate(hashes.tolist()):
        b = h >> shift
        assert starts[b] <= i < starts[b + 1]      # each hash (and every copy of it) in its bucket


def test_an_index_in_memory_has_no_sidecars(tmp_path, monkeypatch, analysis):
    """RamStorage has no folder: nothing is written (not even into the working directory)."""
    from whoosh.filedb.filestore import RamStorage
    from searchsvc.parsing import Article
    from searchsvc.schema import build_schema, document
    from searchsvc.view import IndexView
    from searchsvc.whoosh_adapter import FastSegmentWriter
    monkeypatch.chdir(tmp_path)
    ix = RamStorage().create_index(build_schema())
    writer = FastSegmentWriter(ix, recorder=sidecar.Recorder)
    writer.add_document(**document(Article(id="a", title="党建", body="党建工作"), analysis))
    writer.commit()
    view = IndexView(ix, "ram")
    assert view.sidecars == [None] and view.doc_frequency("title", "党建") == 1
    assert not list(tmp_path.iterdir())


def test_serve_on_a_damaged_index_reports_it_instead_of_failing(small):
    """A lost segment file: the sidecar check warns, the service starts and /healthz says 503."""
    next((small.index_dir / "current").resolve().glob("*.seg")).unlink()
    with serving(small.index_dir, workers=1, healthy=False) as (base, proc):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(base + "/healthz", timeout=10)
        assert answer.value.code == 503 and "cannot be opened" in json.load(answer.value)["reason"]
    assert "posting sidecars not checked" in proc.output      # (and no traceback: serving checks)
