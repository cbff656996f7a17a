"""HTTP conventions through falcon.testing: HEAD, Vary, 304 rules, request ids, metrics,
Chinese HTML messages; the CPU count and gunicorn settings from Config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest
import falcon
from falcon import testing

from searchsvc import gunicorn_conf
from searchsvc.asgi_bridge import InlineWSGI
from searchsvc.app import SearchApp, after_response, create_app
from searchsvc.config import Config, available_cpus
from searchsvc.metrics import journal_length

ARTICLE = "/articles/study-session"


@pytest.mark.parametrize("path", ["/search?q=党建", ARTICLE, ARTICLE + "/related", "/suggest?q=dang", "/popular",
                                  "/sections", "/healthz", "/openapi.json", "/metrics", "/", "/a/study-session",
                                  "/static/app.js"])
def test_head_is_answered_wherever_get_is(client, path):
    get = client.simulate_get(path)
    head = client.simulate_head(path)
    assert get.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["Content-Type"] == get.headers["Content-Type"]


def test_head_of_a_missing_article_is_404(client):
    assert client.simulate_head("/articles/nope").status_code == 404


def test_vary_origin_on_every_answer_when_cors_is_on(client, config, engine):
    for headers in ({}, {"Origin": "https://example.gov.cn"}, {"Origin": "https://evil.example"}):
        r = client.simulate_get("/search", params={"q": "党建"}, headers=headers)
        assert "Origin" in r.headers["Vary"], headers
    plain = testing.TestClient(create_app(config, engine=engine))
    assert "Vary" not in plain.simulate_get("/search", params={"q": "党建"}).headers


def test_if_none_match_star_is_304_only_for_what_exists(client):
    assert client.simulate_get(ARTICLE, headers={"If-None-Match": "*"}).status_code == 304
    missing = client.simulate_get("/articles/nope", headers={"If-None-Match": "*"})
    assert missing.status_code == 404 and "ETag" not in missing.headers
    assert client.simulate_get(ARTICLE + "x/related", headers={"If-None-Match": "*"}).status_code == 404
    r = client.simulate_get(ARTICLE)
    assert client.simulate_get(ARTICLE, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


def test_request_ids_are_echoed_or_made(client):
    r = client.simulate_get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
    made = client.simulate_get("/healthz", headers={"X-Request-Id": "bad id\u00e9" * 20}).headers["X-Request-Id"]
    assert made != "trace-42" and len(made) == 32 and made.isalnum()


def test_access_lines_are_json_with_timestamp_and_request_id(client, caplog):
    with caplog.at_level("INFO", logger="searchsvc.access"):
        client.simulate_get("/popular", headers={"X-Request-Id": "log-me"})
    line = json.loads([r.getMessage() for r in caplog.records if "log-me" in r.getMessage()][0])
    assert line["request_id"] == "log-me" and line["status"] == 200 and line["path"] == "/popular"
    assert line["ts"].endswith("+00:00") and "T" in line["ts"]


def test_bookkeeping_waits_until_the_server_closes_the_answer(client, caplog):
    """The access line, metrics and the query log are written once the server closes the
    response (PEP 3333: after sending it), so the client does not wait for them."""
    app = client.app
    environ = falcon.testing.create_environ(path="/search", query_string="q=残疾人就业",
                                            headers={"X-Request-Id": "after-1"})
    with caplog.at_level("INFO", logger="searchsvc.access"):
        body = app(environ, lambda status, headers, exc_info=None: None)
        assert json.loads(b"".join(body))["total"] > 0
        assert not any("after-1" in r.getMessage() for r in caplog.records)
        body.close()
    assert [json.loads(r.getMessage())["status"] for r in caplog.records if "after-1" in r.getMessage()] == [200]


def test_failing_bookkeeping_is_logged_and_the_answer_stands(caplog):
    class Counted:
        def on_get(self, req, resp):
            after_response(req, lambda: 1 / 0)
            resp.media = {"ok": True}
    app = SearchApp()
    app.add_route("/x", Counted())
    with caplog.at_level("ERROR", logger="searchsvc"):
        r = testing.TestClient(app).simulate_get("/x")
    assert r.status_code == 200 and r.json == {"ok": True}
    assert any("after-response work failed" in rec.getMessage() for rec in caplog.records)


def test_the_bridge_closes_the_answer_after_sending_it():
    """gunicorn's asyncio worker calls the bridge; what the app left for after the answer
    runs once the whole body was handed to the transport."""
    sent, seen_at_close = [], []

    class Body(list):
        def close(self):
            seen_at_close.append([m["type"] for m in sent])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"hello"])

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "headers": []}
    asyncio.run(InlineWSGI(app)(scope, receive, send))
    assert seen_at_close == [["http.response.start", "http.response.body"]]
    assert sent[-1]["body"] == b"hello"


def test_a_request_cancelled_on_its_thread_still_closes_its_answer():
    """gunicorn cancels a request's task when its client leaves (after a grace period) or at
    shutdown; a write or POST search running on a thread finishes anyway, and its access
    line and metrics must not be lost with the answer nobody reads."""
    closed, started = [], threading.Event()

    class Body(list):
        def close(self):
            closed.append(threading.current_thread().name)

    def app(environ, start_response):
        environ["wsgi.input"].read()
        started.set()
        time.sleep(0.3)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"done"])

    async def main():
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            raise AssertionError("a cancelled request sends nothing")

        scope = {"type": "http", "method": "POST", "path": "/search", "raw_path": b"/search",
                 "query_string": b"", "headers": [(b"content-length", b"2")]}
        task = asyncio.ensure_future(InlineWSGI(app)(scope, receive, send))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if closed:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(closed) == 1 and closed[0].startswith("searchsvc-offloop")


def test_an_answer_closed_twice_does_its_bookkeeping_once(client, caplog):
    environ = falcon.testing.create_environ(path="/popular", headers={"X-Request-Id": "twice-1"})
    with caplog.at_level("INFO", logger="searchsvc.access"):
        body = client.app(environ, lambda status, headers, exc_info=None: None)
        b"".join(body)
        body.close()
        body.close()
    assert sum("twice-1" in r.getMessage() for r in caplog.records) == 1


def test_writes_to_related_are_405(client):
    r = client.simulate_put(ARTICLE + "/related", json={"title": "x", "body": "y"})
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_metrics_count_searches_by_outcome_and_describe_the_index(client):
    before = _samples(client.simulate_get("/metrics").text)
    client.simulate_get("/search", params={"q": "残疾人就业"})
    client.simulate_get("/search", params={"q": "绝对不会出现的词语组合乙丙丁"})
    r = client.simulate_get("/metrics")
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = _samples(r.text)
    key = 'searchsvc_searches_total{outcome="%s"}'
    assert after[key % "hits"] - before.get(key % "hits", 0) == 1
    assert after[key % "zero"] + after.get(key % "relaxed", 0) > before.get(key % "zero", 0) + before.get(
        key % "relaxed", 0)
    assert after["searchsvc_index_documents"] == client.simulate_get("/healthz").json["documents"]
    assert 0 <= after['searchsvc_cache_hit_ratio{cache="postings"}'] <= 1
    # Lookups are counted in batches, all flushed before the scrape: every one shows up.
    lookups = 'searchsvc_cache_lookups_total{cache="dictionary",result="%s"}'
    assert sum(after.get(lookups % r, 0) - before.get(lookups % r, 0) for r in ("hit", "miss")) > 0
    assert after['searchsvc_http_requests_total{method="GET",route="/search",status="200"}'] >= 2


def _samples(text: str) -> dict:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_journal_length_in_bytes_and_last_sequence(tmp_path):
    from searchsvc.journal import JOURNAL, frame
    assert journal_length(tmp_path) == (0, 0)
    data = b"".join(frame(r) for r in ({"t": "head", "id": "x"}, {"t": "w", "seq": 1, "ops": []},
                                       {"t": "ok", "seq": 1}, {"t": "w", "seq": 2, "ops": []}))
    (tmp_path / JOURNAL).write_bytes(data)
    assert journal_length(tmp_path) == (len(data), 2)


@pytest.mark.parametrize("query,expected", [("page=abc", "参数有误：page 必须是整数"),
                                            ("page=0", "参数有误：page 必须在 1 到 100 之间"),
                                            ("from=2024-13-01", "参数有误：from 必须是 YYYY-MM-DD 格式的日期"),
                                            ("sort=random", "参数有误：sort 只能是 relevance, newest, oldest 之一")])
def test_html_error_messages_are_chinese(client, query, expected):
    r = client.simulate_get("/", query_string=query)
    assert r.status_code == 400 and expected in r.text
    assert "must" not in r.text and "between" not in r.text


def test_html_form_blank_fields_mean_unset(client):
    r = client.simulate_get("/", query_string="q=党建&from=&to=&sort=&page=")
    assert r.status_code == 200 and "参数有误" not in r.text


# ------------------------------------------------------------------ workers from usable CPUs

def test_cgroup_v2_limit_rounds_up_and_caps_affinity(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == min(2, available_cpus(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == available_cpus(tmp_path / "none")


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == available_cpus(tmp_path / "none")


def test_default_workers_follow_the_affinity_mask():
    code = "from searchsvc.config import Config; print(Config.from_env(environ={}).workers)"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "1"


def test_gunicorn_settings_come_from_config():
    config = Config.from_env(environ={"SEARCHSVC_WORKERS": "3", "SEARCHSVC_THREADS": "2",
                                      "SEARCHSVC_SEARCH_BUDGET": "4", "SEARCHSVC_BIND": "0.0.0.0:9000"})
    s = gunicorn_conf.settings(config)
    assert (s["workers"], s["timeout"], s["bind"]) == (3, 20, "0.0.0.0:9000")
    assert s["limit_request_line"] > 9000 and s["http_parser"] == "fast"
    # The asyncio worker has no threads of gunicorn's: the bridge runs writes on config.threads.
    assert "threads" not in s
    bridge = InlineWSGI.for_config(falcon.App(), config)
    assert bridge.write_threads == 2
    assert gunicorn_conf.settings(config.with_(worker_timeout=7))["timeout"] == 7
