"""Ranking, as an editor would check it: what comes first for a topical query, a quoted
sentence, a title typed whole, and why (``explain=true``).

The index holds the generated corpus (for realistic word frequencies) plus a few
articles written for each case; each test names the article that must rank first.
"""

import dataclasses
import datetime as dt
import glob
import json
import os
import random
import subprocess
import sys

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings, strategies as st

from searchsvc import matching, scoring, sidecar
from searchsvc.app import create_app
from searchsvc.indexing import Indexer
from searchsvc.query import parse
from searchsvc.searching import Engine, SearchRequest

import corpus_gen

FILLER = "会议指出，要统筹发展和安全，推动经济社会高质量发展，切实保障和改善民生。"
ROUNDUP_ITEMS = "".join(f"{city}市召开会议部署年度重点工作，{FILLER}\n" for city in corpus_gen.CITIES)

CASES = [
    # A topical query: one article about rural tourism (its words throughout, never adjacent), one long
    # roundup that names the compound once in passing.
    {"id": "about-tourism", "title": "春季赏花游客增多 农家乐生意火热",
     "body": "进入春季，各地乡村迎来旅游高峰。\n乡村民宿预订量上涨，旅游收入明显增加。\n"
             "多地把旅游和乡村产业结合起来，乡村面貌焕然一新。\n游客说，到乡村去旅游已成为周末首选。"},
    {"id": "roundup-mention", "title": "国内联播快讯",
     "body": ROUNDUP_ITEMS + "另外，文旅部门发布乡村旅游精品线路。\n" + ROUNDUP_ITEMS},
    # A sentence quoted from one article (a known item) against one using its words apart.
    {"id": "quoted", "title": "生态环境部召开专题会议",
     "body": "会议强调，我们要坚持绿色低碳发展道路，推进美丽中国建设。"},
    {"id": "words-apart", "title": "低碳发展座谈会召开",
     "body": "我们坚持发展。绿色是底色，低碳是方向，道路要走稳。我们要发展绿色产业、低碳技术，"
             "坚持走自己的道路，绿色低碳发展。"},
    # A title typed whole: the article titled exactly so, and one whose title holds it.
    {"id": "title-equal", "title": "春耕备耕工作快讯", "body": "各地抓紧春耕备耕。" + FILLER},
    {"id": "title-holds", "title": "甘肃春耕备耕工作快讯", "body": "甘肃各地抓紧春耕备耕，春耕备耕有序推进。" + FILLER},
    # A title typed whole without its space, and an article quoting it three times under another title.
    {"id": "title-spaced", "title": "秋粮收购 进度过半", "body": "各地秋粮收购有序推进。" + FILLER},
    {"id": "title-quoted", "title": "粮食工作简报", "body": "秋粮收购进度过半。" * 3 + FILLER},
    # A title whose letters lower by their context (Σ at a word's end is ς).
    {"id": "greek-title", "title": "ΟΔΟΣ ΑΘΗΝΩΝ", "body": "雅典的一条街道。"},
    # A caption-only clip titled like a topic, and an article about the topic.
    {"id": "caption-clip", "title": "数字乡村建设", "body": "（视频）"},
    {"id": "topic-article", "title": "扎实推进数字乡村建设",
     "body": "数字乡村建设是乡村振兴的战略方向。\n各地加快数字乡村建设，完善乡村信息基础设施。\n"
             "数字技术助力乡村治理，数字乡村建设取得新进展。"},
    # ... and one that discusses it at length under another title.
    {"id": "body-only", "title": "信息化助力乡村振兴",
     "body": "数字乡村建设持续推进。数字乡村建设让农民享受数字红利。\n数字乡村建设试点成效明显，数字乡村建设"
             "经验正在推广。\n专家认为，数字乡村建设要因地制宜。"},
]


