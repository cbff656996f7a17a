"""Query semantics on the session index (generated articles and the examples; real
articles for the grep comparison): grep-exact phrases, words, filters, order."""

import datetime as dt
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchsvc.highlight import highlight
from searchsvc.indexing import Indexer
from searchsvc.searching import BadRequest, Engine, SearchRequest
from searchsvc.store import IndexStore

from conftest import grep


def ids(engine, **kw):
    """Every matching id, paging like a client would."""
    out, page = [], 1
    while True:
        r = engine.search(SearchRequest(page=page, per_page=100, **kw))
        out += [h["id"] for h in r.hits]
        if len(r.hits) < 100:
            return out, r.total
        page += 1


PHRASES = ["发展战略", "副主", "习近平", "人", "国务院总理李强", "（新闻联播）", "5G", "一带一路"]


@pytest.mark.parametrize("phrase", PHRASES)
def test_quoted_phrases_match_exactly_what_grep_finds(engine, corpus, analysis, phrase):
    got, total = ids(engine, q=f'"{phrase}"')
    expected = grep(corpus[1], phrase, analysis.normalizer) | grep(_examples(), phrase, analysis.normalizer)
    assert expected and total == len(got) == len(set(got))
    assert set(got) == expected


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory, config, analysis, shared_slice):
    """An index of the shared archive's slice alone (real articles nobody wrote for the tests)."""
    cfg = config.with_(index_dir=tmp_path_factory.mktemp("shared-index") / "index")
    Indexer(cfg, analysis).index_paths([shared_slice[0]], rebuild=True, workers=2)
    return Engine(IndexStore(cfg.index_dir), analysis, reload_interval=0.0)


def test_on_real_articles_quoted_phrases_match_exactly_what_grep_finds(shared_engine, shared_slice, analysis):
    for phrase in PHRASES:
        got, total = ids(shared_engine, q=f'"{phrase}"')
        assert total == len(got) == len(set(got)), phrase
        assert set(got) == grep(shared_slice[1], phrase, analysis.normalizer), phrase


def _examples():
    from searchsvc.cli import EXAMPLE_CORPUS
    from searchsvc.parsing import Article, read_inputs
    return [{"id": a.id, "title": a.title, "body": a.body, "section": a.section,
             "date": a.date.isoformat() if a.date else None}
            for a in read_inputs([EXAMPLE_CORPUS]) if isinstance(a, Article)]


def test_words_typed_without_spaces_must_all_occur(engine, corpus, analysis):
    r = engine.search(SearchRequest(q="普京俄罗斯乌克兰", per_page=100))
    assert r.total > 0 and not r.relaxed
    norm = analysis.normalizer
    for h in r.hits:
        text = norm(h["title"] + engine.article(h["id"])["body"])
        assert all(w in text for w in ("普京", "俄罗斯", "乌克兰"))


def test_a_title_ranks_its_article_first(engine, corpus):
    article = corpus[1][123]
    r = engine.search(SearchRequest(q=article["title"]))
    same_title = {a["id"] for a in corpus[1] if a["title"] == article["title"]}
    assert r.hits[0]["id"] in same_title


def test_traditional_script_finds_simplified_articles(engine, corpus, analysis):
    import collections
    import opencc
    s2t, norm = opencc.OpenCC("s2t"), analysis.normalizer
    titles = collections.Counter(norm(a["title"]) for a in corpus[1])     # the same title in either script
    unique = [a for a in corpus[1][40:] if titles[norm(a["title"])] == 1 and s2t.convert(a["title"]) != a["title"]]
    assert len(unique) >= 20
    for article in unique[:20]:
        assert engine.search(SearchRequest(q=s2t.convert(article["title"]))).hits[0]["id"] == article["id"]


def test_relaxes_to_most_words_when_nothing_has_all(engine):
    r = engine.search(SearchRequest(q="残疾人 就业 量子纠缠态"))
    assert r.relaxed and r.total > 0


