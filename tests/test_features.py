"""Search-box and editor features: suggestions, corrections, synonyms, related
articles, popular queries, CSV export and full-text highlighting."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

from searchsvc.querylog import QueryLog
from searchsvc.searching import Engine, SearchRequest
from searchsvc.store import IndexStore
from searchsvc.synonyms import Synonyms, parse_synonyms

from conftest import grep, search


def suggestions(client, q, **params):
    r = client.simulate_get("/suggest", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [s["text"] for s in r.json["suggestions"]]


# ------------------------------------------------------------------ /suggest

def test_suggest_completes_a_chinese_prefix(client):
    assert "国际联播快讯" in suggestions(client, "国际联播")


def test_suggest_completes_full_pinyin(client):
    assert suggestions(client, "dangjian")[0] == "党建"


def test_suggest_completes_pinyin_initials_to_a_title(client):
    # 国内联播快讯 is the title of ~200 articles in the slice: g-n-l-b-k-x.
    assert "国内联播快讯" in suggestions(client, "gnlbkx")


def test_suggest_respects_limit_and_requires_q(client):
    assert len(suggestions(client, "新", limit=3)) == 3
    r = client.simulate_get("/suggest")
    assert r.status_code == 400 and r.json["error"]["param"] == "q"


# ------------------------------------------------------------------ did you mean

def all_ids(client, q) -> set[str]:
    """Every hit's id, page by page."""
    out, page = set(), 1
    while True:
        hits = search(client, q, per_page=100, page=page)["hits"]
        out |= {h["id"] for h in hits}
        if len(hits) < 100:
            return out
        page += 1


def test_homophone_typo_gets_a_suggestion_that_is_not_applied(client):
    body = search(client, "残急人", per_page=100, typos="off")     # (on: searched too, see test_typos.py)
    assert body["suggestion"] == "残疾人" and body["query"] == "残急人" and body["corrected"] is None
    corrected = search(client, "残疾人", per_page=100)       # what applying it would answer
    assert (body["total"], [h["id"] for h in body["hits"]]) != (corrected["total"], [h["id"] for h in corrected["hits"]])


def test_pinyin_typed_as_a_query_is_corrected(client):
    assert search(client, "dangjian")["suggestion"] == "党建"


def test_a_query_with_good_results_gets_no_suggestion(client):
    assert search(client, "残疾人")["suggestion"] is None


# ------------------------------------------------------------------ synonyms

def test_synonym_finds_articles_the_bare_word_does_not(client, corpus, analysis):
    articles = corpus[1]
    only_long = grep(articles, "党的建设", analysis.normalizer) - grep(articles, "党建", analysis.normalizer)
    assert only_long, "the slice must hold articles saying 党的建设 but never 党建"
    body = search(client, "党建", per_page=100)
    assert body["expansions"] == {"党建": ["党的建设"]}
    assert only_long <= all_ids(client, "党建")
    exact = search(client, '"党建"', per_page=100)      # phrases are never expanded
    assert exact["expansions"] == {} and exact["total"] < body["total"]


def test_synonyms_file_is_reloaded_without_restart(tmp_path, built_index, analysis):
    path = tmp_path / "synonyms.txt"
    path.write_text("# empty\n", encoding="utf-8")
    engine = Engine(IndexStore(built_index), analysis, reload_interval=0.0,
                    synonyms=Synonyms(path, analysis.normalizer, interval=0.0))
    before = engine.search(SearchRequest(q="残联"))
    assert before.expansions == {}
    path.write_text("残联 => 残疾人\n", encoding="utf-8")
    after = engine.search(SearchRequest(q="残联"))
    assert after.expansions == {"残联": ["残疾人"]} and after.total > before.total


def test_synonym_file_format():
    table = parse_synonyms("a, b, c\nx => y, z  # one-way\n\n# comment\n")
    assert table == {"a": ("b", "c"), "b": ("a", "c"), "c": ("a", "b"), "x": ("y", "z")}


# ------------------------------------------------------------------ related

def test_related_articles_share_terms_and_prefer_the_section(client, corpus):
    source = next(a for a in corpus[1] if "残疾人" in a["title"])
    r = client.simulate_get(f"/articles/{source['id']}/related", params={"limit": 5})
    assert r.status_code == 200, r.text
    related = r.json["related"]
    assert len(related) == 5 and source["id"] not in {h["id"] for h in related}
    assert any("残疾" in h["title"] for h in related)
    assert sum(h["section"] == source["section"] for h in related) >= 3
    assert client.simulate_get("/articles/nope/related").status_code == 404


# ------------------------------------------------------------------ popular + query log