@pytest.fixture(scope="module")
def ranking_config(config, analysis, tmp_path_factory):
    articles = corpus_gen.generate(400, seed=18) + [dict(a, date="2024-03-01", section="新闻联播 > 国内新闻")
                                                    for a in CASES]
    path = corpus_gen.write_jsonl(articles, tmp_path_factory.mktemp("ranking") / "ranking.jsonl")
    index = config.with_(index_dir=tmp_path_factory.mktemp("ranking-index") / "index")
    Indexer(index, analysis).index_paths([path], rebuild=True)
    return index


@pytest.fixture(scope="module")
def engine(ranking_config, analysis):
    return Engine.from_config(ranking_config, analysis)


def ids(engine, q, **kw):
    return [h["id"] for h in engine.search(SearchRequest(q=q, per_page=50, **kw)).hits]


def above(engine, q, first, second):
    got = ids(engine, q)
    assert first in got and second in got, (q, got)
    return got.index(first) < got.index(second)


def test_an_article_about_the_topic_ranks_above_a_passing_mention_of_it(engine):
    # The roundup holds "乡村旅游" contiguously, once, among unrelated items; the article
    # about it uses the words throughout. Two adjacent words are weak evidence.
    assert above(engine, "乡村旅游", "about-tourism", "roundup-mention")


def test_a_quoted_sentence_finds_its_article_first(engine):
    # Seven words in a row are a quotation: the article holding them ranks first even
    # though another holds every word more often.
    assert ids(engine, "我们要坚持绿色低碳发展道路")[0] == "quoted"


@pytest.fixture(params=["every-title-read", "gram-candidates"])
def title_engine(request, ranking_config, analysis, monkeypatch):
    """The engine as it finds titles holding the query: every match's title read (up to
    TITLE_READ_ALL matches, as here), or, as past that many, only the candidates' titles (a
    fresh engine: no result cached across the two)."""
    if request.param == "gram-candidates":
        monkeypatch.setattr(scoring, "TITLE_READ_ALL", 0)
    return Engine.from_config(ranking_config, analysis)


def test_a_title_typed_whole_ranks_the_article_so_titled_first(title_engine):
    assert ids(title_engine, "春耕备耕工作快讯")[:2] == ["title-equal", "title-holds"]


def test_a_title_typed_whole_finds_it_across_its_space(title_engine):
    # The title holds no "购进", the pair across its space (nor does its text): read all the
    # same, past TITLE_READ_ALL since its title has "购 " and " 进" (Plan._title_candidates).
    result = title_engine.search(SearchRequest(q="秋粮收购进度过半", explain=True))
    assert [h["id"] for h in result.hits][:2] == ["title-spaced", "title-quoted"]
    assert result.hits[0]["explain"]["equal_title"] == 1.0


def test_a_title_typed_whole_as_written_is_the_title_whatever_its_letters_lower_to(title_engine):
    result = title_engine.search(SearchRequest(q="ΟΔΟΣ ΑΘΗΝΩΝ", explain=True, typos=False))
    assert result.hits[0]["id"] == "greek-title" and result.hits[0]["explain"]["equal_title"] == 1.0


TITLE_WORDS = ["秋粮", "收购", "进度", "过半", "春耕", "备耕", "工作", "快讯", "乡村", "旅游"]


