"""The contract of :mod:`searchsvc.whoosh_adapter`: what it reads from Whoosh's
internals equals what Whoosh's public reader API returns, segment by segment, and
what it writes equals what Whoosh's public writer (``SegmentWriter``, ``commit()``)
writes, on real indexes."""

import pickle
import zlib
from unittest import mock

import lz4.block
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from whoosh import columns, fields, formats
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.filedb.filestore import RamStorage
from whoosh.system import pack_uint
from whoosh.writing import SegmentWriter

import corpus_gen
from conftest import whoosh_postings
from searchsvc import sidecar, whoosh_adapter
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.parsing import Article, read_inputs
from searchsvc.postings import TermBlocks
from searchsvc.schema import HEAD_BYTES, Lz4BytesColumn, build_schema, document
from searchsvc.whoosh_adapter import FastSegmentWriter

WORD_FIELDS = ["title", "body", "title_c", "text_c"]


@pytest.fixture(scope="module")
def leaves(engine):
    return [leaf for leaf, _ in engine.view().leaves]


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_field_lengths_equal_doc_field_length(leaves, field):
    for leaf in leaves:
        count = leaf.doc_count_all()
        lengths = whoosh_adapter.field_lengths(leaf, field, count)
        public = [leaf.doc_field_length(d, field) or 0 for d in range(count)]   # None for a length byte 0
        if lengths is None:
            assert not any(public)
        else:
            assert lengths.dtype == np.float32
            assert lengths.tolist() == public


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_term_dictionary_equals_iter_field_and_doc_frequency(leaves, field):
    for leaf in leaves:
        ours = list(whoosh_adapter.term_doc_frequencies(leaf, field))
        assert ours, f"no {field} terms"
        assert ours == [(t, leaf.doc_frequency(field, t)) for t, _ in leaf.iter_field(field)]


def test_column_bytes_equal_column_reader(leaves):
    for leaf in leaves:
        count = leaf.doc_count_all()
        data = whoosh_adapter.column_bytes(leaf, "head", count, HEAD_BYTES)
        assert len(data) == count * HEAD_BYTES
        public = list(leaf.column_reader("head", translate=False))
        assert [data[d * HEAD_BYTES:(d + 1) * HEAD_BYTES] for d in range(count)] == public


@pytest.mark.parametrize("name", ["norm", "doc"])
def test_column_rows_equal_column_reader(leaves, name):
    """Each row read in one call: the value Whoosh's reader gives (unpickled for the record)."""
    for leaf in leaves:
        rows = whoosh_adapter.ColumnRows(leaf, name)
        public = leaf.column_reader(name)
        assert [rows[d] for d in range(leaf.doc_count_all())] == list(public)
        with pytest.raises(IndexError):
            rows[leaf.doc_count_all()]


@pytest.mark.parametrize("column", [
    columns.VarBytesColumn(),                          # schema 1's normal form: stored as is
    columns.CompressedBytesColumn(),                   # zlib
    Lz4BytesColumn(),                                  # the normal form since schema 2
    columns.PickleColumn(Lz4BytesColumn()),            # the record (schema 5)
    columns.PickleColumn(columns.VarBytesColumn()),
], ids=["bytes", "zlib", "lz4", "pickle-lz4", "pickle-bytes"])
@given(values=st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=40)
       .filter(lambda vs: any(v is not None for v in vs)))
