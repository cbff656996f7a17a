"""The write API: bearer token, upserts and deletes, validation, limits, busy index,
and the journal that carries API writes through a rebuild."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from falcon import testing

from searchsvc import store as store_module
from searchsvc.app import create_app
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.indexing import Indexer
from searchsvc.parsing import article_from_dict
from searchsvc.searching import Engine
from searchsvc.store import IndexStore
from searchsvc.synonyms import Synonyms

import writeutil as wu

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def article(doc_id, title="写入测试文章", body="基层党组织开展主题党日活动，写入接口测试正文。", **extra):
    return {"id": doc_id, "title": title, "body": body, "section": "工作动态 > 机关党建",
            "date": "2026-11-20T09:30", "source": "测试", **extra}


@pytest.fixture()
def writable(tmp_path, config, analysis):
    """An app over a fresh index of the example corpus, with the write API on."""
    cfg = config.with_(index_dir=tmp_path / "ix", write_token=TOKEN, write_lock_wait=0.5,
                       max_body_bytes=64 * 1024, query_log=tmp_path / "q.jsonl")
    Indexer(cfg, analysis).index_paths([EXAMPLE_CORPUS], rebuild=True, workers=1)
    engine = Engine(IndexStore(cfg.index_dir), analysis, reload_interval=0.0,
                    synonyms=Synonyms(None))
    return testing.TestClient(create_app(cfg, engine=engine)), cfg


def put(client, doc_id, body, headers=AUTH):
    return client.simulate_put(f"/articles/{doc_id}", body=json.dumps(body, ensure_ascii=False),
                               headers={**headers, "Content-Type": "application/json"})


def ids_for(client, q):
    return [h["id"] for h in client.simulate_get("/search", params={"q": q, "per_page": 100}).json["hits"]]


def test_writes_are_disabled_without_a_configured_token(client):
    r = put(client, "x1", article("x1"))
    assert r.status_code == 403 and r.json["error"]["code"] == "writes_disabled"


def test_a_wrong_or_missing_token_is_401(writable):
    client, _ = writable
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        r = put(client, "x1", article("x1"), headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.simulate_delete("/articles/study-session").status_code == 401


def test_put_creates_then_updates_and_is_searchable_at_once(writable):
    client, _ = writable
    r = put(client, "cms/2026/001", article("cms/2026/001"))
    assert r.status_code == 201 and r.json == {"id": "cms/2026/001", "result": "created"}
    assert ids_for(client, "\"写入接口测试\"") == ["cms/2026/001"]
    r = put(client, "cms/2026/001", article("cms/2026/001", body="内容已更新：乡村振兴示范点。"))
    assert r.status_code == 200 and r.json["result"] == "updated"
    assert ids_for(client, "\"写入接口测试\"") == []
    assert ids_for(client, "乡村振兴示范点") == ["cms/2026/001"]           # one copy, new text
    assert client.simulate_get("/articles/cms/2026/001").json["body"] == "内容已更新：乡村振兴示范点。"


def test_delete_removes_and_then_is_404(writable):
    client, _ = writable
    doc = "study-session"
    assert client.simulate_delete(f"/articles/{doc}", headers=AUTH).json == {"id": doc, "result": "deleted"}
    assert client.simulate_get(f"/articles/{doc}").status_code == 404
    r = client.simulate_delete(f"/articles/{doc}", headers=AUTH)
    assert r.status_code == 404 and r.json["error"]["param"] == "id"


@pytest.mark.parametrize("body,param", [
    ({"id": "v1", "body": "正文"}, "title"),
    ({"id": "v1", "title": "标题", "body": "正文", "date": "yesterday"}, "date"),
    ({"id": "other", "title": "标题", "body": "正文"}, "id"),
    ({"id": "v1", "title": "标题", "body": 5}, "body"),
    ({"id": "v1", "title": "标题", "body": "正文", "url": ["x"]}, "url"),
])
def test_invalid_articles_are_422_naming_the_field(writable, body, param):
    client, _ = writable
    r = put(client, "v1", body)
    assert r.status_code == 422, r.text
    assert r.json["error"]["param"] == param and r.json["error"]["code"] == "invalid_article"


def test_bad_json_is_400_and_oversized_bodies_413(writable):
    client, cfg = writable
    r = client.simulate_put("/articles/v1", body=b"{nope", headers=AUTH)
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json"
    big = article("v1", body="长" * cfg.max_body_bytes)
    r = put(client, "v1", big)
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"
    assert client.simulate_get("/articles/v1").status_code == 404


def test_bulk_reports_each_line(writable):
    client, _ = writable
    lines = [json.dumps(article("b1"), ensure_ascii=False), "",
             json.dumps({"delete": "study-session"}),
             json.dumps({"id": "b2", "title": "缺正文"}, ensure_ascii=False),
             "{broken",
             json.dumps(article("b3", title="第二篇"), ensure_ascii=False),
             json.dumps({"delete": "never-existed"})]
    r = client.simulate_post("/articles/bulk", body="\n".join(lines).encode(), headers=AUTH)
    assert r.status_code == 200, r.text
    got = [(x["line"], x["id"], x["result"]) for x in r.json["results"]]
    assert got == [(1, "b1", "created"), (3, "study-session", "deleted"), (4, None, "error"),
                   (5, None, "error"), (6, "b3", "created"), (7, "never-existed", "not_found")]
    assert r.json["errors"] == 2
    assert r.json["results"][2]["error"]["param"] == "body"
    assert client.simulate_get("/articles/b3").json["title"] == "第二篇"


def test_a_busy_index_is_503_with_retry_after(writable):
    client, cfg = writable
    ix = IndexStore(cfg.index_dir).open()
    held = ix.writer()                     # another writer holds Whoosh's lock
    try:
        r = put(client, "busy1", article("busy1"))
        assert r.status_code == 503 and r.headers["Retry-After"] and r.json["error"]["code"] == "index_busy"
    finally:
        held.cancel()
    assert put(client, "busy1", article("busy1")).status_code == 201


def test_writes_wait_out_a_rebuild_swap_then_503(writable):
    client, cfg = writable
    with IndexStore(cfg.index_dir).write_gate(exclusive=True):   # what --rebuild holds while swapping
        r = put(client, "gate1", article("gate1"))
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert put(client, "gate1", article("gate1")).status_code == 201


def test_api_writes_survive_a_rebuild(writable, analysis):
    client, cfg = writable
    assert put(client, "keep-me", article("keep-me", title="重建后仍在")).status_code == 201
    assert client.simulate_delete("/articles/study-session", headers=AUTH).status_code == 200
    Indexer(cfg, analysis).index_paths([EXAMPLE_CORPUS], rebuild=True, workers=1)
    assert client.simulate_get("/articles/keep-me").json["title"] == "重建后仍在"
    assert client.simulate_get("/articles/study-session").status_code == 404
    assert client.simulate_get("/healthz").json["documents"] == 12


def test_ids_are_opaque_never_paths(writable):
    client, _ = writable
    for doc in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "%00", ".."):
        r = client.simulate_get(f"/articles/{doc}")
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_searching_a_segment_with_deleted_articles(tmp_path, config, analysis, big_corpus):
    """A big segment keeps its deletions (no merge): postings are read through Whoosh's filter."""
    cfg = config.with_(index_dir=tmp_path / "ix", write_token=TOKEN)
    Indexer(cfg, analysis).index_articles(
        [article_from_dict(a) for a in big_corpus[1][:1500]], rebuild=True, workers=1)
    engine = Engine(IndexStore(cfg.index_dir), analysis, reload_interval=0.0, synonyms=Synonyms(None))
    client = testing.TestClient(create_app(cfg, engine=engine))
    victim = next(a for a in big_corpus[1][:1500] if "残疾人" in a["title"])
    assert client.simulate_delete(f"/articles/{victim['id']}", headers=AUTH).status_code == 200
    assert any(s.has_deletions() for s in IndexStore(cfg.index_dir).open()._segments())
    r = client.simulate_get("/search", params={"q": "残疾人", "per_page": 100})
    assert r.status_code == 200 and r.json["total"] > 0
    assert victim["id"] not in {h["id"] for h in r.json["hits"]}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=8)