def test_exclusion_or_and_title_field(engine, analysis):
    with_word, _ = ids(engine, q="俄罗斯")
    without, _ = ids(engine, q="俄罗斯 -乌克兰")
    assert set(without) < set(with_word)
    norm = analysis.normalizer
    assert all("乌克兰" not in norm(engine.article(i)["title"] + engine.article(i)["body"]) for i in without[:50])
    a, _ = ids(engine, q="残联")
    b, _ = ids(engine, q="残疾人联合会")
    either, _ = ids(engine, q="残联 OR 残疾人联合会")
    assert set(either) == set(a) | set(b)
    titled, _ = ids(engine, q="title:习近平")
    assert titled and all("习近平" in norm(engine.article(i)["title"]) for i in titled)


def test_wildcards_and_regex_are_literal(engine):
    # '*' is punctuation to the word analyzer (like '，'): no prefix expansion ...
    assert engine.search(SearchRequest(q="习*")).total == engine.search(SearchRequest(q="习")).total
    # ... and inside quotes it is a character that must be there, as grep would have it.
    assert engine.search(SearchRequest(q='"习*"')).total == 0
    assert engine.search(SearchRequest(q="/.*/")).total == 0


def test_section_prefix_date_filters_and_facets(engine, corpus, analysis):
    articles, norm = corpus[1], analysis.normalizer
    r = engine.search(SearchRequest(q='"发展"', sections=("新闻联播 > 国内新闻",),
                                    date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 28)))
    expected = {a["id"] for a in articles if "发展" in norm(a["title"] + "\n" + a["body"])
                and a["section"] == "新闻联播 > 国内新闻" and "2022-02-01" <= (a["date"] or "")[:10] <= "2022-02-28"}
    got, total = ids(engine, q='"发展"', sections=("新闻联播 > 国内新闻",),
                     date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 28))
    assert set(got) == expected and total == len(expected)
    # the section facet ignores the section filter (siblings stay visible) ...
    facet = {f["value"]: f["count"] for f in r.facets["section"]}
    assert facet["新闻联播 > 国际新闻"] > 0 and facet["新闻联播"] >= facet["新闻联播 > 国内新闻"] == total
    # ... and the year facet ignores the dates
    assert {f["value"] for f in r.facets["year"]} >= {"2022"}
    prefix, _ = ids(engine, q='"发展"', sections=("新闻联播",))
    assert len(prefix) > total


def test_each_facet_counts_matches_inside_the_other_filter(engine):
    """With both filters only articles inside one of them are matched; the facets
    still equal those of a search with just the other filter."""
    section, start, end = ("新闻联播 > 国内新闻",), dt.date(2022, 2, 1), dt.date(2022, 3, 31)
    for q in ('"发展"', "习近平 会见", "央视网消息"):
        both = engine.search(SearchRequest(q=q, sections=section, date_from=start, date_to=end))
        dates_only = engine.search(SearchRequest(q=q, date_from=start, date_to=end))
        section_only = engine.search(SearchRequest(q=q, sections=section))
        assert both.total > 0 and not both.relaxed
        assert both.facets["section"] == dates_only.facets["section"]
        assert both.facets["year"] == section_only.facets["year"]
    # Words found together only outside the filters: no hits, and not relaxed to fewer words.
    r = engine.search(SearchRequest(q="习近平 会见", sections=section, date_from=dt.date(1990, 1, 1),
                                    date_to=dt.date(1990, 12, 31)))
    assert r.total == 0 and not r.relaxed


