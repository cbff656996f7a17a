"""The HTTP edge under a real gunicorn (`searchsvc serve`): raw UTF-8 URLs as people type
them, the documented query length, gunicorn's own refusals as JSON, chunked bodies,
metrics summed over workers, JSON access lines; and the gunicorn internals the worker
adapter relies on, pinned."""

from __future__ import annotations

import http.client
import inspect
import json
import socket
import subprocess
import urllib.parse

import pytest
from conftest import serving

from searchsvc import gunicorn_conf, gunicorn_worker
from searchsvc.config import Config
from searchsvc.contract import MAX_QUERY_CHARS

TOKEN = "edge-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two workers over the bundled examples, writes on; yields (base URL, host, port, proc)."""
    tmp = tmp_path_factory.mktemp("edge")
    env = {"SEARCHSVC_WRITE_TOKEN": TOKEN, "SEARCHSVC_RELOAD_INTERVAL": "0", "TMPDIR": str(tmp)}
    with serving(tmp / "ix", env=env) as (base, proc):
        url = urllib.parse.urlsplit(base)
        yield base, url.hostname, url.port, proc, tmp
    assert not list(tmp.glob("searchsvc-metrics-*")), "the metrics directory is removed at exit"
    # One JSON access line, with our id (the app's; gunicorn writes none of its own)
    assert proc.output.count('"request_id": "edge-req-1"') == 1
    assert '"GET /suggest' not in proc.output


def raw_request(host, port, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are; (status, headers, body) of the answer."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def curl(*args) -> tuple[int, str]:
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, timeout=30,
                         check=True).stdout.decode()
    body, _, code = out.rpartition("\n")
    return int(code), body


def test_curl_with_raw_chinese_in_the_url_is_served(server):
    base = server[0]
    status, body = curl(f"{base}/search?q=党建&per_page=2")
    assert status == 200 and json.loads(body)["query"] == "党建" and json.loads(body)["total"] >= 1
    status, body = curl("-H", "X-Request-Id: edge-req-1", f"{base}/suggest?q=党")
    assert status == 200 and json.loads(body)["query"] == "党"
    status, body = curl("-I", f"{base}/a/study-session?q=创先争优")
    assert status == 200


def test_the_documented_query_length_fits_percent_encoded(server):
    _, host, port, _, _ = server
    q = "党" * MAX_QUERY_CHARS                     # 9,000 bytes percent-encoded
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/search?" + urllib.parse.urlencode({"q": q, "section": "新闻联播"}))
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["query"] == q


