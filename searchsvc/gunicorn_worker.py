"""gunicorn's gthread worker, adapted at the HTTP edge (``worker_class`` in gunicorn_conf),
and its master loop, which lets an old index version go (:class:`ReleasingArbiter`).

* Raw UTF-8 in the request target (``curl 'http://host/search?q=党建'``, what people
  type) is percent-encoded before gunicorn checks the line, as a browser would have;
  gunicorn refuses any byte above 0x7F (RFC 9112 wants URIs in ASCII).
* ``limit_request_line`` is honoured above gunicorn's own 8,190-byte ceiling, so the
  documented 1,000-character query fits once percent-encoded (9 bytes a character).
* Whatever gunicorn refuses before the app sees it (a malformed request line, 414,
  431, ...) is answered in the API's JSON error shape instead of gunicorn's HTML page.

This is the one module that uses gunicorn internals (``Request.read_line`` and
``parse_request_line``, ``RequestParser.mesg_class``, ``gthread.TConn.init``,
``Worker.handle_error``, ``Worker.wsgi``, ``Arbiter.manage_workers``, the
``Config.env_orig`` that ``Arbiter.reexec`` starts a USR2 upgrade in); tests/test_http_edge.py
pins them.
It also holds the ``logger_class`` (:class:`AppLogger`), which leaves the access line to the app.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from urllib.parse import quote_from_bytes

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers import gthread

ASCII = bytes(range(0x80))       # everything below 0x80 stays as sent (gunicorn judges it)
access = logging.getLogger("searchsvc.access")

# gunicorn's refusals: exception -> (status, reason, error code, message). First match wins.
REFUSALS = (
    (errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long",
     "the request line is too long; send long queries as JSON with POST /search"),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers_too_large",
     "the request headers are too large"),
    (errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented",
     "unsupported transfer coding"),
    (errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed", "unsupported Expect header"),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden", "request forbidden"),
    (errors.InvalidRequestLine, 400, "Bad Request", "bad_request_line",
     "invalid request line: the target must be ASCII or UTF-8, percent-encoded (q=%E5%85%9A for q=党)"),
    (errors.ParseException, 400, "Bad Request", "bad_request", "malformed HTTP request"),
)


def encode_target(line: bytes) -> bytes:
    """``GET /search?q=党建 HTTP/1.1`` -> ``GET /search?q=%E5%85%9A%E5%BB%BA HTTP/1.1`` when the
    target is valid UTF-8; anything else is returned unchanged (and refused by gunicorn)."""
    parts = line.split(b" ", 2)
    if len(parts) != 3 or parts[1].isascii():
        return line
    try:
        parts[1].decode("utf-8")
    except UnicodeDecodeError:
        return line
    return b" ".join((parts[0], quote_from_bytes(parts[1], safe=ASCII).encode("ascii"), parts[2]))


class Utf8Request(Request):
    def read_line(self, unreader, buf, limit=0):
        # gunicorn lowers any limit_request_line above 8190 to 8190; use the configured one.
        return super().read_line(unreader, buf, self.cfg.limit_request_line or limit)

    def parse_request_line(self, line_bytes):
        return super().parse_request_line(encode_target(bytes(line_bytes)))


class _Conn(gthread.TConn):
    def init(self):
        super().init()
        if type(self.parser) is RequestParser:     # HTTP/1.x (not HTTP/2, not uwsgi)
            self.parser.mesg_class = Utf8Request


def refusal(exc) -> tuple[int, str, str, str] | None:
    for kind, status, reason, code, message in REFUSALS:
        if isinstance(exc, kind) and not isinstance(exc, (errors.InvalidResponseHeader,
                                                          errors.InvalidResponseHeaderName)):
            return status, reason, code, message
    return None


def error_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "param": None}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    return head.encode("latin-1") + body


class JsonEdgeWorker(gthread.ThreadWorker):
    """gthread worker: UTF-8 targets, the configured request-line limit, JSON refusals."""

    def enqueue_req(self, conn):
        if type(conn) is gthread.TConn:
            conn.__class__ = _Conn       # same state, our init(); TConn is built inside accept()
        super().enqueue_req(conn)

    def handle_error(self, req, client, addr, exc):
        found = refusal(exc)
        if found is None:
            self.log.exception("Error handling request %s", getattr(req, "uri", ""))
            found = (500, "Internal Server Error", "internal_error", "internal error")
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        status, reason, code, message = found
        access.info(json.dumps({"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                                "request_id": None, "method": getattr(req, "method", None),
                                "path": getattr(req, "path", None), "status": status, "error": code}))
        try:
            client.sendall(error_response(status, reason, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")


class AppLogger(glogging.Logger):
    """gunicorn's logger without its access line: the app writes one JSON line a request
    (``app.AccessLog``). Because ``logconfig_dict`` is set, gunicorn would otherwise build
    its access record for every request (headers, times, a formatted date), and the
    ``gunicorn.access`` logger, which has no handler, would then drop it. (gunicorn picks
    its statsd logger only when ``logger_class`` is its default: searchsvc's metrics are
    Prometheus's, at ``/metrics``.)"""

    def access(self, resp, req, environ, request_time):
        pass


class ReleasingArbiter(Arbiter):
    """gunicorn's master loop, which also lets the preloaded engine's index view go once a
    newer version is committed (checked every ``reload_interval`` in ``manage_workers``, which
    the master's loop calls at least once a second): the master serves nothing, so it never reopens the view it started
    with, whose files would stay allocated after a rebuild deleted them. A worker forked
    later opens the current version itself (``gunicorn_conf.post_worker_init``)."""

    def __init__(self, app, interval: float):
        super().__init__(app)
        self.interval, self._checked = interval, time.monotonic()

    def manage_workers(self):
        super().manage_workers()
        now = time.monotonic()
        if now - self._checked < self.interval:
            return
        self._checked = now
        engine = getattr(getattr(self.app, "callable", None), "engine", None)    # (the preloaded app's)
        if engine is not None and engine.release_stale():
            self.log.info("index changed: the master let its view of the old version go")


def pre_exec_in(started_in: dict[str, str]):
    """A ``pre_exec`` hook: gunicorn's USR2 upgrade re-executes the command in the
    environment gunicorn saw at start (``cfg.env_orig``), which by then held what
    ``searchsvc serve`` set for itself (its metrics directory, which the old master removes
    when it stops); the new master starts from ``started_in`` instead, the operator's."""
    def pre_exec(server):
        server.cfg.env_orig = dict(started_in)
    return pre_exec


def worker_app(worker):
    """The app a worker loaded (before its ``post_worker_init``), for the hooks."""
    return getattr(worker, "wsgi", None)
