"""Very long articles: their pair tables (``searchsvc.longtext``) against ``str.find``,
and searches over a real index holding one, against the grep oracle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from searchsvc.indexing import Indexer
from searchsvc.longtext import PairPositions
from searchsvc.parsing import Article
from searchsvc.searching import Engine, SearchRequest
from searchsvc.store import IndexStore
from searchsvc.view import LONG_TEXT_BYTES

ALPHABET = list("党建工作的是在了国學ab \n\u3000\t😀𠀀\u0301")
# Two or three letters: needles then share many pairs with the text without occurring in it.
texts = st.one_of(st.text(st.sampled_from(ALPHABET), max_size=300), st.text(st.sampled_from("ab\n"), max_size=300),
                  st.text(st.sampled_from("的😀"), max_size=300))


@settings(max_examples=300, deadline=None)
@given(title=st.text(st.sampled_from([c for c in ALPHABET if c != "\n"]), max_size=8), body=texts,
       needle=texts.map(lambda t: t[:8]), cut=st.integers(0, 300), start=st.integers(0, 320))
def test_pair_table_finds_what_str_find_finds(title, body, needle, cut, start):
    text = title + "\n" + body
    if cut < len(text) and not needle:      # needles from the text itself, most of the time
        needle = text[cut:cut + 4]
    table = PairPositions(text.encode("utf-8"))
    want = text.find(needle, start) if start <= len(text) else -1
    got = table.first(needle, start)
    assert (-1 if got is None else got) == want
    assert table.contains(needle, start) == (want >= 0)
    assert table.body_start == len(title) + 1
    assert sorted(table.starts_of(needle).tolist()) == [i for i in range(len(text) + 1)
                                                        if text.startswith(needle, i)]


@settings(max_examples=300, deadline=None)
@given(body=texts, needle=st.one_of(texts.map(lambda t: t[:6]), st.sampled_from(["aa", "aba", "的的", "😀😀😀"])),
       start=st.integers(0, 40))
def test_pair_table_counts_what_str_count_counts(body, needle, start):
    """Non-overlapping, as bytes.count (the short texts' path of IndexView.count_in_body)."""
    text = "标题\n" + body
    if len(needle) < 2:
        return
    assert PairPositions(text.encode("utf-8")).count(needle, start) == text.count(needle, start)


HAN = "党建工作学习中国人民会议发展经济乡村振兴基层组织纪律作风群众服务改革创新"


def long_body() -> str:
    """Over LONG_TEXT_BYTES: repeated text, then words found only at its very end and
    a phrase broken by a line only there."""
    line = "".join(HAN[(i * 7) % len(HAN)] for i in range(40))
    reps = LONG_TEXT_BYTES // len(line.encode("utf-8")) + 10
    return "\n".join([line] * reps) + "\n末尾独有词语\n跨\n行短语 Zebra 😀𠀀"


@pytest.fixture(scope="module")
def long_index(tmp_path_factory, config, analysis):
    articles = {
        "long": {"id": "long", "title": "超长文章汇编", "body": long_body()},
        "short": {"id": "short", "title": "基层组织", "body": "末尾独有的作风建设，乡村振兴。"},
        "other": {"id": "other", "title": "跨行", "body": "跨行短语 zebra 党建"},
    }
    cfg = config.with_(index_dir=tmp_path_factory.mktemp("long") / "index")
    Indexer(cfg, analysis).index_articles([Article(**a) for a in articles.values()], rebuild=True,
                                          workers=1)
    return Engine(IndexStore(cfg.index_dir), analysis, reload_interval=0.0), articles


QUERIES = ["末尾独有词语", '"末尾独有"', "独有词语", "行短语", '"跨 行"', "跨行短语", "zebra", "😀𠀀",
           "党建工作", "作风 -末尾独有词语", "乡村振兴 基层组织", "不存在的词语", "末尾 OR 不存在的词语",
           "title:汇编", '"党建 工作"', "超长文章汇编"]


@pytest.mark.parametrize("q", QUERIES)
def test_searches_over_a_long_article_are_greps(long_index, q):
    engine, articles = long_index
    view = engine.view()
    view.norm_bytes(view.docnum_for_id("long"))    # once read, a long text is searched by its pair table
    r = engine.search(SearchRequest(q=q, per_page=100))
    want, relaxed = oracle.search(articles, q)
    assert {h["id"] for h in r.hits} == want and r.total == len(want), (q, r.hits, want)
    assert r.relaxed == relaxed


def test_a_long_text_is_searched_through_its_pair_table(long_index):
    engine, _ = long_index
    view = engine.view()
    docnum = view.docnum_for_id("long")
    text = view.norm_bytes(docnum)
    assert len(text) >= LONG_TEXT_BYTES and view.pair_table(docnum) is not None
    body_start = text.index(b"\n") + 1
    for needle in ["末尾独有词语", "跨\n行", "超长", "长文", "zebra", "😀𠀀", "不存在", "汇编\n", "\n"]:
        encoded = needle.encode("utf-8")
        assert view.holds(docnum, needle, encoded) == (encoded in text), needle
        assert view.holds(docnum, needle, encoded, body_only=True) == (encoded in text[body_start:]), needle
    body = text[body_start:].decode("utf-8")
    for needles in (["不存在", "末尾独有词语", "行短"], ["国经层", "末尾"], ["😀"], ["不存在"], ["汇编"]):
        found = [i for i in (body.find(n) for n in needles) if i >= 0]
        assert view.first_in_body(docnum, needles) == (min(found) if found else None), needles
    short = view.docnum_for_id("short")
    view.norm_bytes(short)
    assert view.pair_table(short) is None


def test_a_long_articles_snippet_shows_its_first_match_and_is_kept(long_index):
    engine, _ = long_index
    first, again = (engine.search(SearchRequest(q="末尾独有词语 Zebra")) for _ in range(2))
    hit = next(h for h in first.hits if h["id"] == "long")
    assert "<mark>末尾独有词语</mark>" in hit["snippet_html"] and "<mark>Zebra</mark>" in hit["snippet_html"]
    assert hit["snippet_html"].startswith("…")     # a window at the end of the body
    assert next(h for h in again.hits if h["id"] == "long") == hit
    assert len(engine.view().snippets) >= 1