DAYS = st.none() | st.dates(dt.date(2020, 12, 1), dt.date(2023, 2, 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phrase=st.sampled_from(["发展", "习近平", "人", "会议", "新闻", "党建"]),
       sections=st.sampled_from([(), ("新闻联播",), ("新闻联播 > 国内新闻",), ("工作动态", "思想建设 > 理论学习"),
                                 ("新闻",)]),
       start=DAYS, end=DAYS)
def test_hits_and_facets_count_what_grep_counts(engine, corpus, analysis, phrase, sections, start, end):
    """Counted from the articles themselves: the hits are the matches inside both filters, the
    section facet counts (every leading part of) the matches inside the dates, the year
    facet the matches inside the sections."""
    norm = analysis.normalizer
    matches = [a for a in corpus[1] + _examples() if phrase in norm(a["title"] + "\n" + a["body"])]

    def in_sections(a):
        return not sections or any(a["section"] == s or a["section"].startswith(s + " > ") for s in sections)

    def in_dates(a):
        day = (a["date"] or "")[:10]
        return (start is None and end is None) or (bool(day) and (start is None or day >= start.isoformat())
                                                   and (end is None or day <= end.isoformat()))

    section_counts = Counter(" > ".join(a["section"].split(" > ")[:i]) for a in matches if in_dates(a) and a["section"]
                             for i in range(1, a["section"].count(" > ") + 2))
    year_counts = Counter(a["date"][:4] for a in matches if in_sections(a) and a["date"])
    r = engine.search(SearchRequest(q=f'"{phrase}"', sections=sections, date_from=start, date_to=end))
    assert r.total == sum(1 for a in matches if in_sections(a) and in_dates(a))
    assert {f["value"]: f["count"] for f in r.facets["section"]} == section_counts
    assert {f["value"]: f["count"] for f in r.facets["year"]} == year_counts


@pytest.mark.parametrize("q", ["习近平 会见", "國務院", "ＡＩ 发展", "央视网消息"])
def test_a_hits_title_is_marked_as_highlighting_it_afresh_marks_it(engine, analysis, q):
    """Hits highlight titles from the stored normal form: the same HTML as normalising
    each title again (the form read must be the title's, not the body's)."""
    view = engine.view()
    needles = engine.matches(view, SearchRequest(q=q)).needles
    hits = engine.search(SearchRequest(q=q, per_page=100)).hits
    assert hits
    for hit in hits:
        title = view.stored(view.docnum_for_id(hit["id"]))["title"]
        assert hit["title_html"] == highlight(title, needles, analysis.normalizer)


def test_undated_articles_sort_last_and_match_no_date_filter(engine):
    newest = engine.search(SearchRequest(q="主题党日", sort="newest", per_page=100)).hits
    oldest = engine.search(SearchRequest(q="主题党日", sort="oldest", per_page=100)).hits
    assert newest and newest[-1]["date"] is None and oldest[-1]["date"] is None
    dated = [h["date"] for h in newest if h["date"]]
    assert dated == sorted(dated, reverse=True)
    r = engine.search(SearchRequest(q="重温入党誓词", date_from=dt.date(1900, 1, 1)))
    assert all(h["id"] != "jsonl-005" for h in r.hits)


def test_empty_query_browses_newest_first(engine):
    r = engine.search(SearchRequest(q="", sections=("新闻联播 > 国际新闻",)))
    dates = [h["date"] for h in r.hits]
    assert r.total > 100 and dates == sorted(dates, reverse=True)


def test_pages_do_not_overlap_under_ties(engine):
    got, total = ids(engine, q='"新闻联播"')
    assert len(got) == len(set(got)) == total


def test_highlighting_is_escaped_and_merged(engine, analysis):
    r = engine.search(SearchRequest(q="推动长三角一体化发展"))
    hit = r.hits[0]
    marked = re.findall(r"<mark>(.*?)</mark>", hit["title_html"] + hit["snippet_html"])
    assert "推动长三角一体化发展" in map(analysis.normalizer, marked)     # one mark, in either script
    assert "</mark><mark>" not in hit["snippet_html"]
    assert len(hit["snippet_html"].replace("<mark>", "").replace("</mark>", "")) <= 170


def test_result_window_is_capped(engine):
    with pytest.raises(BadRequest) as e:
        engine.search(SearchRequest(q="发展", page=101, per_page=100))
    assert e.value.param == "page"