@pytest.fixture(scope="module")
def spaced_titles(config, analysis, tmp_path_factory):
    """Titles of a few words (returned as lists), some with a space between two of them (as
    editors write), every article's text the same filler, and an engine on them."""
    rng = random.Random(14)
    titles = [rng.sample(TITLE_WORDS, rng.randint(2, 5)) for _ in range(80)]
    articles = [{"id": f"t{i}", "title": "".join(w + rng.choice(["", "", " "]) for w in words).strip(),
                 "body": FILLER, "date": "2024-03-01"} for i, words in enumerate(titles)]
    path = corpus_gen.write_jsonl(articles, tmp_path_factory.mktemp("spaced") / "spaced.jsonl")
    index = config.with_(index_dir=tmp_path_factory.mktemp("spaced-index") / "index")
    Indexer(index, analysis).index_paths([path], rebuild=True)
    return titles, Engine.from_config(index, analysis)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_past_title_read_all_every_title_holding_the_query_is_in_the_tier(spaced_titles, monkeypatch, data):
    """Oracle: the title with its whitespace removed holds the query (equals it, for the
    equal-title part), for every hit, the query a run of a title's words across its spaces,
    with TITLE_READ_ALL = 0 (only candidates' titles read, as past that many matches)."""
    titles, engine = spaced_titles
    monkeypatch.setattr(scoring, "TITLE_READ_ALL", 0)
    words = data.draw(st.sampled_from(titles))
    start = data.draw(st.integers(0, len(words) - 1))
    q = "".join(words[start:data.draw(st.integers(start + 1, len(words)))])     # a run of its words
    hits = engine.search(SearchRequest(q=q, per_page=100, typos=False, explain=True)).hits
    assert hits, q
    for h in hits:
        held = "".join(titles[int(h["id"][1:])])
        assert (h["explain"].get("title", 0), h["explain"].get("equal_title", 0)) == (q in held, q == held), (q, h)


ODD_SPACES = [" ", "\u3000", "\t", "\u00a0", "\u2003", "\u2028", "  "]


@pytest.fixture(scope="module", params=["with-sidecars", "without-sidecars"])
def odd_titles(request, config, analysis, tmp_path_factory):
    """Titles of a few characters (letters, a traditional one, symbols NFKC changes) with odd
    whitespace between some, in two segments, a few articles replaced (deleted docnums);
    served with the posting sidecars, and without them (the postings Whoosh decodes)."""
    rng = random.Random(21)
    chars = list("秋粮收购进度过半進Ａａ¨Σ")

    def title():
        return "".join(rng.choice(chars) + (rng.choice(ODD_SPACES) if rng.random() < 0.3 else "")
                       for _ in range(rng.choice([3, 6, 10, 40]))).strip() or "秋"
    tmp = tmp_path_factory.mktemp("odd-titles")
    cfg = config.with_(index_dir=tmp / "index", reload_interval=0.0)
    for n, (count, rebuild) in enumerate([(200, True), (30, False)]):     # the second replaces a0..a29
        articles = [{"id": f"a{i}", "title": title(), "body": "".join(rng.sample(chars, 3))} for i in range(count)]
        path = corpus_gen.write_jsonl(articles, tmp / f"part{n}.jsonl")
        Indexer(cfg, analysis).index_paths([path], rebuild=rebuild, workers=1)
    if request.param == "without-sidecars":
        for f in glob.glob(str(cfg.index_dir / "current" / f"*{sidecar.SUFFIX}")):
            os.remove(f)
    view = Engine.from_config(cfg, analysis).view()
    assert view.mapped == (request.param == "with-sidecars") and len(view.leaves) == 2 and not view.live.all()
    live = view.live.nonzero()[0]
    return view, live, {int(d): "".join(view.title_bytes(int(d)).decode("utf-8").split()) for d in live}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_title_candidates_hold_every_title_holding_the_query(odd_titles, analysis, data):
    """Oracle: every live title that holds the query once its whitespace is removed (grep
    over the stored normal forms) is a candidate; the query taken from one of them."""
    view, live, compact = odd_titles
    title = data.draw(st.sampled_from([c for c in compact.values() if len(c) >= 2]))
    start = data.draw(st.integers(0, len(title) - 2))
    plan = matching.Plan(view, analysis, parse(title[start:data.draw(st.integers(start + 2, len(title)))]))
    if len(plan.full) < 2:
        return                      # (the title tier needs two characters)
    candidates = plan._title_candidates(plan.full, live)
    missed = [c for d, c in compact.items() if plan.full in c and not candidates[d]]
    assert not missed, (plan.full, missed)


