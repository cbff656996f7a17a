"""The lexicon, suggestions, spelling corrections and related articles, directly and
table-driven, over a small index the test writes (real Whoosh files, real jieba)."""

from __future__ import annotations

import pytest
from whoosh import index as whoosh_index

import corpus_gen
from searchsvc.indexing import Indexer
from searchsvc.lexicon import MIN_TERM_DF, Entry, Lexicon, PrefixIndex, _entry_keys
from searchsvc.related import KEY_TERMS, key_terms, related_docs
from searchsvc.searching import Engine
from searchsvc.spelling import candidates
from searchsvc.suggest import suggest

CITIES = corpus_gen.CITIES + ("兰州", "天津")
SERVICE, PARTY, NEWS = "工作动态 > 社会服务", "工作动态 > 机关党建", "新闻联播 > 国内新闻"


def _articles() -> list[dict]:
    out = []
    for i, city in enumerate(CITIES):          # 12: 残疾人 is frequent
        out.append({"id": f"cj-{i}", "title": f"{city}残疾人就业帮扶", "section": SERVICE,
                    "body": "残疾人联合会帮助残疾人就业。康复中心为残疾人提供服务。",
                    "date": f"2026-01-{i + 1:02d}T09:00"})
    for i, city in enumerate(CITIES[:8]):      # 8: 党建
        out.append({"id": f"dj-{i}", "title": f"{city}机关党建工作会议", "section": PARTY,
                    "body": "加强党建工作，推进党建引领。", "date": f"2026-02-{i + 1:02d}T09:00"})
    for i, city in enumerate(CITIES[:6]):      # 6: 乡村振兴
        out.append({"id": f"xc-{i}", "title": f"乡村振兴战略在{city}实施", "section": NEWS,
                    "body": "乡村振兴战略推动农业发展。", "date": f"2026-03-{i + 1:02d}T09:00"})
    out.append({"id": "same-old", "title": "重复的标题", "section": NEWS, "body": "旧的一篇。",
                "date": "2020-05-01T09:00"})
    out.append({"id": "same-new", "title": "重复的标题", "section": NEWS, "body": "新的一篇。",
                "date": "2025-05-01T09:00"})
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory, config, analysis):
    """(engine, lexicon, view) over the small index; cj-11 deleted after indexing."""
    root = tmp_path_factory.mktemp("vocab")
    cfg = config.with_(index_dir=root / "ix", query_log_enabled=False)
    indexer = Indexer(cfg, analysis)
    indexer.index_paths([corpus_gen.write_jsonl(_articles(), root / "small.jsonl")], rebuild=True, workers=1)
    indexer.apply_state(indexer.store.open(), {"cj-11": None})
    engine = Engine.from_config(cfg.with_(reload_interval=0.0), analysis)
    view = engine.view()
    return engine, Lexicon(view), view


# ------------------------------------------------------------------ lexicon

def test_document_frequencies_equal_whooshs(small):
    """df of each word = its document frequency in title plus body, per Whoosh's public reader."""
    _, lexicon, view = small
    reader = whoosh_index.open_dir(str(view_path(small))).reader()
    expected: dict[str, int] = {}
    for field in ("title", "body"):
        for tbytes in reader.lexicon(field):
            word = tbytes.decode("utf-8")
            expected[word] = expected.get(word, 0) + reader.doc_frequency(field, tbytes)
    assert lexicon.df == expected
    assert lexicon.df["党建"] == 16 and lexicon.df["乡村振兴"] == 12


def view_path(small):
    engine, _, _ = small
    return engine.store.current_path()


def test_terms_are_the_frequent_words(small):
    _, lexicon, _ = small
    suggested = {e.text for e in lexicon.terms.entries}
    expected = {w for w, n in lexicon.df.items() if n >= MIN_TERM_DF and len(w) >= 2 and not w.isdigit()}
    assert suggested == expected and "残疾人" in suggested and "帮扶" in suggested


def test_titles_once_each_dated_by_their_newest_live_article(small):
    engine, lexicon, view = small
    titles = {e.text: e for e in lexicon.titles.entries}
    assert len(titles) == 12 + 8 + 6 + 1 - 1               # one duplicate title, one deleted article
    assert "天津残疾人就业帮扶" not in titles                  # cj-11: deleted
    assert titles["重复的标题"].weight == view.date[view.docnum_for_id("same-new")]


@pytest.mark.parametrize("prefix,limit,expected", [
    ("党", 3, ["党建工作", "党建", "党员"]),                # by weight
    ("dang", 3, ["党建工作", "当家", "党建"]),              # full pinyin
    ("dj", 2, ["党建工作", "当家"]),                         # initials
    ("djgz", 5, ["党建工作"]),
    ("党建", 5, ["党建工作", "党建"]),
    ("zz", 5, []),
])
def test_prefix_index_lookup(prefix, limit, expected):
    entries = [Entry("党建", "term", 5.0), Entry("党建工作", "term", 9.0), Entry("当家", "term", 7.0),
               Entry("党员", "term", 1.0)]
    assert [e.text for e in PrefixIndex(entries, _entry_keys).lookup(prefix, limit)] == expected


def test_a_rare_reading_does_not_outrank_the_usual_one():
    """行 reads xing and hang: 银行 is found by yinhang; a word under its rare reading ranks last."""
    entries = [Entry("银行", "term", 1.0), Entry("行业", "term", 100.0)]
    index = PrefixIndex(entries, _entry_keys)
    assert [e.text for e in index.lookup("yinhang", 5)] == ["银行"]
    assert [e.text for e in index.lookup("hangye", 5)] == ["行业"]


