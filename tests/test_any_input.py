"""Articles and requests nobody curated: empty and huge articles, odd ids, far dates,
planted queries, and the command line on a real terminal. Runs from the repository
alone (the bundled examples plus articles made here)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from falcon import testing

from searchsvc.app import create_app
from searchsvc.cli import EXAMPLE_CORPUS, main
from searchsvc.config import Config
from searchsvc.highlight import MAX_MARKS
from searchsvc.indexing import Indexer


TOKEN = "any-input"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def make_config(root: Path, **extra) -> Config:
    return Config.from_env(environ={}, index_dir=root / "ix", reload_interval=0.0, write_token=TOKEN,
                           query_log=root / "q.jsonl", **extra)


@pytest.fixture()
def service(tmp_path):
    """The API over a fresh index of the bundled examples, writes on; ``restart()`` builds
    a new app over the same directory, as a restarted server would."""
    config = make_config(tmp_path)
    Indexer(config).index_paths([EXAMPLE_CORPUS], rebuild=True, workers=1)

    class Service:
        def __init__(self):
            self.config = config
            self.restart()

        def restart(self):
            self.client = testing.TestClient(create_app(config))

        def put(self, doc_id, article):
            return self.client.simulate_put(f"/articles/{doc_id}", body=json.dumps(article, ensure_ascii=False),
                                            headers=AUTH)
    return Service()


def ids(client, q, **params):
    return {h["id"] for h in client.simulate_get("/search", params={"q": q, "per_page": 100, **params}).json["hits"]}


# ------------------------------------------------------------------ empty articles

def test_articles_without_body_words_never_brick_the_index(service):
    c = service.client
    assert service.put("photo-1", {"title": "图片新闻：春耕时节", "body": "……"}).status_code == 201
    assert c.simulate_get("/articles/photo-1").json["body"] == "……"
    assert service.put("empty-1", {"title": "图片新闻", "body": ""}).status_code == 201
    assert service.put("later", {"title": "春耕生产有序推进", "body": "各地抢抓农时。"}).status_code == 201
    assert ids(c, "春耕") == {"photo-1", "later"}
    assert ids(c, '"……"') == {"photo-1"}
    health = c.simulate_get("/healthz").json
    assert health["status"] == "ok" and health["index_version"] == health["latest_version"]
    service.restart()
    assert service.client.simulate_get("/healthz").status_code == 200
    assert ids(service.client, "图片新闻") == {"photo-1", "empty-1"}


def test_the_cli_indexes_and_reads_punctuation_only_articles(tmp_path, capsys):
    data = tmp_path / "e.jsonl"
    data.write_text('{"id":"p1","title":"标点正文","body":"……"}\n{"id":"p2","title":"空","body":""}\n', "utf-8")
    ix = tmp_path / "ix"
    assert main(["index", "--quiet", "--index", str(ix), str(data)]) == 0
    assert main(["stats", "--index", str(ix), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["documents"] == 2
    assert main(["search", "--index", str(ix), "--json", "标点"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "p1"


def test_healthz_fails_while_the_latest_version_cannot_be_opened(service):
    c = service.client
    served = c.simulate_get("/healthz").json["index_version"]
    # Another process commits a version whose segment is then damaged on disk.
    Indexer(service.config).index_articles([_article("new-1")], workers=1)
    path = Path(service.config.index_dir).resolve() / "current"
    newest = max(path.resolve().glob("*.seg"), key=os.path.getmtime)
    newest.write_bytes(b"")
    r = c.simulate_get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "stale"
    assert r.json["index_version"] == served != r.json["latest_version"] and r.json["reason"]
    assert c.simulate_get("/search", params={"q": "党建"}).status_code == 200    # still serving the last good one


def _article(doc_id, **extra):
    from searchsvc.parsing import article_from_dict
    return article_from_dict({"id": doc_id, "title": "新增文章", "body": "正文内容", **extra})


# ------------------------------------------------------------------ huge articles

def test_a_huge_article_costs_what_a_short_one_does_per_request(service):
    paragraph = "党的建设是一项伟大工程，基层党组织要认真学习贯彻。" * 40 + "\n"
    body = paragraph * 600 + "结尾处的独特词语盐碱地改良。"               # ~600,000 characters
    assert service.put("huge", {"title": "超长汇编", "body": body, "date": "2024-03-05"}).status_code == 201
    c = service.client
    hit = next(h for h in c.simulate_get("/search", params={"q": "盐碱地改良"}).json["hits"] if h["id"] == "huge")
    assert "<mark>盐碱地</mark>" in hit["snippet_html"] or "<mark>盐碱地改良</mark>" in hit["snippet_html"]
    assert len(re.sub("<[^>]+>", "", hit["snippet_html"])) < 200             # a window, not the body
    marked = c.simulate_get("/articles/huge", params={"q": "党"}).json["body_html"]
    assert marked.count("<mark>") == MAX_MARKS                               # capped, not 24,000
    assert c.simulate_get("/articles/huge/related").status_code == 200
    assert c.simulate_get("/a/huge", params={"q": "的"}).status_code == 200
    assert "huge" in ids(c, '"工程，基层"') and "huge" in ids(c, "盐碱地改良")   # every word of it is found


# ------------------------------------------------------------------ dates and ids

@pytest.mark.parametrize("path", ["/search", "/"])
def test_the_widest_date_range_is_valid(service, path):
    for params in ({"to": "9999-12-31"}, {"from": "0001-01-01", "to": "9999-12-31"}, {"from": "9999-12-31"}):
        r = service.client.simulate_get(path, params={"q": "党建", **params})
        assert r.status_code == 200, (params, r.text)
    r = service.client.simulate_get("/search", params={"q": "党建", "to": "9999-12-31", "format": "csv"})
    assert r.status_code == 200 and r.text.startswith("\ufeffid,title")


def test_a_date_without_time_stays_a_date(service):
    assert service.put("d1", {"title": "日期", "body": "正文", "date": "2024-03-05"}).status_code == 201
    assert service.client.simulate_get("/articles/d1").json["date"] == "2024-03-05"
    page = service.client.simulate_get("/a/d1").text
    assert "2024-03-05" in page and "00:00" not in page


@pytest.mark.parametrize("doc_id", ["%20trail%20", "a%2Fb%2F", "x%E2%80%AEy", "x%E2%80%8By", "x%7Fy", "bulk",
                                    "x/related", "a//b", "a/./b", "x" * 600])
def test_ids_outside_the_grammar_are_422_naming_the_id(service, doc_id):
    r = service.put(doc_id, {"title": "标题", "body": "正文"})
    assert r.status_code in (405, 422), r.text      # bulk and …/related are other resources' URLs
    if r.status_code == 422:
        assert r.json["error"]["param"] == "id"


def test_every_id_has_one_url_no_route_shadows(service):
    c = service.client
    assert service.put("x", {"title": "父文章 党建工作", "body": "党建工作正文"}).status_code == 201
    assert service.put("related", {"title": "名为 related 的文章", "body": "正文"}).status_code == 201
    assert c.simulate_get("/articles/x/related").json["id"] == "x"
    assert c.simulate_get("/articles/related").json["id"] == "related"
    assert c.simulate_put("/articles/x/related", body="{}", headers=AUTH).status_code == 405
    assert c.simulate_get("/articles/x/").status_code == 404          # not the article x
    assert c.simulate_get("/articles/%20x%20").status_code == 404
    bulk = '{"id": "bulk", "title": "t", "body": "b"}'
    r = c.simulate_post("/articles/bulk", body=bulk, headers=AUTH).json
    assert r["errors"] == 1 and r["results"][0]["error"]["param"] == "id"


def test_decomposed_and_composed_ids_are_one_article(service):
    assert service.put("cafe\u0301", {"title": "标题", "body": "正文"}).status_code == 201
    assert service.client.simulate_get("/articles/caf\u00e9").json["id"] == "caf\u00e9"


# ------------------------------------------------------------------ suggestions

def test_negated_text_is_never_offered_to_others(service):
    c = service.client
    for _ in range(3):
        assert c.simulate_get("/search", params={"q": '党建 -"买卖广告位"'}).json["total"] > 0
    c.app.query_log.flush()
    popular = {p["q"] for p in c.simulate_get("/popular", params={"days": 1}).json["queries"]}
    assert popular == {"党建"}
    offered = {s["text"] for s in c.simulate_get("/suggest", params={"q": "dangjian"}).json["suggestions"]}
    assert not any("买卖" in s for s in offered)


def test_popular_reads_the_log_once_per_interval(service):
    log = service.client.app.query_log
    service.client.simulate_get("/search", params={"q": "党建"})
    log.flush()
    first = log.popular(1, 10)
    snapshot = log._snapshot
    answers = {(d, n): log.popular(d, n) for d in range(1, 366, 7) for n in (1, 10, 100)}
    assert log._snapshot is snapshot and answers[(1, 10)] == first == [("党建", 1)]


# ------------------------------------------------------------------ the CLI as a person uses it

@pytest.mark.parametrize("argv", [["-n", "0"], ["-n", "101"], ["-n", "x"], ["--page", "0"]])
def test_search_counts_out_of_range_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", *argv, "党建"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and argv[0] in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--to", "2024-13-01"], ["--from", "x"], ["--from", "2025-01-01", "--to", "2024-01-01"]])
def test_search_bad_dates_are_usage_errors(tmp_path, argv, capsys):
    assert main(["search", "--index", str(tmp_path), *argv, "党建"]) == 2
    err = capsys.readouterr().err
    assert "--from" in err or "--to" in err


@pytest.mark.parametrize("rows,columns", [(30, 100), (0, 0)])     # a terminal; script(1) without one
def test_index_on_a_terminal_shows_progress_and_succeeds(tmp_path, rows, columns):
    """`searchsvc index` under a pseudo-terminal, as a person runs it."""
    import pty
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "index", "--index", str(tmp_path / "ix"),
                             str(EXAMPLE_CORPUS)], stdin=secondary, stdout=secondary, stderr=secondary,
                            close_fds=True)
    os.close(secondary)
    out = b""
    deadline = time.time() + 120
    while time.time() < deadline:
        ready, _, _ = select.select([primary], [], [], 1)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:       # the terminal closed: the command finished
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(primary)
    assert proc.wait(30) == 0, out.decode(errors="replace")
    text = out.decode(errors="replace")
    assert "indexing" in text and "12docs" in text.replace(" ", "")           # the tqdm bar
    assert "indexed 12, updated 0, skipped 0" in text and "Traceback" not in text