@pytest.mark.parametrize("request_bytes,status,code", [
    (b"GET /search?q=" + b"%E5%85%9A" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /search?q=x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET /search?q=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_line"),
    (b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
])
def test_what_gunicorn_refuses_is_answered_in_the_json_error_shape(server, request_bytes, status, code):
    _, host, port, _, _ = server
    got, headers, body = raw_request(host, port, request_bytes)
    assert got == status and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and set(error) == {"code", "message", "param"}
    if code == "bad_request_line":
        assert "percent-encode" in error["message"] or "percent-encoded" in error["message"]


def test_chunked_put_and_bulk_bodies_are_read(server):
    _, host, port, _, _ = server
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    article = json.dumps({"title": "分块传输的文章", "body": "分块上传的正文内容"}, ensure_ascii=False).encode()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("PUT", "/articles/chunked-1", body=iter([article[:10], article[10:]]), headers=auth,
                 encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 201, r.read()
    r.read()
    lines = [json.dumps({"id": "chunked-2", "title": "批量分块", "body": "第二篇"}, ensure_ascii=False),
             json.dumps({"delete": "chunked-1"})]
    conn.request("POST", "/articles/bulk", body=iter(line.encode() + b"\n" for line in lines),
                 headers={**auth, "Content-Type": "application/x-ndjson"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200
    assert [x["result"] for x in json.loads(r.read())["results"]] == ["created", "deleted"]
    for doc_id, status in (("chunked-2", 200), ("chunked-1", 404)):
        for _ in range(4):                        # a new connection each: whichever worker answers
            fresh = http.client.HTTPConnection(host, port, timeout=30)
            fresh.request("GET", f"/articles/{doc_id}")
            r = fresh.getresponse()
            r.read()
            fresh.close()
            assert r.status == status, doc_id


def test_every_worker_answers_the_state_a_write_just_acknowledged(server):
    """PUT, PUT, DELETE and GET of one id, each request on a new connection so that either
    worker may answer it (Schemathesis's stateful use-after-free sequence): with the reload
    interval at 0, a read right after an acknowledged write sees it, whichever worker reads.
    (Both workers do answer such requests: with a 1 s reload interval this test fails.)"""
    _, host, port, _, _ = server

    def once(method, path, article=None):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        body = None if article is None else json.dumps(article, ensure_ascii=False).encode()
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                       "Content-Type": "application/json"})
        r = conn.getresponse()
        answer = (r.status, r.read())
        conn.close()
        return answer

    for i in range(8):
        path = f"/articles/ryw-{i}"
        for expected, title in ((201, f"读写一致 {i}"), (200, f"读写一致 {i} 修订")):
            assert once("PUT", path, {"title": title, "body": "正文"})[0] == expected
            for _ in range(3):
                status, body = once("GET", path)
                assert status == 200 and json.loads(body)["title"] == title, (path, status)
        assert once("DELETE", path)[0] == 200
        for _ in range(3):
            assert once("GET", path)[0] == 404, f"{path} still served after its DELETE was acknowledged"


def test_metrics_sum_all_workers(server):
    base, host, port, _, _ = server
    before = _sample(curl(f"{base}/metrics")[1], 'searchsvc_http_requests_total{method="GET",route="/healthz",'
                                                 'status="200"}')
    for _ in range(12):                           # a new connection each: both workers answer some
        assert curl(f"{base}/healthz")[0] == 200
    status, text = curl("-i", f"{base}/metrics")
    assert status == 200 and "text/plain; version=0.0.4" in text
    after = _sample(text, 'searchsvc_http_requests_total{method="GET",route="/healthz",status="200"}')
    assert after - before == 12
    assert _sample(text, "searchsvc_index_documents") == json.loads(curl(f"{base}/healthz")[1])["documents"]
    assert "searchsvc_http_request_duration_seconds_bucket" in text and "searchsvc_index_age_seconds" in text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ------------------------------------------------------------------ the adapter's gunicorn internals

def test_utf8_targets_are_percent_encoded_and_other_bytes_left_to_gunicorn():
    assert gunicorn_worker.encode_target("GET /search?q=党建&x=%20 HTTP/1.1".encode()) == \
        b"GET /search?q=%E5%85%9A%E5%BB%BA&x=%20 HTTP/1.1"
    assert gunicorn_worker.encode_target(b"GET /q=\xff HTTP/1.1") == b"GET /q=\xff HTTP/1.1"
    assert gunicorn_worker.encode_target(b"GET /\x01 HTTP/1.1") == b"GET /\x01 HTTP/1.1"


def test_the_gunicorn_internals_the_worker_uses_are_still_there():
    from gunicorn.http import errors, message, parser
    from gunicorn.workers import base, gthread
    assert list(inspect.signature(message.Request.read_line).parameters) == ["self", "unreader", "buf", "limit"]
    assert list(inspect.signature(message.Request.parse_request_line).parameters) == ["self", "line_bytes"]
    assert parser.RequestParser.mesg_class is message.Request
    assert "self.mesg_class(" in inspect.getsource(parser.Parser)
    assert "http.get_parser(self.cfg, self.sock, self.client)" in inspect.getsource(gthread.TConn.init)
    assert "TConn(self.cfg" in inspect.getsource(gthread.ThreadWorker)
    assert "self.enqueue_req(conn)" in inspect.getsource(gthread.ThreadWorker.accept)
    assert list(inspect.signature(base.Worker.handle_error).parameters) == ["self", "req", "client", "addr", "exc"]
    # gunicorn still lowers the request-line limit to 8190: the override is still needed.
    assert message.MAX_REQUEST_LINE == 8190
    # The access line is the app's: gunicorn's logger hook, which the worker calls per request, does nothing.
    from gunicorn import glogging
    assert list(inspect.signature(glogging.Logger.access).parameters) == \
        ["self", "resp", "req", "environ", "request_time"]
    assert "self.log.access(resp, req, environ" in inspect.getsource(gthread.ThreadWorker)
    assert gunicorn_conf.settings(Config())["logger_class"] == "searchsvc.gunicorn_worker.AppLogger"
    assert gunicorn_worker.refusal(errors.LimitRequestLine(9000, 8190))[0] == 414
    # The master's loop calls manage_workers at least once a second (ReleasingArbiter checks the
    # index there), and BaseApplication.run is what SearchServer.run replaces.
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    loop = inspect.getsource(Arbiter.run)
    assert "self.wait_for_signals(timeout=1.0)" in loop and "self.manage_workers()" in loop
    assert "Arbiter(self).run()" in inspect.getsource(BaseApplication.run)
    # A worker's hooks find its app in Worker.wsgi; post_worker_init runs once the worker has its
    # own signal handlers (gunicorn_conf opens the index there: a stop meanwhile is not lost).
    init = inspect.getsource(base.Worker.init_process)
    assert init.index("self.init_signals()") < init.index("self.load_wsgi()") < init.index(
        "self.cfg.post_worker_init(self)")
    assert "self.wsgi = self.app.wsgi()" in inspect.getsource(base.Worker.load_wsgi)
    hooks = gunicorn_conf.settings(Config())
    assert hooks["post_worker_init"] is gunicorn_conf.post_worker_init and "post_fork" not in hooks
    # A USR2 upgrade execs in cfg.env_orig, read after the pre_exec hook (gunicorn_worker.pre_exec_in).
    reexec = inspect.getsource(Arbiter.reexec)
    assert reexec.index("self.cfg.pre_exec(self)") < reexec.index("environ = self.cfg.env_orig.copy()")
    assert "os.execvpe(self.START_CTX[0], self.START_CTX['args'], environ)" in reexec
