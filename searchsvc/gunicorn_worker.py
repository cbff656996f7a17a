"""gunicorn's asyncio (ASGI) worker, adapted at the HTTP edge (``worker_class`` in
gunicorn_conf), and its master loop, which lets an old index version go (:class:`ReleasingArbiter`).

* The worker serves the WSGI app through :mod:`searchsvc.asgi_bridge` (searches inline on
  its event loop, writes on a thread), wrapping a bare WSGI app itself (plain ``gunicorn -c
  python:searchsvc.gunicorn_conf searchsvc.wsgi:app``); its heartbeat beats on a thread.
* Raw UTF-8 in the request target (``curl 'http://host/search?q=党建'``, what people
  type) is percent-encoded before gunicorn checks it, as a browser would have;
  gunicorn refuses any byte above 0x7F (RFC 9112 wants URIs in ASCII).
* Whatever gunicorn refuses before the app sees it (a malformed request line, 414,
  431, ...) is answered in the API's JSON error shape instead of gunicorn's text.

This is the one module that uses gunicorn internals (the ASGI protocol's
``_setup_callback_parser``, ``_callback_parser`` and ``_send_error_response``, the
``ASGIProtocol`` name the worker's ``_serve`` builds its connections with,
``ASGIWorker.load_wsgi`` and ``Worker.asgi``, ``Worker.notify`` from a thread, ``Arbiter.manage_workers``, the ``Config.env_orig`` that ``Arbiter.reexec``
starts a USR2 upgrade in); tests/test_http_edge.py pins them.
It also holds the ``logger_class`` (:class:`AppLogger`), which leaves the access line to the app.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import threading
import time
from http import HTTPStatus
from urllib.parse import quote_from_bytes

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from .asgi_bridge import InlineWSGI
from .config import Config

HEARTBEAT_SECONDS = 1.0          # gunicorn's own loop beats every second
ASCII = bytes(range(0x80))       # everything below 0x80 stays as sent (gunicorn judges it)
access = logging.getLogger("searchsvc.access")

# gunicorn's refusals, by status: (reason phrase, error code, message). The phrases are
# RFC 9110's (Python's HTTPStatus says "Request-URI Too Long" before 3.13). A 400 is a bad
# request line when gunicorn says so (its message), else a malformed request.
REFUSALS = {
    414: ("URI Too Long", "uri_too_long",
          "the request line is too long; send long queries as JSON with POST /search"),
    431: ("Request Header Fields Too Large", "headers_too_large", "the request headers are too large"),
    501: ("Not Implemented", "not_implemented", "unsupported transfer coding"),
    500: ("Internal Server Error", "internal_error", "internal error"),
}
BAD_LINE = ("Bad Request", "bad_request_line",
            "invalid request line: the target must be ASCII or UTF-8, percent-encoded (q=%E5%85%9A for q=党)")
BAD_REQUEST = ("Bad Request", "bad_request", "malformed HTTP request")


def encode_target(target: bytes) -> bytes:
    """``/search?q=党建`` -> ``/search?q=%E5%85%9A%E5%BB%BA`` when the target is valid UTF-8;
    anything else is returned unchanged (and refused by gunicorn)."""
    if target.isascii():
        return target
    try:
        target.decode("utf-8")
    except UnicodeDecodeError:
        return target
    return quote_from_bytes(target, safe=ASCII).encode("ascii")


class Utf8Target:
    """gunicorn's HTTP/1 callback parser, its request target read percent-encoded."""

    def __init__(self, parser):
        object.__setattr__(self, "_parser", parser)

    def __getattr__(self, name):
        return getattr(self._parser, name)

    def __setattr__(self, name, value):
        setattr(self._parser, name, value)

    @property
    def path(self) -> bytes:
        return encode_target(self._parser.path)


def refusal(status: int, message: str) -> tuple[str, str, str]:
    """gunicorn's refusal (status, its own message) -> our (reason phrase, error code, message)."""
    if status == 400:
        return BAD_LINE if "request line" in message.lower() else BAD_REQUEST
    if status in REFUSALS:
        return REFUSALS[status]
    return (HTTPStatus(status).phrase, *(BAD_REQUEST if status < 500 else REFUSALS[500])[1:])


def error_response(status: int, reason: str, code: str, message: str, extra_headers=()) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "param": None}}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n{extra}\r\n")
    return head.encode("latin-1") + body


class JsonEdgeProtocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol: UTF-8 targets, JSON refusals."""

    def _setup_callback_parser(self):
        super()._setup_callback_parser()
        self._callback_parser = Utf8Target(self._callback_parser)

    def _send_error_response(self, status, message, extra_headers=()):
        if self.transport is None or self.transport.is_closing():
            return          # the client left (mid-request, say): nobody to answer, nothing failed
        reason, code, text = refusal(status, str(message))
        peer = self.transport.get_extra_info("peername") or ("",)
        if status == 500:
            self.log.error("Error answered %s to ip=%s: %s", status, peer[0], message)
        else:
            self.log.warning("Invalid request from ip=%s: %s", peer[0], message)
        # A refusal comes before a request exists (the connection's last one is another's);
        # a 500 is about the request being answered.
        request = getattr(self, "_current_request", None) if status == 500 else None
        access.info(json.dumps({"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                                "request_id": None, "method": getattr(request, "method", None),
                                "path": getattr(request, "path", None), "status": status, "error": code},
                               ensure_ascii=False))
        self._safe_write(error_response(status, reason, code, text, extra_headers))


class JsonEdgeWorker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker with :class:`JsonEdgeProtocol` for its connections, a
    WSGI app served through :class:`~searchsvc.asgi_bridge.InlineWSGI`, and its heartbeat
    on a thread of its own."""

    def init_process(self):
        # The worker's _serve builds each connection's protocol by this module name: in this
        # (forked worker) process, ours.
        gasgi.ASGIProtocol = JsonEdgeProtocol
        # gunicorn_h1c's parser, found on the base class: the protocol reads what it found
        # there (after a check on a subclass only, the base's stays unset, and with
        # http_parser "fast" every connection would fail).
        if not ASGIProtocol._check_h1c_protocol_available():
            raise RuntimeError("gunicorn_h1c is missing: pip install gunicorn-h1c")
        # The loop runs a search inline; gunicorn's heartbeat is a task on that loop, so a
        # long request (a first index open or vocabulary at 10^6 articles takes tens of
        # seconds) would get the worker killed. As under the gthread worker, whose main
        # thread beat while a pool thread answered, the heartbeat has its own thread.
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        super().init_process()

    def _beat(self):
        while self.alive:
            self.notify()
            time.sleep(HEARTBEAT_SECONDS)

    def load_wsgi(self):
        super().load_wsgi()
        app = self.asgi
        if not isinstance(app, InlineWSGI) and not (inspect.iscoroutinefunction(app)
                                                     or inspect.iscoroutinefunction(getattr(app, "__call__", None))):
            # A WSGI app (`gunicorn -c python:searchsvc.gunicorn_conf searchsvc.wsgi:app`): the bridge.
            self.asgi = InlineWSGI.for_config(self.asgi, Config.from_env())


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
    """The app a worker loaded (before its ``post_worker_init``), for the hooks: the WSGI
    app behind the worker's ASGI bridge."""
    app = getattr(worker, "asgi", None) or getattr(worker, "wsgi", None)
    return getattr(app, "app", app)
