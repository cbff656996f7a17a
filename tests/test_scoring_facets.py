"""Direct tests of the pure pieces of the pipeline: ``scoring.bm25`` and the facets
over a hand-made view (no index needed)."""

import datetime as dt
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from searchsvc import facets, scoring
from searchsvc.schema import UNDATED, date_to_minutes
from searchsvc.scoring import B, K1, LengthNorms, bm25, field_bm25, floored_lengths, idf, length_norm, saturation


@pytest.mark.parametrize("tf, length, avg, n, df", [
    (1, 100, 100, 1000, 10), (3, 50, 200, 10, 10), (0, 10, 10, 5, 1), (7, 1, 0, 3, 2),   # avg 0: taken as 1
])
def test_bm25_is_the_textbook_formula(tf, length, avg, n, df):
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / (avg or 1)))
    assert bm25(tf, length, avg, n, df) == pytest.approx(expected)


def test_bm25_of_arrays_is_bm25_of_each_element():
    tf, length = np.array([1, 2, 5], np.float32), np.array([10, 100, 1000], np.float32)
    got = bm25(tf, length, 100.0, 1000, 50)
    assert got.tolist() == pytest.approx([bm25(float(t), float(n), 100.0, 1000, 50) for t, n in zip(tf, length)])


def test_a_querys_words_share_each_fields_length_norms(monkeypatch):
    """Scoring computes each field's length norms once per query and each term's
    saturation from them: bit for bit the BM25 of each term on its own."""
    computed = []
    monkeypatch.setattr(scoring, "floored_lengths",
                        lambda view, f, docs: computed.append(f) or floored_lengths(view, f, docs))
    rng = np.random.default_rng(1)
    lengths = {"body": rng.integers(1, 3000, 50).astype(np.float32), "title": rng.integers(1, 30, 50).astype(np.float32)}
    tfs = {("body", "a"): rng.integers(0, 9, 50).astype(np.float32), ("title", "a"): np.zeros(50, np.float32),
           ("body", "b"): rng.integers(0, 2, 50).astype(np.float32)}
    view = SimpleNamespace(lengths=lengths, avg={f: float(a.mean()) for f, a in lengths.items()},
                           term_freqs=lambda f, t, docs: tfs[(f, t)][docs])
    docs = np.array([0, 3, 4, 17, 49])
    norms = LengthNorms(view, docs)
    for (f, t), df in zip(tfs, (20, 1, 45)):
        alone = bm25(tfs[(f, t)][docs], floored_lengths(view, f, docs), view.avg[f], 50, df)
        assert np.array_equal(field_bm25(view, f, t, docs, 50, df, norms), alone)
        assert np.array_equal(saturation(tfs[(f, t)][docs], length_norm(floored_lengths(view, f, docs), view.avg[f]),
                                         idf(50, df)), alone)
    assert sorted(computed) == ["body", "title"]       # each computed once, on first use


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), dfs=st.lists(st.integers(0, 30), min_size=2, max_size=6),
       phrase=st.booleans(), field=st.sampled_from([None, "title"]))
def test_a_few_documents_score_in_python_floats_bit_for_bit_as_in_numpy(data, n, dfs, phrase, field):
    """A few scored articles take the scalar path (no numpy per term); its scores equal the
    array path's exactly, float32 roundings included, for words and for char-gram stand-ins."""
    lengths = {f: np.array(data.draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n)), np.float32)
               for f in ("title", "body", "title_c", "text_c")}
    text = data.draw(st.sampled_from(["乡村", "乡村旅游", "数字乡村建设"]))
    terms = [(f, t) for f in lengths for t in [text] + [text[i:i + 2] for i in range(len(text) - 1)]]
    tfs = {key: np.array(data.draw(st.lists(st.integers(0, 300) | st.floats(0.5, 70000.0, width=32),
                                            min_size=n, max_size=n)), np.float32) for key in terms}
    df = {key: dfs[i % len(dfs)] for i, key in enumerate(terms)}
    view = SimpleNamespace(lengths=lengths, avg={f: float(a.mean()) for f, a in lengths.items()}, mapped=True,
                           doc_frequency=lambda f, t: df[(f, t)], term_freqs=lambda f, t, docs: tfs[(f, t)][docs],
                           few_term_freqs=lambda f, t, docs: tfs[(f, t)][docs].tolist())
    docs = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=min(n, scoring.SCALAR_DOCS)))))
    scalar = scoring.unit_scores(view, text, field, phrase, 30, docs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scoring, "SCALAR_DOCS", 0)
        assert np.array_equal(scoring.unit_scores(view, text, field, phrase, 30, docs), scalar)