def test_a_query_computes_each_fields_length_norms_once(ranking_config, analysis, monkeypatch):
    """Its words (and synonyms, homophones) and its clause's phrase share one LengthNorms."""
    computed, scored = [], []
    floored, score_parts = scoring.floored_lengths, matching.Plan.score_parts
    monkeypatch.setattr(scoring, "floored_lengths", lambda v, f, docs: computed.append(f) or floored(v, f, docs))
    monkeypatch.setattr(matching.Plan, "score_parts",
                        lambda self, *a, **k: scored.append(1) or score_parts(self, *a, **k))
    engine = Engine.from_config(ranking_config, analysis)
    assert ids(engine, "我们要坚持绿色低碳发展道路")[0] == "quoted"
    assert scored and sorted(computed) == sorted(["body", "title"] * len(scored)), (computed, scored)


def test_a_caption_only_clip_does_not_outrank_the_article_about_its_title(title_engine):
    assert above(title_engine, "数字乡村建设", "topic-article", "caption-clip")


def test_titles_holding_the_query_come_before_bodies_holding_it(title_engine):
    # body-only holds the query five times, more than either title-holder's body.
    got = ids(title_engine, "数字乡村建设")
    assert set(got[:2]) == {"topic-article", "caption-clip"} and got[2] == "body-only"


def parts_total(p: dict) -> float:
    """The formula of ``ScoreParts``, recomputed from an explanation."""
    words = sum(p["words"].values()) * p.get("coverage", 1.0) ** 2
    return (p["title_boost"] * p.get("title", 0) + p["equal_title_boost"] * p.get("equal_title", 0) + words
            + p.get("phrase", 0.0))


@pytest.mark.parametrize("q", ["乡村旅游", "我们要坚持绿色低碳发展道路", "春耕备耕工作快讯", "数字乡村建设",
                               "乡村 旅游 -民宿", "title:春耕", "\"数字乡村\" 建设", "乡村旅游 OR 数字乡村",
                               "绿色 低碳 火星"])
def test_explain_gives_parts_that_add_up_to_each_hits_score(engine, q):
    result = engine.search(SearchRequest(q=q, per_page=20, explain=True))
    assert result.hits, q
    for h in result.hits:
        p = h["explain"]
        assert parts_total(p) == pytest.approx(h["score"], abs=1e-3), (q, h["id"], p)
        assert set(p["words"]) and all(v >= 0 for v in p["words"].values())


VOCABULARY = ["乡村", "旅游", "乡村旅游", "数字乡村建设", "春耕", "备耕", "快讯", "绿色", "低碳", "发展", "会议",
              "火星", "-民宿", "title:春耕", "\"数字乡村\"", "OR"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4),
       section=st.sampled_from([(), ("新闻联播 > 国内新闻",), ("新闻联播",), ("工作动态",)]),
       date_from=st.sampled_from([None, dt.date(2024, 1, 1), dt.date(2024, 3, 2)]),
       page=st.integers(1, 3), per_page=st.sampled_from([1, 3, 10]))
def test_explain_adds_up_under_any_filters_and_on_any_page(engine, words, section, date_from, page, per_page):
    req = SearchRequest(q=" ".join(words), sections=section, date_from=date_from, page=page, per_page=per_page)
    plain = engine.search(req)
    explained = engine.search(dataclasses.replace(req, explain=True))
    assert [h["id"] for h in explained.hits] == [h["id"] for h in plain.hits]
    if parse(req.q).is_empty:        # no relevance ("OR" alone): newest first, nothing to explain
        assert all("explain" not in h for h in explained.hits)
        return
    for h in explained.hits:
        assert parts_total(h["explain"]) == pytest.approx(h["score"], abs=1e-3), (req, h["id"], h["explain"])


