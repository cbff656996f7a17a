"""End to end: `searchsvc serve` as a real gunicorn process, queried over a socket."""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import free_port, serving


@pytest.fixture()
def server(tmp_path):
    with serving(tmp_path / "ix", env={"SEARCHSVC_RELOAD_INTERVAL": "0.2"}) as (base, proc):
        yield base, tmp_path / "ix", proc


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, json.loads(r.read())


def test_serve_builds_the_example_index_and_answers(server):
    base, _, _ = server
    status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
    assert status == 200 and body["total"] >= 1
    assert body["hits"][0]["id"] == "study-session"


def test_workers_pick_up_a_new_index_version_without_restart(server):
    base, ix, _ = server
    before = get(base + "/healthz")[1]
    new = ix.parent / "new.jsonl"
    new.write_text(json.dumps({"id": "late-1", "title": "新发布的文章", "body": "服务运行中写入的独特词汇甲乙丙"},
                              ensure_ascii=False) + "\n", "utf-8")
    subprocess.run([sys.executable, "-m", "searchsvc", "index", "--index", str(ix), str(new)], check=True)
    deadline = time.time() + 10
    seen = set()
    while time.time() < deadline and len(seen) < 6:
        status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "独特词汇甲乙丙"}))
        if body["total"] == 1:
            seen.add(time.time())
        time.sleep(0.1)
    assert len(seen) >= 6      # consistently found, whichever worker answers
    assert get(base + "/healthz")[1]["index_version"] != before["index_version"]


def test_the_app_runs_under_plain_gunicorn(tmp_path):
    from searchsvc.cli import EXAMPLE_CORPUS, main
    assert main(["index", "--quiet", "--index", str(tmp_path / "ix"), str(EXAMPLE_CORPUS)]) == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
                             "searchsvc.wsgi:app"], env={**os.environ, "SEARCHSVC_INDEX": str(tmp_path / "ix")},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/search?" + urllib.parse.urlencode({"q": "两学一做"}))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 200 and body["hits"][0]["id"] == "two-learn"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_gunicorn_limits_url_and_header_length(server):
    import http.client
    base, _, _ = server
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/search?q=" + "a" * 20000)
    r = conn.getresponse()
    assert r.status == 414 and json.loads(r.read())["error"]["code"] == "uri_too_long"
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/search?q=x", headers={"X-Big": "b" * 9000})
    r = conn.getresponse()
    assert r.status == 431 and json.loads(r.read())["error"]["code"] == "headers_too_large"