FIELDS = st.fixed_dictionaries({}, optional={k: JSON | st.text(max_size=30) for k in
                                             ("id", "title", "body", "date", "section", "source", "url")})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(FIELDS.map(lambda d: json.dumps(d).encode()), st.binary(max_size=60)),
       doc_id=st.text(min_size=1, max_size=20))
def test_any_write_body_gives_a_result_or_a_json_4xx(writable, body, doc_id):
    client, _ = writable
    path = "/articles/" + urllib.parse.quote(doc_id, safe="")
    for r in (client.simulate_put(path, body=body, headers=AUTH),
              client.simulate_post("/articles/bulk", body=body, headers=AUTH)):
        assert r.status_code in (200, 201, 400, 404, 413, 422), (r.status_code, r.text[:200])
        assert set(r.json) == {"error"} if r.status_code >= 400 else True


def test_an_index_of_schema_4_takes_writes_and_serves_its_records(config, analysis, tmp_path, monkeypatch):
    """Before schema 5 the article record was one of Whoosh's stored fields, and an index's
    TOC keeps the schema it was built with: such an index still takes writes (PUTs, whose
    segments the upserts' policy merges, and a bulk) and serves hits, articles and CSV
    exports from those fields."""
    cfg = wu.make_config(config, tmp_path)
    monkeypatch.setattr(store_module, "build_schema", wu.schema_4)
    wu.rebuild(cfg, analysis, wu.write_corpus(tmp_path / "c.jsonl", 20))
    monkeypatch.undo()
    assert IndexStore(cfg.index_dir).open().schema["doc"].column_type is None     # records: stored fields
    client = wu.app_client(cfg, analysis)
    for n in range(12):
        assert wu.put(client, wu.gen_article(f"put-{n % 4}", n)).status_code in (200, 201)
    assert wu.bulk(client, [wu.gen_article(f"bulk-{i}", i) for i in range(5)]).status_code == 200
    assert len(IndexStore(cfg.index_dir).open()._segments()) < 1 + 12 + 1      # some were merged
    latest = {f"base-{i}": i for i in range(20)} | {f"put-{n % 4}": n for n in range(12)} | \
        {f"bulk-{i}": i for i in range(5)}
    for doc_id, n in latest.items():
        assert wu.served(client, doc_id)[:2] == (wu.gen_article(doc_id, n)["title"], wu.gen_article(doc_id, n)["body"])
    r = client.simulate_get("/search", params={"q": "工作简报", "per_page": 100})
    assert r.json["total"] == len(latest)
    assert {h["id"]: h["title"] for h in r.json["hits"]} == {i: wu.gen_article(i, n)["title"] for i, n in latest.items()}
    csv = client.simulate_get("/search", params={"q": "工作简报", "format": "csv"}).text
    assert all(wu.gen_article(i, n)["title"] in csv for i, n in latest.items())