def test_explain_names_the_parts_that_made_the_difference(engine):
    hits = {h["id"]: h["explain"] for h in engine.search(SearchRequest(q="春耕备耕工作快讯", explain=True)).hits}
    assert hits["title-equal"]["title"] == hits["title-equal"]["equal_title"] == 1
    assert hits["title-holds"]["title"] == 1 and hits["title-holds"]["equal_title"] == 0
    hits = {h["id"]: h["explain"] for h in engine.search(SearchRequest(q="乡村旅游", per_page=50,
                                                                         explain=True)).hits}
    assert hits["roundup-mention"]["phrase"] > 0 and list(hits["about-tourism"]["words"]) == ["乡村", "旅游"]


def test_without_explain_hits_carry_no_explanation_and_sorting_by_date_has_none(engine):
    assert all("explain" not in h for h in engine.search(SearchRequest(q="乡村旅游")).hits)
    assert all("explain" not in h for h in engine.search(SearchRequest(q="乡村旅游", sort="newest",
                                                                        explain=True)).hits)


def test_explain_over_http_and_a_bad_value_is_a_400_naming_it(engine, config):
    client = testing.TestClient(create_app(config, engine=engine))
    for value in ("true", "1", "TRUE"):
        body = client.simulate_get("/search", params={"q": "乡村旅游", "explain": value}).json
        assert all("explain" in h for h in body["hits"]) and body["hits"]
    for value in ("false", "0"):
        body = client.simulate_get("/search", params={"q": "乡村旅游", "explain": value}).json
        assert all("explain" not in h for h in body["hits"])
    for value in ("yes", "", "2"):
        r = client.simulate_get("/search", params={"q": "乡村旅游", "explain": value})
        assert r.status_code == 400 and r.json["error"]["param"] == "explain", (value, r.json)
    r = client.simulate_post("/search", json={"q": "乡村旅游", "explain": True})
    assert r.status_code == 200 and all("explain" in h for h in r.json["hits"])
    r = client.simulate_post("/search", json={"q": "乡村旅游", "explain": "true"})   # JSON has booleans
    assert r.status_code == 400 and r.json["error"]["param"] == "explain"


def test_the_formulas_constants_are_what_the_readme_states():
    readme = (corpus_gen.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for name in ("TIER", "EQUAL_TITLE", "PHRASE_POWER", "LENGTH_FLOOR", "TITLE_READ_ALL"):
        assert f"`{name} = {getattr(scoring, name):g}`" in readme, name


def test_the_cli_explains_each_hit_on_one_line_and_its_json_is_the_apis(ranking_config, engine):
    run = lambda *a: subprocess.run([sys.executable, "-m", "searchsvc", "search", "--index",   # noqa: E731
                                     str(ranking_config.index_dir), *a], capture_output=True, text=True, check=True)
    lines = run("--explain", "-n", "2", "春耕备耕工作快讯").stdout.splitlines()
    assert lines[1].startswith("title-equal ") and lines[3].startswith("  score ")
    assert "= title holds it 1000 + title is it 10 + " in lines[3] and "春耕" in lines[3], lines
    body = json.loads(run("--explain", "--json", "乡村旅游").stdout)
    api = engine.search(SearchRequest(q="乡村旅游", explain=True))
    assert [h["explain"] for h in body["hits"]] == [h["explain"] for h in api.hits]


def test_a_released_plan_keeps_no_match_masks(engine, analysis):
    """A cached plan (kept to explain scores) holds only a relaxed query's counts."""
    for q in ("乡村旅游", "20240301 乡村 火星", "乡村 OR 旅游 -民宿", "绿色 低碳 火星"):
        matches = engine.matches(engine.view(), SearchRequest(q=q))
        plan = matches.plan
        units = [u for g in plan.groups for alt in g for u in alt] + [u for us in plan.excluded for u in us]
        units += plan._coverage[1] if plan._coverage else []
        assert all(u.mask is None and u.grams is None for u in units), q
        assert plan.nbytes == (plan._coverage[0].nbytes if plan._coverage else 0)