def test_bm25_rises_with_tf_and_falls_with_length_and_df():
    assert bm25(2, 100, 100, 1000, 10) > bm25(1, 100, 100, 1000, 10)
    assert bm25(1, 50, 100, 1000, 10) > bm25(1, 200, 100, 1000, 10)
    assert bm25(1, 100, 100, 1000, 10) > bm25(1, 100, 100, 1000, 500)


def _minutes(day: str) -> int:
    return date_to_minutes(dt.datetime.fromisoformat(day))


@pytest.fixture()
def view():
    """Six articles: sections by ordinal, one deleted (docnum 5), one undated (docnum 4)."""
    sections = ["", "国内", "国内 > 社会", "国内 > 经济", "国际"]
    ords = np.array([1, 2, 2, 3, 0, 4], np.int32)
    dates = np.array([_minutes(d) for d in ("2021-03-01", "2022-01-31", "2022-02-01", "2022-12-31")]
                     + [UNDATED, _minutes("2020-05-05")], np.int64)
    year = np.array([2021, 2022, 2022, 2022, -1, 2020], np.int32)
    live = np.array([True] * 5 + [False])
    return SimpleNamespace(sections=sections, section_ord=ords, date=dates, year=year, live=live)


@pytest.mark.parametrize("wanted, expected", [
    ((), None),
    (("国内",), [0, 1, 2, 3]),                     # a path covers the sections below it
    (("国内 > 社会",), [1, 2]),
    (("国内 > 社",), []),                          # ... but not a path that merely starts alike
    (("国际", "国内 > 经济"), [3, 5]),
])
def test_section_mask(view, wanted, expected):
    mask = facets.section_mask(view, wanted)
    assert (mask is None and expected is None) or np.flatnonzero(mask).tolist() == expected


@pytest.mark.parametrize("start, end, expected", [
    (None, None, None),
    (dt.date(2022, 1, 31), dt.date(2022, 2, 1), [1, 2]),      # both days whole
    (dt.date(2022, 2, 2), None, [3]),
    (None, dt.date(2021, 12, 31), [0, 5]),                   # undated never matches a date filter
])
def test_date_mask(view, start, end, expected):
    mask = facets.date_mask(view, start, end)
    assert (mask is None and expected is None) or np.flatnonzero(mask).tolist() == expected


def test_section_facet_counts_each_leading_part_of_live_articles(view):
    got = facets.section_facet(view, np.flatnonzero(view.live))
    assert got == [{"value": "国内", "count": 4}, {"value": "国内 > 社会", "count": 2},
                   {"value": "国内 > 经济", "count": 1}]         # 国际's one article is deleted


def test_year_facet_newest_first_without_undated(view):
    assert facets.year_facet(view, np.flatnonzero(view.live)) == [{"value": "2022", "count": 3}, {"value": "2021", "count": 1}]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(1, 2 * facets.PYTHON_COUNT_DOCS))
def test_facets_of_few_and_of_many_matches_count_alike(data, n):
    """Facets count a few matches in Python and many with numpy: both as a dict model says
    (every leading part of a section; years newest first, undated left out)."""
    sections = ["", "国内", "国内 > 社会", "国内 > 社会 > 民生", "国际"]
    ords = np.array(data.draw(st.lists(st.integers(0, len(sections) - 1), min_size=n, max_size=n)), np.int32)
    year = np.array(data.draw(st.lists(st.sampled_from([-1, 1999, 2021, 2022, 9999]), min_size=n, max_size=n)),
                    np.int32)
    view = SimpleNamespace(sections=sections, section_ord=ords, year=year, live=np.ones(n, bool))
    every = data.draw(st.booleans())    # (past PYTHON_COUNT_DOCS when n is: the numpy path)
    docs = np.arange(n) if every else np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1))))
    parts: dict[str, int] = {}
    for d in docs.tolist():
        path = sections[ords[d]].split(" > ") if sections[ords[d]] else []
        for i in range(1, len(path) + 1):
            parts[" > ".join(path[:i])] = parts.get(" > ".join(path[:i]), 0) + 1
    assert facets.section_facet(view, docs) == [{"value": v, "count": c}
                                                for v, c in sorted(parts.items(), key=lambda kv: (-kv[1], kv[0]))]
    years: dict[int, int] = {}
    for y in year[docs].tolist():
        if y >= 0:
            years[y] = years.get(y, 0) + 1
    assert facets.year_facet(view, docs) == [{"value": str(y), "count": years[y]} for y in sorted(years, reverse=True)]


def test_section_tree(view):
    view.live[5] = True
    tree = facets.section_tree(view)
    assert [(n["name"], n["count"]) for n in tree] == [("国内", 4), ("国际", 1)]
    assert [(c["path"], c["count"]) for c in tree[0]["children"]] == [("国内 > 社会", 2), ("国内 > 经济", 1)]
    assert tree[1]["children"] == []
