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
import threading
import time
import urllib.parse

import pytest
from conftest import serving

from searchsvc import gunicorn_conf, gunicorn_worker
from searchsvc.asgi_bridge import InlineWSGI
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


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """One worker (what it does, nobody else does meanwhile), writes on, bodies up to 256 KiB,
    a 3 s timeout; yields (host, port)."""
    tmp = tmp_path_factory.mktemp("one")
    env = {"SEARCHSVC_WRITE_TOKEN": TOKEN, "SEARCHSVC_MAX_BODY_BYTES": str(256 << 10), "TMPDIR": str(tmp),
           "SEARCHSVC_WORKER_TIMEOUT": "3"}     # gunicorn waits this long for a body's next bytes
    with serving(tmp / "ix", workers=1, env=env) as (base, proc):
        url = urllib.parse.urlsplit(base)
        yield url.hostname, url.port
    assert '"status": 500' not in proc.output and "Error answered" not in proc.output


def _search(host, port, q="党建") -> int:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/search?" + urllib.parse.urlencode({"q": q}))
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def test_a_client_that_sends_slowly_holds_up_nobody(one_worker):
    """Searches run on the worker's event loop, which reads every socket: a request that
    has not fully arrived takes no worker's time, and is answered once it has."""
    host, port = one_worker
    with socket.create_connection((host, port), timeout=10) as slow:
        slow.sendall(b"GET /search?q=%E5%85%9A")            # ...and nothing more for now
        started = time.monotonic()
        assert [_search(host, port) for _ in range(3)] == [200, 200, 200]
        assert time.monotonic() - started < 5
        slow.sendall(b"%E5%BB%BA HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and '"query":"党建"'.encode() in answer


def test_searches_are_answered_while_a_bulk_write_runs(one_worker):
    """A write runs on a thread beside the event loop: a bulk load being segmented and
    committed does not hold up the worker's searches."""
    host, port = one_worker
    lines = [json.dumps({"id": f"bulk-{i}", "title": f"批量写入期间的检索 {i}",
                         "body": "基层党组织建设与乡村振兴工作推进会召开。" * 40}, ensure_ascii=False)
             for i in range(60)]
    done = {}

    def bulk():
        conn = http.client.HTTPConnection(host, port, timeout=120)
        conn.request("POST", "/articles/bulk", body="\n".join(lines).encode(),
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
        r = conn.getresponse()
        done["status"], done["at"] = r.status, time.monotonic()
        r.read()

    writer = threading.Thread(target=bulk)
    writer.start()
    answered = []
    while writer.is_alive() and len(answered) < 20:
        assert _search(host, port, "乡村振兴") == 200
        answered.append(time.monotonic())
    writer.join(timeout=120)
    assert done["status"] == 200
    during = [t for t in answered if t < done["at"]]
    assert during, "the bulk load ended before any search: it did not take long enough to show anything"
    assert len(during) >= 2, "searches waited for the bulk write"


def test_a_client_that_leaves_mid_body_costs_nothing(one_worker):
    """A PUT whose client goes away before its body is whole is not applied, nor answered
    or logged as an error (the fixture checks the log), and the worker goes on."""
    host, port = one_worker
    body = json.dumps({"title": "半途而废", "body": "没有发完的正文"}, ensure_ascii=False).encode()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"PUT /articles/left-early HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body[:10])
    time.sleep(0.3)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/articles/left-early")
    r = conn.getresponse()
    r.read()
    assert r.status == 404
    assert _search(host, port) == 200


def _exchange(host, port, request: bytes, wait: float = 10) -> tuple[bytes, float]:
    """Send ``request`` (and nothing more); the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=wait) as s:
        s.sendall(request)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer, time.monotonic() - started


def _put(doc_id: str, length: int, sent: bytes, token: str | None = TOKEN) -> bytes:
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    return (b"PUT /articles/" + doc_id.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length + sent)


def test_a_write_is_refused_before_its_body_is_read(one_worker):
    """The app answers an unauthorised write, or one whose length is over the limit, at
    once: its body is never waited for nor held in memory."""
    host, port = one_worker
    answer, took = _exchange(host, port, _put("no-token", 1000, b'{"title"', token=None))
    assert answer.startswith(b"HTTP/1.1 401") and took < 2
    answer, took = _exchange(host, port, _put("too-long", 10 ** 9, b'{"title"'))
    assert answer.startswith(b"HTTP/1.1 413") and took < 2
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "payload_too_large"


def test_a_body_that_stops_arriving_is_answered_408_and_not_applied(one_worker):
    host, port = one_worker
    answer, took = _exchange(host, port, _put("stalled", 1000, b'{"title": "'))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower(), head
    assert json.loads(body)["error"]["code"] == "request_timeout" and took < 9
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/articles/stalled")
    assert conn.getresponse().status == 404


def test_a_websocket_handshake_is_refused_and_the_worker_goes_on(one_worker):
    host, port = one_worker
    answer, _ = _exchange(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert _search(host, port) == 200


def test_a_body_over_the_limit_is_refused_without_reading_it_all(one_worker):
    """A chunked body (no length to refuse up front) is read up to the limit, then answered
    413 and the connection closed: the rest is never buffered."""
    host, port = one_worker
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /articles/bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 16384
        answer = b""
        s.settimeout(0.5)
        for _ in range(64):                  # up to 1 MiB, 4 x the limit, unless answered before
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:                  # closed by the server: the answer is in
                break
            try:
                answer += s.recv(65536)
            except TimeoutError:
                continue
            if b"\r\n\r\n" in answer:
                break
        s.settimeout(10)
        try:
            while part := s.recv(65536):
                answer += part
        except OSError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert b"connection: close" in head.lower()
    assert _search(host, port) == 200


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
    assert gunicorn_worker.encode_target("/search?q=党建&x=%20".encode()) == b"/search?q=%E5%85%9A%E5%BB%BA&x=%20"
    assert gunicorn_worker.encode_target(b"/q=\xff") == b"/q=\xff"
    assert gunicorn_worker.encode_target(b"/\x01") == b"/\x01"


def test_reads_without_a_body_run_on_the_event_loop_and_the_rest_beside_it():
    def inline(method, path, query=b"", headers=()):
        return InlineWSGI.inline({"method": method, "path": path, "query_string": query, "headers": list(headers)})
    assert inline("GET", "/search", b"q=x&format=json") and inline("HEAD", "/search")
    assert inline("GET", "/articles/a-1") and inline("OPTIONS", "/articles/a-1")
    assert inline("GET", "/search", b"q=x", [(b"content-length", b"0")])
    # CSV exports, however the parameter is spelled; anything with a body; writes.
    assert not inline("GET", "/search", b"q=x&format=csv") and not inline("GET", "/search", b"format=%63sv")
    assert not inline("POST", "/search", headers=[(b"content-length", b"20")])
    assert not inline("GET", "/search", headers=[(b"transfer-encoding", b"chunked")])
    assert not any(inline(m, "/articles/a-1") for m in ("PUT", "DELETE"))
    assert not inline("POST", "/articles/bulk")


def test_the_worker_reads_targets_through_gunicorn_h1c_percent_encoded():
    """gunicorn_h1c takes UTF-8 targets as sent; gunicorn checks them when it builds the
    request from the parser, where Utf8Target hands them over percent-encoded."""
    import gunicorn_h1c
    from gunicorn.asgi.parser import CallbackRequest
    built = []
    parser = gunicorn_worker.Utf8Target(gunicorn_h1c.H1CProtocol(
        on_headers_complete=lambda: built.append(CallbackRequest.from_parser(parser)),
        on_body=lambda chunk: None, on_message_complete=lambda: None, limit_request_line=20_000,
        limit_request_fields=100, limit_request_field_size=8190))
    parser.feed("GET /a/文章?q=党建 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert built[0].raw_path == b"/a/%E6%96%87%E7%AB%A0" and built[0].path == "/a/文章"
    assert built[0].query == "q=%E5%85%9A%E5%BB%BA"


def test_the_master_builds_what_workers_would_each_build_before_forking(config, built_index):
    """The workers inherit the open index, the vocabulary and the OpenAPI id pattern (0.3 s,
    which a worker's first /openapi.json would otherwise spend with its other requests waiting)."""
    import gc
    from searchsvc import contract
    from searchsvc.server import SearchServer
    contract.id_pattern.cache_clear()
    try:
        app = SearchServer(config, {"workers": 1}).load()
    finally:
        gc.unfreeze()
    assert isinstance(app, InlineWSGI) and app.engine.lexicon(wait=False) is not None
    assert contract.id_pattern.cache_info().currsize == 1


def test_the_gunicorn_internals_the_worker_uses_are_still_there():
    from gunicorn.asgi import protocol
    from gunicorn.workers import base, gasgi
    # The worker's connections are built by the name JsonEdgeWorker replaces, with the worker.
    assert "lambda: ASGIProtocol(self)" in inspect.getsource(gasgi.ASGIWorker._serve)
    # The parser is made in _setup_callback_parser and read where the request is built.
    setup = inspect.getsource(protocol.ASGIProtocol._setup_callback_parser)
    assert "self._callback_parser = parser_class(**parser_kwargs)" in setup
    assert "CallbackRequest.from_parser(\n            self._callback_parser" in inspect.getsource(
        protocol.ASGIProtocol._on_headers_complete)
    # ...with the configured request-line limit, above the WSGI parser's 8,190 ceiling.
    assert "'limit_request_line': limit_request_line" in setup
    # gunicorn_h1c is chosen from what the base class found (hence the worker's check there).
    assert "ASGIProtocol._h1c_has_limits" in setup
    assert "cls._h1c_has_limits = " in inspect.getsource(protocol.ASGIProtocol._check_h1c_protocol_available)
    # Every refusal goes through one method.
    assert list(inspect.signature(protocol.ASGIProtocol._send_error_response).parameters) == \
        ["self", "status", "message", "extra_headers"]
    assert hasattr(protocol.ASGIProtocol, "_safe_write")
    assert gunicorn_worker.refusal(414, "x")[:2] == ("URI Too Long", "uri_too_long")
    assert gunicorn_worker.refusal(400, "Invalid request line")[1] == "bad_request_line"
    # A bare WSGI app is wrapped where the worker loads it; the heartbeat is Worker.notify.
    assert "self.asgi = self.app.wsgi()" in inspect.getsource(gasgi.ASGIWorker.load_wsgi)
    assert "self.tmp.notify()" in inspect.getsource(base.Worker.notify)
    assert "self.notify()" in inspect.getsource(gasgi.ASGIWorker._serve)
    # The access line is the app's: gunicorn's logger hook, called only when its access log is on, does nothing.
    from gunicorn import glogging
    assert list(inspect.signature(glogging.Logger.access).parameters) == \
        ["self", "resp", "req", "environ", "request_time"]
    assert "if access_log_enabled:" in inspect.getsource(protocol.ASGIProtocol._handle_http_request)
    assert gunicorn_conf.settings(Config())["logger_class"] == "searchsvc.gunicorn_worker.AppLogger"
    # The master's loop calls manage_workers at least once a second (ReleasingArbiter checks the
    # index there), and BaseApplication.run is what SearchServer.run replaces.
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    loop = inspect.getsource(Arbiter.run)
    assert "self.wait_for_signals(timeout=1.0)" in loop and "self.manage_workers()" in loop
    assert "Arbiter(self).run()" in inspect.getsource(BaseApplication.run)
    # A worker's hooks find its app in Worker.asgi; post_worker_init runs once the worker has its
    # own signal handlers (gunicorn_conf opens the index there: a stop meanwhile is not lost).
    init = inspect.getsource(base.Worker.init_process)
    assert init.index("self.init_signals()") < init.index("self.load_wsgi()") < init.index(
        "self.cfg.post_worker_init(self)")
    assert "self.asgi = self.app.wsgi()" in inspect.getsource(gasgi.ASGIWorker.load_wsgi)
    assert "super().init_process()" in inspect.getsource(gasgi.ASGIWorker.init_process)
    hooks = gunicorn_conf.settings(Config())
    assert hooks["post_worker_init"] is gunicorn_conf.post_worker_init and "post_fork" not in hooks
    # A USR2 upgrade execs in cfg.env_orig, read after the pre_exec hook (gunicorn_worker.pre_exec_in).
    reexec = inspect.getsource(Arbiter.reexec)
    assert reexec.index("self.cfg.pre_exec(self)") < reexec.index("environ = self.cfg.env_orig.copy()")
    assert "os.execvpe(self.START_CTX[0], self.START_CTX['args'], environ)" in reexec