@settings(max_examples=25, deadline=None)
def test_column_rows_equal_each_column_kind(column, values):
    """Every kind of column ColumnRows reads, with empty rows and documents that lack the
    field: each row equals what Whoosh's reader gives for it. (A segment where no document
    has the field has no column: ColumnRows refuses it, and its callers ask ``has_column``.)"""
    pickled = isinstance(column, columns.PickleColumn)
    ix = RamStorage().create_index(fields.Schema(n=fields.ID(stored=True), v=fields.COLUMN(column)))
    with ix.writer() as w:
        for i, v in enumerate(values):
            if v is None:
                w.add_document(n=str(i))                # no value: the column's default
            else:
                w.add_document(n=str(i), v={"v": v} if pickled else v)
    with ix.reader() as leaf:
        rows = whoosh_adapter.ColumnRows(leaf, "v")
        public = leaf.column_reader("v", translate=False)
        assert [rows[d] for d in range(len(values))] == [public[d] for d in range(len(values))]


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_posting_extent_decodes_to_whooshs_postings(leaves, field):
    leaf = leaves[0]
    terms = [t for t, _ in leaf.iter_field(field)]
    for tbytes in terms[::max(1, len(terms) // 50)]:
        ids, weights = TermBlocks(*whoosh_adapter.posting_extent(leaf, field, tbytes)).decode()
        public_ids, public_weights = whoosh_postings(leaf, field, tbytes)
        assert ids.tolist() == public_ids
        assert weights.tolist() == pytest.approx(public_weights)


def test_posting_extent_of_an_absent_term_is_none(leaves):
    assert whoosh_adapter.posting_extent(leaves[0], "body", "不存在的词语xyz".encode()) is None


# ------------------------------------------------------------------ write side
@pytest.fixture(scope="module")
def articles(tmp_path_factory):
    """The bundled examples and 150 generated articles (a few posting blocks per common term)."""
    generated = corpus_gen.write_jsonl(corpus_gen.generate(150, seed=7), tmp_path_factory.mktemp("w") / "g.jsonl")
    return [a for a in read_inputs([EXAMPLE_CORPUS, generated]) if isinstance(a, Article)]


def _schema(legacy: bool = False):
    """Today's schema, or with ``legacy`` that of an index written before schema 6, whose
    frequency fields (Whoosh's ``Frequency``) keep each frequency twice: the service still
    writes to such an index until it is rebuilt."""
    schema = build_schema()
    if legacy:
        for name in WORD_FIELDS:
            schema[name].format = formats.Frequency()
    return schema


def _new_index(path, legacy: bool = False):
    path.mkdir()
    return whoosh_index.create_in(str(path), _schema(legacy))


def _contents(reader):
    """Everything a reader shows of an index, through Whoosh's public API."""
    docs = sorted((reader.stored_fields(d)["id"], d) for d in reader.all_doc_ids())
    return {
        "terms": list(reader.all_terms()),
        "postings": {(f, t): list(reader.postings(f, t).all_items()) for f, t in reader.all_terms()},
        "term infos": {(f, t): _term_info(reader.term_info(f, t)) for f, t in reader.all_terms()},
        "lengths": [[reader.doc_field_length(d, f) for f in ("title", "body", "title_c", "text_c")] for _, d in docs],
        "stored": [reader.stored_fields(d) for _, d in docs],
        "columns": {name: [reader.column_reader(name)[d] for _, d in docs]
                    for name in ("norm", "head", "section", "date", "doc")},
    }


def _term_info(info):
    """What a term's row says besides its postings: the lengths and weights scoring reads."""
    return (info.weight(), info.doc_frequency(), info.min_length(), info.max_length(), info.max_weight(),
            info.min_id(), info.max_id())


@pytest.mark.parametrize("legacy", [False, True], ids=["schema", "legacy schema"])
@pytest.mark.parametrize("count", [1, None], ids=["one article", "all"])
def test_fast_writer_writes_what_the_stock_writer_writes(tmp_path, analysis, articles, count, legacy):
    """The whole-list flush: the same terms, postings, term infos, lengths, stored fields and columns
    as Whoosh's own writer (one article: the pool's ungrouped path, as for a PUT), in an index
    of today's schema and in one written before schema 6."""
    readers = []
    for name, cls in (("fast", FastSegmentWriter), ("stock", SegmentWriter)):
        ix = _new_index(tmp_path / name, legacy)
        writer = cls(ix)
        for a in articles[:count]:
            writer.add_document(**document(a, analysis))
        writer.commit()
        readers.append(ix.reader())
    fast, stock = map(_contents, readers)
    if count is None:
        assert max(len(p) for p in stock["postings"].values()) > 128    # more than one block
    assert fast == stock


@pytest.mark.parametrize("legacy", [False, True], ids=["schema", "legacy schema"])
def test_postings_read_back_as_whoosh_reads_them_in_either_schema(tmp_path, analysis, articles, legacy):
    """Our block decoder and a sidecar built from the blocks give each term's postings as
    Whoosh's matcher does, whether a posting keeps its frequency once (no value: schema 6)
    or also as a 4-byte value (an index of schema 5, which keeps serving until rebuilt)."""
    ix = _new_index(tmp_path / "ix", legacy)
    writer = FastSegmentWriter(ix)
    for a in articles:
        writer.add_document(**document(a, analysis))
    writer.commit()
    with ix.reader() as leaf:
        assert sidecar.build(leaf)
        side = sidecar.open_for(leaf)
        side.check()
        checked = 0
        for field in WORD_FIELDS:
            for tbytes, postfile, offset, length in whoosh_adapter.posting_extents(leaf, field):
                ids, weights = whoosh_postings(leaf, field, tbytes)
                blocks = TermBlocks(postfile, offset, length).decode()
                assert (blocks[0].tolist(), blocks[1].tolist()) == (ids, weights)
                side_ids, side_tfs = side.postings(*side.lookup(field, tbytes))
                assert (side_ids.tolist(), side_tfs.tolist()) == (ids, weights)
                checked += 1
        assert checked > 3_000
        assert_block_values(leaf, legacy)


def assert_block_values(reader, legacy: bool) -> None:
    """Every posting block of the frequency fields holds, in its pickled ``(ids, weights,
    values)``, no values (schema 6) or each frequency's 4 bytes (``legacy``). (Whoosh's
    matcher cannot tell: for a format without values it gives None whatever a block holds.)"""
    blocks = 0
    for leaf, _ in reader.leaf_readers():
        for field in WORD_FIELDS:
            for _, postfile, offset, length in whoosh_adapter.posting_extents(leaf, field):
                directory = TermBlocks(postfile, offset, length)
                _, weights = directory.decode()
                raw = postfile.get(offset, length)
                total = 0
                for start, end, compressed in zip(directory.starts, directory.ends, directory.compressed):
                    data = raw[start:end]
                    deltas, _, values = pickle.loads(zlib.decompress(data) if compressed else data)
                    expect = b"".join(pack_uint(int(w)) for w in weights[total:total + len(deltas)]) if legacy else None
                    assert values == expect
                    total += len(deltas)
                    blocks += 1
    assert blocks > 1_000


@pytest.mark.parametrize("legacy", [False, True], ids=["schema", "legacy schema"])
def test_upserts_that_merge_segments_write_what_the_stock_writer_writes(tmp_path, analysis, articles, legacy):
    """Commits of a few articles each, merged by Whoosh's MERGE_SMALL, then an upsert of an
    article in a merged segment: merged postings come back through the pool one by one,
    with the values Whoosh's reader gives (None, or 4 bytes in a legacy index)."""
    readers = {}
    for name, cls in (("fast", FastSegmentWriter), ("stock", SegmentWriter)):
        ix = _new_index(tmp_path / name, legacy)
        for i in range(0, 24, 3):
            writer = cls(ix)
            for a in articles[i:i + 3]:
                writer.update_document(**document(a, analysis))
            writer.commit(merge=True)
        writer = cls(ix)
        writer.update_document(**document(articles[1], analysis))
        writer.commit(merge=True)
        readers[name] = ix.reader()
    assert len(readers["fast"].leaf_readers()) < 9         # (merged along the way)
    assert _contents(readers["fast"]) == _contents(readers["stock"])
    for reader in readers.values():
        assert_block_values(reader, legacy)


def test_finished_segments_committed_by_another_writer(tmp_path, analysis, articles):
    """finish_segment(): a worker's segment, committed by the parent, reads as if one writer wrote it."""
    ix = _new_index(tmp_path / "parts")
    half = len(articles) // 2
    parts = []
    for share in (articles[:half], articles[half:]):
        worker = FastSegmentWriter(ix, _lk=False)
        for a in share:
            worker.add_document(**document(a, analysis))
        assert worker.postings > 0
        parts.append(worker.finish_segment())
    parent = FastSegmentWriter(ix)
    parent.commit_segments(parent.segments_to_commit(merge_small=False) + parts)
    one = _new_index(tmp_path / "one")
    writer = SegmentWriter(one)
    for a in articles:
        writer.add_document(**document(a, analysis))
    writer.commit()
    got, want = _contents(ix.reader()), _contents(one.reader())
    assert got["terms"] == want["terms"] and got["stored"] == want["stored"] and got["columns"] == want["columns"]
    assert got["lengths"] == want["lengths"]
    assert len(ix.reader().leaf_readers()) == 2


@pytest.mark.parametrize("merge_small", [True, False])
def test_two_step_commit_equals_commit(tmp_path, analysis, articles, merge_small):
    """segments_to_commit() then commit_segments() does what commit(merge=...) does:
    the same segments (merged or not), documents and generation, deletes included."""
    indexes = {}
    for how in ("public", "two_step"):
        ix = indexes[how] = _new_index(tmp_path / how)
        # Whoosh's MERGE_SMALL merges once there are five small segments; the last: only a delete
        batches = [articles[i:i + 3] for i in range(0, 18, 3)] + [[]]
        for batch in batches:
            writer = FastSegmentWriter(ix)
            for a in batch:
                writer.add_document(**document(a, analysis))
            if not batch:
                assert writer.delete_by_term("id", articles[0].id) == 1
            if how == "public":
                writer.commit(merge=merge_small)
            else:
                assert not writer.committed()
                writer.commit_segments(writer.segments_to_commit(merge_small=merge_small))
                assert writer.committed()
    public, two_step = indexes["public"], indexes["two_step"]
    assert two_step.latest_generation() == public.latest_generation() == len(batches)
    segments = [[r.doc_count_all() for r, _ in ix.reader().leaf_readers()] for ix in (two_step, public)]
    assert segments[0] == segments[1] == ([18] if merge_small else [3] * 6)
    assert _contents(two_step.reader()) == _contents(public.reader())
    assert two_step.doc_count() == 17


def test_a_cancelled_writer_has_not_committed(tmp_path, analysis, articles):
    ix = _new_index(tmp_path / "ix")
    writer = FastSegmentWriter(ix)
    writer.add_document(**document(articles[0], analysis))
    writer.cancel()
    assert not writer.committed() and ix.doc_count() == 0 and ix.latest_generation() == 0


def test_latest_generation_equals_the_index_s(tmp_path, analysis, articles):
    assert whoosh_adapter.latest_generation(tmp_path) == -1     # no index: no TOC
    ix = _new_index(tmp_path / "ix")
    for a in articles[:3]:
        assert whoosh_adapter.latest_generation(tmp_path / "ix") == ix.latest_generation()
        writer = FastSegmentWriter(ix)
        writer.add_document(**document(a, analysis))
        writer.commit()
    assert whoosh_adapter.latest_generation(tmp_path / "ix") == ix.latest_generation() == 3


def test_the_norm_column_is_lz4_and_the_toc_names_its_class(tmp_path, analysis, articles):
    """What Lz4BytesColumn writes reads back through Whoosh's public column reader; each
    row is an LZ4 block; the TOC pickles the class by its path, and schema.Counts's, which
    must not change (indexes written before would no longer open)."""
    ix = _new_index(tmp_path / "ix")
    writer = FastSegmentWriter(ix)
    docs = [document(a, analysis) for a in articles[:20]]
    for doc in docs:
        writer.add_document(**doc)
    writer.commit()
    assert list(ix.reader().column_reader("norm")) == [d["norm"] for d in docs]
    raw = whoosh_adapter.compressed_bytes_reader   # with identity instead of LZ4: the stored bytes
    leaf = ix.reader()
    col = leaf.column_reader("norm", translate=False)
    stored = raw(col._dbfile, col._basepos, col._length, col._doccount, lambda b: b)
    assert [lz4.block.decompress(stored[d]) for d in range(len(docs))] == [d["norm"] for d in docs]
    toc = (tmp_path / "ix" / "_MAIN_1.toc").read_bytes()
    assert b"searchsvc.schema" in toc and b"Lz4BytesColumn" in toc and b"Counts" in toc


def test_no_other_module_touches_the_private_names_it_lists():
    """The adapter's docstring lists every Whoosh private name it relies on; no other
    module of searchsvc uses one of them (on any object, ``self`` of a subclass included)."""
    import re
    from pathlib import Path

    names = set(re.findall(r"\b(_[A-Za-z]\w*)", whoosh_adapter.__doc__))
    assert {"_perdoc", "_commit_toc", "_tindex", "_latest_generation", "_compress", "_decompress"} <= names
    package = Path(whoosh_adapter.__file__).parent.parent
    for module in package.glob("*.py"):
        text = module.read_text("utf-8")
        used = {n for n in names if re.search(rf"\.{n}\b|import .*\b{n}\b", text)}
        assert not used, f"{module.name} uses Whoosh's {sorted(used)} outside whoosh_adapter"


# The posting-list encoder, byte for byte.
_terms = st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=12, unique=True).map(sorted)
_postings = st.lists(st.tuples(st.integers(0, 5000), st.sampled_from([1.0, 2.0, 3.0, 7.0, 250.0])),
                     min_size=1, max_size=300, unique_by=lambda p: p[0]).map(sorted)


@settings(max_examples=100, deadline=None)
@given(fields=st.lists(st.tuples(st.sampled_from(["body", "id", "text_c"]), _terms), min_size=1, max_size=3,
                       unique_by=lambda f: f[0]).map(sorted),
       lists=st.lists(_postings, min_size=12, max_size=12),
       level=st.sampled_from([1, 3]), every_block=st.booleans(), form=st.sampled_from(["tuples", "counted", "arrays"]),
       huge=st.sampled_from([False, False, False, True]), block=st.sampled_from([128, 5]), legacy=st.booleans())
@example(fields=[("text_c", [b"a", b"b", b"c"])], lists=[[(7, 1.0)], [(3, 2.0), (9, 2.0)], [(7, 1.0)]] * 4,
         level=1, every_block=True, form="arrays", huge=False, block=128, legacy=False)   # a single posting's encoding reused
@example(fields=[("body", [b"x", b"y"])], lists=[[(d, float(1 + d % 3)) for d in range(0, 2570, 10)], [(4, 1.0)]] * 6,
         level=1, every_block=True, form="arrays", huge=False, block=128, legacy=True)    # 257 postings: three blocks, the last of one
def test_posting_list_writer_writes_whooshs_bytes(fields, lists, level, every_block, form, huge, block, legacy):
    """PostingListWriter's .trm and .pst files equal W3FieldWriter's fed one posting at a
    time, with the same compression for every block (Whoosh's writer has one level), from
    Whoosh's posting tuples or, in frequency fields, from ``Counted`` lists or a field's
    ``PostingArrays``; with ``huge``, the first posting's frequency is past float32's
    integers (Whoosh rounds the weight; a field's arrays then take the per-term path). Blocks
    of 5 postings (``block``) put several blocks in most lists. Frequency fields keep no
    value (``schema.Counts``) or, in a ``legacy`` index, also the frequency's 4 bytes."""
    if huge:
        lists = [[(lists[0][0][0], 2.0 ** 24 + 1), *lists[0][1:]], *lists[1:]]
    schema = _schema(legacy)
    storage = RamStorage()
    lengths = {d: (d * 7919) % 120_000 for d in range(5001)}    # zero for some, past 255's range for some
    files = []
    for ours in (True, False):
        codec = W3Codec(blocklimit=block, compression=level if every_block else 0)
        segment = codec.new_segment(storage, "ours" if ours else "whoosh")
        fw = codec.field_writer(storage, segment)
        out = whoosh_adapter.PostingListWriter(fw, level, block, 1 if every_block else 10_000)
        for fieldname, terms in fields:
            fieldobj = schema[fieldname]
            counted = getattr(fieldobj, "precounted", False)
            # (a frequency field's tuples carry the frequency's 4 bytes, whether its format keeps them or not)
            rows = [(t, [(d, w, pack_uint(int(w)) if counted else b"") for d, w in postings])
                    for t, postings in zip(terms, lists)]
            if ours:
                out.start_field(fieldname, fieldobj)
                if form == "arrays" and counted:
                    out.add_many(_posting_arrays(rows), lengths.get)
                    continue
                for t, postings in rows:
                    if form == "counted" and counted:
                        postings = whoosh_adapter.Counted([d for d, _, _ in postings], [int(w) for _, w, _ in postings])
                    out.add(t, postings, lengths.get)
                continue
            fw.start_field(fieldname, fieldobj)
            for t, postings in rows:
                fw.start_term(t)
                for d, w, v in postings:
                    fw.add(d, w, v, lengths[d])
                fw.finish_term()
            fw.finish_field()
        out.close() if ours else fw.close()
        files.append([storage.open_file(segment.make_filename(ext)).read() for ext in (".trm", ".pst")])
    assert files[0] == files[1]


def _posting_arrays(rows):
    """A field's ``(term, [(docnum, weight, value)])`` rows as a ``PostingArrays``."""
    postings = [p for _, plist in rows for p in plist]
    bounds = np.cumsum([0] + [len(plist) for _, plist in rows])
    return whoosh_adapter.PostingArrays([t for t, _ in rows], bounds, np.array([d for d, _, _ in postings], np.uint32),
                                        np.array([int(w) for _, w, _ in postings], np.uint32))


# The posting pool against a dict of lists, its model.
_POOL_TERMS = [b"a", b"b", b"c\xe5"]         # in byte order: a term's key is its place here
_docs = st.lists(st.lists(st.tuples(st.sampled_from(["body", "id", "text_c"]), st.sampled_from(_POOL_TERMS),
                                    st.integers(1, 300)), max_size=8), min_size=1, max_size=6)


def _pool_terms(keys):
    return [_POOL_TERMS[k] for k in keys.tolist()]


@settings(max_examples=150, deadline=None)
@given(docs=_docs, merged=st.lists(st.tuples(st.sampled_from(["body", "id", "text_c"]), st.sampled_from([b"a", b"b", b"d"]),
                                             st.integers(1, 9)), max_size=6),
       keyed=st.lists(st.booleans(), min_size=6, max_size=6), batch=st.sampled_from([1, 2, 3, 1 << 16]))
def test_grouping_pool_hands_out_each_term_s_postings_sorted(docs, merged, keyed, batch):
    """Documents' terms, pre-counted (``add_counted``: body, and text_c as a list or, for
    the documents ``keyed`` picks, as a ``KeyedCounts``, with an empty one in title_c) or
    one by one (``add``: id), then an upsert's merged postings (``add``, later docnums):
    ``fields()`` hands out what a dict of lists holds, fields and terms in order, postings
    in docnum order (keyed postings turned into lists ``batch`` at a time, or a whole
    term's when longer)."""
    with mock.patch.object(whoosh_adapter.write, "_LIST_BATCH", batch):
        _check_grouping_pool(docs, merged, keyed)


def _check_grouping_pool(docs, merged, keyed):
    pool, model = whoosh_adapter.GroupingPool(), {}
    for docnum, terms in enumerate(docs):
        by_field = {}
        for field, term, freq in terms:
            by_field.setdefault(field, {})[term] = freq      # a document's terms are distinct
        for field, counts in sorted(by_field.items()):
            items = [(t, n, float(n), pack_uint(n)) for t, n in counts.items()]
            if field == "id":
                for t, n, w, v in items:
                    pool.add((field, t, docnum, w, v))
            elif field == "text_c" and keyed[docnum]:
                keys = np.array(sorted(_POOL_TERMS.index(t) for t in counts), np.uint64)
                freqs = np.array([counts[_POOL_TERMS[k]] for k in keys.tolist()], np.uint32)
                pool.add_counted(field, docnum, whoosh_adapter.KeyedCounts(keys, freqs, _pool_terms))
            else:
                pool.add_counted(field, docnum, items)
            for t, n, w, v in items:
                model.setdefault((field, t), []).append((docnum, w, v))
        if keyed[docnum]:
            pool.add_counted("title_c", docnum, whoosh_adapter.KeyedCounts(np.zeros(0, np.uint64),
                                                                           np.zeros(0, np.uint32), _pool_terms))
    for offset, (field, term, freq) in enumerate(merged):
        docnum = len(docs) + offset
        pool.add((field, term, docnum, float(freq), pack_uint(freq)))
        model.setdefault((field, term), []).append((docnum, float(freq), pack_uint(freq)))
    assert pool.count == sum(map(len, model.values()))
    got = []
    for field, terms in pool.fields():
        for term, postings in terms:
            if isinstance(postings, whoosh_adapter.Counted):
                postings = postings.tuples()
            got.append(((field, term), list(postings)))
    assert got == sorted((key, sorted(postings)) for key, postings in model.items())