def test_popular_counts_queries_without_personal_data(client):
    for q in ("乡村振兴", "乡村振兴", "乡村振兴", "疫情防控"):
        search(client, q)
    client.app.query_log.flush()
    popular = client.simulate_get("/popular", params={"days": 1, "limit": 100}).json["queries"]
    counts = {p["q"]: p["count"] for p in popular}
    assert counts["乡村振兴"] >= 3 and counts["乡村振兴"] > counts["疫情防控"]
    lines = client.app.query_log.path.read_text(encoding="utf-8").splitlines()
    assert all(set(json.loads(line)) == {"day", "q", "count"} for line in lines)
    assert "乡村振兴" in suggestions(client, "xiangcun")        # popular queries feed autocomplete


def test_query_log_rotates_by_size_and_still_counts(tmp_path):
    log = QueryLog(tmp_path / "q.jsonl", max_bytes=200, keep=2, flush_seconds=0)
    for i in range(30):
        log.record(f"查询{i % 3}")
    files = sorted(tmp_path.iterdir())
    assert {"q.jsonl.1", "q.jsonl.2"} <= {f.name for f in files} <= {"q.jsonl", "q.jsonl.1", "q.jsonl.2"}
    kept = sum(json.loads(line)["count"] for f in files for line in f.read_text().splitlines())
    assert 0 < kept < 30
    assert sum(n for _, n in log.popular(days=1, limit=10, cache_seconds=0)) == kept


def test_a_worker_waiting_for_the_log_while_another_rotates_it_writes_to_the_new_log(tmp_path):
    """Worker A opens the log and waits for its lock while worker B, holding it, rotates the
    log (B's part played here with the lock and the rename it does). A then writes to the
    new log: none of the old files is shifted twice and lost."""
    path = tmp_path / "q.jsonl"
    for name, q in (("q.jsonl", "当前"), ("q.jsonl.1", "旧一"), ("q.jsonl.2", "旧二")):
        (tmp_path / name).write_text(json.dumps({"day": "2026-12-01", "q": q, "count": 1}, ensure_ascii=False)
                                     + "\n", "utf-8")
    a = QueryLog(path, max_bytes=1 << 20, keep=3, flush_seconds=3600)
    a.record("新查询")
    with open(path, "ab") as b:
        fcntl.flock(b, fcntl.LOCK_EX)                  # B holds the log's lock...
        writer = threading.Thread(target=a.flush)
        writer.start()                                 # ...and A opens the log and waits for it
        inode, deadline = os.fstat(b.fileno()).st_ino, time.time() + 10
        while not _waiting_for(inode) and time.time() < deadline:
            time.sleep(0.01)
        assert _waiting_for(inode), "A did not wait for the lock"
        os.replace(tmp_path / "q.jsonl.2", tmp_path / "q.jsonl.3")     # B rotates, as _rotate does
        os.replace(tmp_path / "q.jsonl.1", tmp_path / "q.jsonl.2")
        os.replace(path, tmp_path / "q.jsonl.1")
    writer.join(timeout=10)
    held = {f.name: [json.loads(line)["q"] for line in f.read_text("utf-8").splitlines()]
            for f in tmp_path.iterdir()}
    assert held == {"q.jsonl": ["新查询"], "q.jsonl.1": ["当前"], "q.jsonl.2": ["旧一"], "q.jsonl.3": ["旧二"]}


def _waiting_for(inode: int) -> bool:
    """Whether some process waits for a lock on the file ``inode`` (a "->" line of /proc/locks)."""
    return any("->" in line and f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines())


# ------------------------------------------------------------------ export

def test_csv_export_streams_the_whole_result(client):
    total = search(client, "残疾人")["total"]
    r = client.simulate_get("/search", params={"q": "残疾人", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="search-')
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["id", "title", "date", "section", "source", "url"]
    assert len(rows) - 1 == total > 10


def test_csv_export_is_capped(client, config, engine):
    from falcon import testing
    from searchsvc.app import create_app
    small = testing.TestClient(create_app(config.with_(max_export_rows=7), engine=engine))
    r = small.simulate_get("/search", params={"q": "新闻", "format": "csv"})
    assert len(r.content.decode("utf-8-sig").strip().splitlines()) == 1 + 7


# ------------------------------------------------------------------ body_html

class MarkOnly(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.marked = set(), []
        self._in = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self._in = tag == "mark"

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.marked.append(data)


def test_article_with_q_marks_every_match_in_the_body(client, corpus):
    source = next(a for a in corpus[1] if a["body"].count("残疾人") >= 2)
    r = client.simulate_get(f"/articles/{source['id']}", params={"q": "残疾人"})
    parser = MarkOnly()
    parser.feed(r.json["body_html"])
    assert parser.tags == {"mark"}
    assert parser.marked.count("残疾人") == source["body"].count("残疾人")
    assert "body_html" not in client.simulate_get(f"/articles/{source['id']}").json
