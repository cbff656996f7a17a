"""Reading Whoosh's posting lists and columns ourselves gives what Whoosh gives."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from whoosh import index as whoosh_index

from searchsvc import scoring, view as view_module
from searchsvc.cache import SizedLRU
from searchsvc.parsing import article_from_dict
from searchsvc.postings import term_blocks
from searchsvc.schema import build_schema, document
from searchsvc.whoosh_adapter import term_doc_frequencies

from conftest import whoosh_postings
from writeutil import schema_4


@pytest.fixture(scope="module")
def view(engine):
    return engine.view()


def _terms(leaf, field):
    """(doc frequency, term bytes) of every term of a field in one segment, commonest first."""
    return sorted(((df, t) for t, df in term_doc_frequencies(leaf, field)), reverse=True)


def _whoosh_postings(leaf, field, tbytes):
    ids, weights = whoosh_postings(leaf, field, tbytes)
    return np.array(ids), np.array(weights, dtype=np.float32)


@functools.lru_cache(maxsize=None)
def _sample_terms(leaf, field):
    terms = _terms(leaf, field)
    return [t.decode() for _, t in terms[:30] + terms[30::max(1, len(terms) // 100)]]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_few_articles_frequencies_are_whooshs_and_score_as_the_array_path_does(view, data):
    """The scalar path's inputs from the real sidecars (Python ints, or floats for the
    frequencies kept aside) are Whoosh's own postings, and its scores of the index's words
    and grams equal the array path's bit for bit (see test_scoring_facets for the arithmetic)."""
    assert view.mapped
    field = data.draw(st.sampled_from(["body", "title", "text_c", "title_c"]))
    term = data.draw(st.sampled_from(_sample_terms(view.leaves[0][0], field)))
    expected = {}
    for leaf, base in view.leaves:
        if leaf.doc_frequency(field, term.encode()):
            ids, weights = whoosh_postings(leaf, field, term.encode())
            expected.update({base + int(d): w for d, w in zip(ids, weights)})
    live = np.flatnonzero(view.live).tolist()       # (Whoosh's matcher skips deleted articles)
    docs = sorted(set(data.draw(st.lists(st.sampled_from(sorted(expected)), max_size=6)))
                  | data.draw(st.sets(st.sampled_from(live), max_size=3))) or live[:1]
    assert view.few_term_freqs(field, term, docs) == [expected.get(d, 0) for d in docs]
    docs = np.array(docs[:scoring.SCALAR_DOCS])
    for where, phrase in ((None, False), ("title", False), (None, True)):
        scalar = scoring.unit_scores(view, term, where, phrase, view.doc_count, docs)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(scoring, "SCALAR_DOCS", 0)
            assert np.array_equal(scoring.unit_scores(view, term, where, phrase, view.doc_count, docs), scalar)


