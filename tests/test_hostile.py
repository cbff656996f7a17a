"""Hostile and broken input: anything a client sends gets 200 or a JSON 4xx, never a 500;
indexed markup never comes back as markup; slow queries stop at their budget."""

from __future__ import annotations

import json
import urllib.parse
from html.parser import HTMLParser

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchsvc.app import create_app
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.indexing import Indexer
from searchsvc.searching import Engine
from searchsvc.store import IndexStore
from searchsvc.synonyms import Synonyms

ENDPOINTS = ["/search", "/suggest", "/popular", "/sections", "/healthz", "/articles/x", "/articles/x/related",
             "/", "/a/x"]
PARAMS = ["q", "section", "from", "to", "sort", "page", "per_page", "format", "limit", "days"]
SPECIAL = st.sampled_from(['"', '"未闭合', "-", "OR", "a OR", "OR b", "title:", 'title:""', "---x", "*", "党*",
                           "a?b", "/正则.*/", "~模糊", "党建~2", "\x00", "\u202e", "\ud800", "\r\n", "%", "&",
                           "9" * 30, "-1", "0", "1e9", "2025-02-30", "2025-13-01", "\uffff"])
TEXT = st.one_of(SPECIAL, st.text(max_size=60), st.text(alphabet="党建工作\"- OR:title", max_size=40))
settings.register_profile("searchsvc", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("searchsvc")


def assert_sane(r):
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400 and not r.headers.get("content-type", "").startswith("text/html"):
        body = r.json
        assert set(body["error"]) == {"code", "message", "param"}


@given(endpoint=st.sampled_from(ENDPOINTS),
       params=st.lists(st.tuples(st.sampled_from(PARAMS), TEXT), max_size=6))
def test_any_parameters_give_200_or_a_json_4xx(client, endpoint, params):
    query = urllib.parse.urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in params])
    assert_sane(client.simulate_get(endpoint, query_string=query))


@given(raw=st.binary(max_size=80), endpoint=st.sampled_from(ENDPOINTS))
def test_raw_bytes_and_invalid_percent_escapes(client, raw, endpoint):
    query = "q=" + urllib.parse.quote_from_bytes(raw) + "&q2=%E6%AE&section=%ZZ&page=%FF"
    assert_sane(client.simulate_get(endpoint, query_string=query))


@given(doc_id=st.text(min_size=1, max_size=40))
def test_any_article_id_is_a_404_or_an_article(client, doc_id):
    r = client.simulate_get("/articles/" + urllib.parse.quote(doc_id, safe=""))
    assert r.status_code in (200, 404), r.text


def test_huge_and_repeated_parameters(client):
    r = client.simulate_get("/search", params={"q": "党" * 100_000})
    assert r.status_code == 400 and r.json["error"]["param"] == "q"
    r = client.simulate_get("/search", query_string="q=a&q=b")
    assert r.status_code == 400 and r.json["error"]["param"] == "q"
    r = client.simulate_get("/search", query_string="page=1&page=2")
    assert_sane(r)


def test_wildcards_regex_and_fuzzy_are_literal_text(client):
    # grep-like: these characters are matched as written, never expanded over the lexicon.
    for q in ("党*", "/党.*/", "党建~2", "党?建"):
        body = client.simulate_get("/search", params={"q": f'"{q}"'}).json
        assert body["total"] == 0, q


# ------------------------------------------------------------------ XSS

HOSTILE = [
    {"id": "xss-1", "title": "<script>alert(1)</script>党建标题", "body": "正文 <script>alert(2)</script> 党建"},
    {"id": "xss-2", "title": '"><img src=x onerror=alert(3)> 党建', "body": '党建 "><img src=x onerror=alert(4)>'},
    {"id": "xss-3", "title": "&amp; &lt;b&gt; 党建 </mark>", "body": "党建 </mark><mark> &amp;amp; 结束"},
]


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))


def tags_of(html):
    p = Tags()
    p.feed(html)
    return p.tags


@pytest.fixture(scope="module")
def hostile_client(tmp_path_factory, config, analysis):
    cfg = config.with_(index_dir=tmp_path_factory.mktemp("xss") / "ix")
    corpus = tmp_path_factory.mktemp("xsscorpus") / "hostile.jsonl"
    corpus.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in HOSTILE), encoding="utf-8")
    Indexer(cfg, analysis).index_paths([corpus, EXAMPLE_CORPUS], rebuild=True, workers=1)
    engine = Engine(IndexStore(cfg.index_dir), analysis, reload_interval=0.0, synonyms=Synonyms(None))
    return testing.TestClient(create_app(cfg, engine=engine))


@pytest.mark.parametrize("q", ["党建", "script", "img onerror", "mark", "amp"])
def test_highlights_hold_only_escaped_text_and_marks(hostile_client, q):
    hits = hostile_client.simulate_get("/search", params={"q": q, "per_page": 50}).json["hits"]
    assert hits
    for h in hits:
        for html in (h["title_html"], h["snippet_html"]):
            assert all(tag == "mark" and not attrs for tag, attrs in tags_of(html)), html


def test_article_page_and_body_html_escape_markup(hostile_client):
    for doc in HOSTILE:
        body_html = hostile_client.simulate_get(f"/articles/{doc['id']}", params={"q": "党建"}).json["body_html"]
        assert all(tag == "mark" for tag, _ in tags_of(body_html)), body_html
        page = hostile_client.simulate_get(f"/a/{doc['id']}", params={"q": "党建"})
        scripts = [attrs for tag, attrs in tags_of(page.text) if tag == "script"]
        assert scripts == [[("src", "/static/app.js"), ("defer", None)]]
        assert not any(tag == "img" for tag, _ in tags_of(page.text))
    results = hostile_client.simulate_get("/", params={"q": "党建"})
    assert not any(tag == "img" for tag, _ in tags_of(results.text))
    assert "default-src 'none'" in results.headers["Content-Security-Policy"]


def test_security_headers_on_every_response(client):
    for path in ("/search", "/healthz", "/openapi.json", "/articles/nope", "/static/app.js", "/"):
        r = client.simulate_get(path)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "no-referrer", path


# ------------------------------------------------------------------ time budget

def test_a_query_over_its_budget_is_stopped_with_503(config, engine, analysis, built_index):
    slow = Engine(IndexStore(built_index), analysis, reload_interval=0.0, result_cache_size=0, budget=0.0)
    client = testing.TestClient(create_app(config, engine=slow))
    r = client.simulate_get("/search", params={"q": '"视网消息"'})       # thousands of texts to verify
    assert r.status_code == 503 and r.json["error"]["code"] == "timeout" and r.headers["Retry-After"]
    assert client.simulate_get("/", params={"q": '"视网消息"'}).status_code == 503
    # ...while the same query within budget answers.
    assert testing.TestClient(create_app(config, engine=engine)).simulate_get(
        "/search", params={"q": '"视网消息"'}).status_code == 200