@pytest.mark.parametrize("text,expected", [
    ("残急人", ("残疾人", 24)),          # same pinyin (canjiren), frequent
    ("残疾人", None),                    # itself excluded, no other spelling indexed
    ("xyz", None),
])
def test_homophone(small, text, expected):
    _, lexicon, _ = small
    assert lexicon.homophone(text) == expected


# ------------------------------------------------------------------ spelling

@pytest.mark.parametrize("query,expected", [
    ("残急人", ["残疾人"]),              # a homophone from the input method's list
    ("残急人就业", ["残疾人就业"]),      # within a longer query
    ("dangjian", ["党建"]),              # pinyin typed without switching the input method
    ("残 疾 人", ["残疾人"]),            # spaces between the characters
    ("残疾人", []),                      # nothing to correct
    ("hello", []),
    ("", []),
])
def test_spelling_candidates(small, analysis, query, expected):
    _, lexicon, _ = small
    assert candidates(analysis.normalizer(query), lexicon) == expected


# ------------------------------------------------------------------ suggestions

@pytest.mark.parametrize("q,popular,limit,expected", [
    ("残疾", [], 3, [("残疾", "term"), ("残疾人", "term"), ("残疾人联合会", "term")]),   # by frequency
    ("dangj", [], 2, [("党建", "term")]),                                     # full pinyin
    ("殘疾", [], 1, [("残疾", "term")]),                                      # traditional typed
    ("cjr", [("残疾人就业", 7)], 2, [("残疾人就业", "query"), ("残疾人", "term")]),   # popular first
    ("乡村振兴战略在成", [], 5, [("乡村振兴战略在成都实施", "title")]),        # a title's start
    ("在西安", [], 5, [("乡村振兴战略在西安实施", "title")]),                   # inside a title
    ("天津残疾", [], 5, []),                                                    # the deleted article's title
    ("   ", [], 5, []),
])
def test_suggest(small, analysis, q, popular, limit, expected):
    _, lexicon, _ = small
    got = suggest(q, limit, lexicon, popular, analysis.normalizer)
    assert [(s["text"], s["kind"]) for s in got][:len(expected)] == expected and len(got) <= limit
    if len(expected) < limit:           # nothing else matches
        assert len(got) == len(expected)


def test_suggest_respects_the_limit(small, analysis):
    _, lexicon, _ = small
    for limit in (1, 2, 5):
        assert len(suggest("乡村", limit, lexicon, [], analysis.normalizer)) == limit


# ------------------------------------------------------------------ related articles

DF = {"残疾人": 10, "就业": 10, "党建": 10, "加强": 10, "工作": 10, "推进": 10, "引领": 10}


@pytest.mark.parametrize("title,body,df,expected", [
    # title words count double; equal idf: by weighted frequency, then first seen
    ("残疾人就业", "加强党建工作，推进党建引领。", DF, ["残疾人", "就业", "党建", "加强", "工作", "推进", "引领"]),
    # words in at most one article, or unknown, are not key terms
    ("残疾人就业", "", {**DF, "就业": 1}, ["残疾人"]),
    # rarer words first
    ("", "残疾人就业", {"残疾人": 50, "就业": 2}, ["就业", "残疾人"]),
    # no digits, no single characters
    ("", "2026年残疾人", {"2026": 10, "年": 10, "残疾人": 10}, ["残疾人"]),
])
def test_key_terms(analysis, title, body, df, expected):
    assert key_terms(title, body, analysis, df, 100) == expected


def test_key_terms_are_at_most_key_terms(analysis):
    words = ["残疾人", "就业", "党建", "乡村振兴", "农业", "发展", "战略", "推动", "康复", "服务",
             "会议", "机关", "工作", "推进", "引领", "加强", "帮扶", "联合会", "中心", "提供"]
    terms = key_terms("", "，".join(words), analysis, {w: 5 for w in words}, 100)
    assert len(terms) == KEY_TERMS


@pytest.mark.parametrize("doc_id,group", [("cj-0", "cj-"), ("dj-3", "dj-"), ("xc-5", "xc-")])
def test_related_docs_share_the_key_terms(small, analysis, doc_id, group):
    engine, lexicon, view = small
    d = view.docnum_for_id(doc_id)
    title, _, body = view.norm_text(d).partition("\n")
    terms = key_terms(title, body, analysis, lexicon.df, view.doc_count)
    found = related_docs(view, d, terms, 5)
    ids = [view.stored(n)["id"] for n, _ in found]
    assert len(ids) == 5 and doc_id not in ids and "cj-11" not in ids      # not itself, not deleted
    assert all(i.startswith(group) for i in ids), ids
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_related_prefers_the_same_section_and_the_newer(small, analysis):
    """Among articles with the same text (the 残疾人 group differs only in the city), the
    newer ranks first: recency nudges when relevance ties."""
    engine, lexicon, view = small
    d = view.docnum_for_id("cj-0")
    title, _, body = view.norm_text(d).partition("\n")
    terms = key_terms(title, body, analysis, lexicon.df, view.doc_count)
    ids = [view.stored(n)["id"] for n, _ in related_docs(view, d, terms, 10)]
    assert ids[:3] == ["cj-10", "cj-9", "cj-8"]                     # cj-11 (newest) deleted


def test_no_related_articles_without_shared_terms(small):
    _, _, view = small
    assert related_docs(view, view.docnum_for_id("same-old"), [], 5) == []
    assert related_docs(view, view.docnum_for_id("same-old"), ["不存在的词"], 5) == []