@pytest.mark.parametrize("field", ["text_c", "title_c", "body", "title"])
def test_decoded_postings_equal_whooshs_matcher(view, field):
    leaf, _ = view.leaves[0]
    terms = _terms(leaf, field)
    sample = terms[:20] + terms[20::max(1, len(terms) // 200)]     # the longest lists and a spread
    assert sample[0][0] > 128                                      # more than one block
    for df, tbytes in sample:
        ids, weights = term_blocks(leaf, field, tbytes).decode()
        want_ids, want_weights = _whoosh_postings(leaf, field, tbytes)
        assert len(ids) == df
        assert np.array_equal(ids, want_ids) and np.array_equal(weights, want_weights), tbytes


def test_weights_of_a_few_documents_decode_only_their_blocks(view):
    leaf, _ = view.leaves[0]
    rng = np.random.default_rng(7)
    for df, tbytes in _terms(leaf, "text_c")[:10]:
        want_ids, want_weights = _whoosh_postings(leaf, "text_c", tbytes)
        docs = np.unique(rng.integers(0, leaf.doc_count_all(), 40))
        blocks = term_blocks(leaf, "text_c", tbytes)
        blocks.decode()                       # a cached directory reads its blocks again
        got = blocks.weights_of(docs)
        expected = np.array([want_weights[want_ids == d][0] if d in want_ids else 0 for d in docs])
        assert np.array_equal(got, expected)
        assert len(blocks.maxids) > 1 and np.all(np.diff(blocks.maxids) > 0)


def test_an_unknown_term_has_no_postings(view):
    leaf, _ = view.leaves[0]
    assert term_blocks(leaf, "text_c", "𠀀𠀀".encode()) is None
    assert len(view.postings("text_c", "𠀀𠀀")[0]) == 0


def test_term_freqs_and_masks_agree_with_postings(view):
    ids, tfs = view.postings("body", "发展")
    docs = np.arange(0, view.n, 3)
    got = view.term_freqs("body", "发展", docs)
    assert np.array_equal(got > 0, np.isin(docs, ids))
    assert np.array_equal(view.mask("text_c", "发展"), view.mask("text_c", "发展"))   # cached bits
    assert np.flatnonzero(view.mask("body", "发展")).tolist() == sorted(ids.tolist())


def test_dictionary_entries_are_the_segments_as_the_kept_terms_fill_and_empty(view, monkeypatch):
    """A term's dictionary entry (its document frequency, and where its postings lie in
    each segment) is the same computed from the segments or found among the kept entries
    (here at most 3, emptied when full); the frequency is Whoosh's."""
    monkeypatch.setattr(view._dictionary, "max_items", 3)
    leaf, _ = view.leaves[0]
    asked = []
    for field in ("body", "title", "text_c"):
        every = _terms(leaf, field)
        asked += [(field, t.decode()) for _, t in every[::max(1, len(every) // 15)][:15]]
    asked.append(("body", "𠀀𠀀"))                      # in no segment
    assert len(asked) >= 40
    view._dictionary.clear()
    computed = {}
    for field, term in asked:
        entry = computed[field, term] = view._lookup(field, term)       # from the segments
        assert (field, term) in view._dictionary and len(view._dictionary) <= 3
        assert view._lookup(field, term) is entry                         # kept
        assert entry[0] == sum(seg.doc_frequency(field, term.encode()) for seg, _ in view.leaves)
    view._dictionary.clear()
    for (field, term), entry in computed.items():
        assert view._lookup(field, term) == entry                         # computed again, the same


@pytest.mark.parametrize("needle", ["视网消息", "新华社", "习近平", "年", "（新闻联播）"])
def test_searching_heads_in_bulk_equals_one_by_one(view, needle):
    text = needle.encode()
    docs = np.resize(np.flatnonzero(view.live), 2500)    # every article, some twice: the bulk (numpy) path
    bulk = view.heads_contain(docs, text)
    titles = view.heads_contain(docs, text, title_only=True)
    one_by_one = [text in view.head(d) for d in docs.tolist()]
    in_title = [text in view.head(d).split(b"\n", 1)[0] for d in docs.tolist()]
    assert bulk.tolist() == one_by_one and titles.tolist() == in_title
    small = docs[:50]
    assert view.heads_contain(small, text).tolist() == one_by_one[:50]


def test_sized_lru_keeps_both_bounds():
    cache = SizedLRU(1000, len, max_items=4)
    for i in range(10):
        cache.put(i, b"x" * 10)
    assert len(cache) == 4 and cache.get(9) and cache.get(0) is None
    cache.put("big", b"x" * 5000)             # larger than the cache: not kept, nothing lost
    assert cache.get("big") is None and len(cache) == 4
    cache.put("half", b"x" * 600)             # 600 bytes evict the least recent entries
    assert cache.get("half") and cache.nbytes <= 1000
    off = SizedLRU(1000, len, max_items=0)
    off.put(1, b"x")
    assert off.get(1) is None


def _whoosh_view_postings(view, field, tbytes):
    """A term's (global docnums, weights) over every segment, from Whoosh's own matchers."""
    ids, weights = [], []
    for leaf, base in view.leaves:
        i, w = _whoosh_postings(leaf, field, tbytes)
        ids.append(i + base if len(i) else np.zeros(0, np.int64))
        weights.append(w)
    return np.concatenate(ids), np.concatenate(weights)


@pytest.mark.parametrize("field", ["text_c", "body"])
def test_a_terms_ids_asked_first_leave_its_frequencies_whole(view, field):
    """Narrowing candidates asks only for a term's ids (``doc_ids``); what is kept for
    that must not stand in for its postings, frequencies or mask afterwards. Every
    segment against Whoosh's own matchers (the fixture has no deletions)."""
    assert view.mapped and len(view.leaves) > 1
    assert view.doc_count == view.n          # no deletions: Whoosh's matchers skip deleted documents
    leaf, _ = view.leaves[0]
    docs = np.arange(0, view.n, 2)
    for _, tbytes in _terms(leaf, field)[:3] + _terms(leaf, field)[200:203]:
        term = tbytes.decode()
        want_ids, want_weights = _whoosh_view_postings(view, field, tbytes)
        view._cache.clear()
        view._masks.clear()
        ids = view.doc_ids(field, term)
        assert np.array_equal(ids, want_ids)
        assert np.array_equal(view.doc_ids(field, term), ids)              # kept: the same again
        got_ids, got_tfs = view.postings(field, term)                     # not the ids-only entry
        assert np.array_equal(got_ids, want_ids) and np.array_equal(got_tfs, want_weights)
        expected = np.array([want_weights[want_ids == d][0] if d in want_ids else 0 for d in docs], np.float32)
        view._cache.clear()
        view.doc_ids(field, term)
        assert np.array_equal(view.term_freqs(field, term, docs), expected)
        view._cache.clear()
        view.doc_ids(field, term)
        assert np.flatnonzero(view.mask(field, term)).tolist() == want_ids.tolist()


def test_long_lists_are_searched_in_each_segments_sidecar(view, monkeypatch):
    """Posting lists too long to decode are searched segment by segment (here every list
    counts as long): the frequencies Whoosh's matchers give, for documents of every segment."""
    monkeypatch.setattr(view_module, "SPARSE_MIN_DF", 0)
    leaf, _ = view.leaves[0]
    rng = np.random.default_rng(3)
    docs = np.unique(rng.integers(0, view.n, 300))
    for field in ("text_c", "body", "title"):
        for _, tbytes in _terms(leaf, field)[:5] + _terms(leaf, field)[100:103]:
            view._cache.clear()
            want_ids, want_weights = _whoosh_view_postings(view, field, tbytes)
            expected = np.array([want_weights[want_ids == d][0] if d in want_ids else 0 for d in docs], np.float32)
            assert np.array_equal(view.term_freqs(field, tbytes.decode(), docs), expected), tbytes


@pytest.mark.parametrize("dense_ratio, sparse_min_df, bisect_docs", [
    (0, 0, -1), (0, 10**9, -1), (10**9, 0, -1), (10**9, 10**9, -1),   # numpy: searched or spread, long or kept lists
    (None, None, 10**9),                                              # Python's bisect for every document
    (None, None, None),                                               # as configured (BISECT_DOCS)
], ids=["binary-searched-long-lists", "binary-searched-decoded-lists", "spread-long-lists",
        "spread-decoded-lists", "bisect-each", "defaults"])
def test_frequencies_of_few_or_many_documents_equal_whooshs(view, monkeypatch, dense_ratio, sparse_min_df,
                                                            bisect_docs):
    """A term's frequencies at some documents are read either by a binary search per
    document (numpy's, or, for a few documents, Python's over the mapped arrays) or by
    spreading the whole list over an array per article (many documents); each, for kept
    and for long lists, gives what Whoosh's matchers give."""
    spread = np.linspace(0, view.n - 1, view_module.BISECT_DOCS).astype(np.int64)    # across every segment
    for name, value in (("DENSE_RATIO", dense_ratio), ("SPARSE_MIN_DF", sparse_min_df), ("BISECT_DOCS", bisect_docs)):
        if value is not None:
            monkeypatch.setattr(view_module, name, value)
    leaf, _ = view.leaves[0]
    rng = np.random.default_rng(5)
    for docs in (np.unique(rng.integers(0, view.n, 40)), np.arange(view.n), np.zeros(0, np.int64),
                 np.unique(spread), np.unique(spread)[:-1], np.unique(np.append(spread, view.n // 2))):
        for field in ("text_c", "body"):
            for _, tbytes in _terms(leaf, field)[:3] + _terms(leaf, field)[300:302]:
                view._cache.clear()
                want_ids, want_weights = _whoosh_view_postings(view, field, tbytes)
                expected = np.zeros(len(docs), np.float32)
                pos = np.searchsorted(docs, want_ids)
                inside = (pos < len(docs)) & (docs[np.minimum(pos, len(docs) - 1)] == want_ids) if len(docs) else []
                expected[pos[inside]] = want_weights[inside]
                got = view.term_freqs(field, tbytes.decode(), docs)
                assert got.dtype == np.float32 and np.array_equal(got, expected), tbytes


def test_indexes_before_schema_5_keep_serving_their_stored_articles(tmp_path, analysis):
    """An index written before schema 5 keeps each article record in Whoosh's stored fields
    (its TOC's schema says so, and writes into it follow that schema): it is read from
    there, the same record a schema-5 index gives from its column."""
    articles = [article_from_dict({"id": f"a{i}", "title": f"标题{i}", "body": "正文。" * i, "section": "甲",
                                   "date": "2024-05-01"}) for i in range(5)]
    records = {}
    for layout, schema in (("stored", schema_4()), ("column", build_schema())):
        (tmp_path / layout).mkdir()
        ix = whoosh_index.create_in(str(tmp_path / layout), schema)
        with ix.writer() as w:      # Whoosh's own writer
            for a in articles:
                w.add_document(**document(a, analysis))
        view = view_module.IndexView(ix, layout)
        records[layout] = [view.stored(d) for d in range(view.n)]
        view.close()
    assert records["stored"] == records["column"] == [document(a, analysis)["doc"] for a in articles]
