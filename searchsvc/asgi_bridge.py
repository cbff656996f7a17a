"""The WSGI app served by an asyncio (ASGI) server: reads called inline on the event loop,
anything with a body, and CSV exports, on a thread beside it.

``searchsvc serve`` runs gunicorn's asyncio worker (``gunicorn_worker.JsonEdgeWorker``) with
this in front of the Falcon app, which stays a plain WSGI app (``searchsvc.wsgi``, the
tests' ``falcon.testing``). Why not a thread per request, as gunicorn's gthread worker, or
a2wsgi and asgiref's WSGI adapters do: a search is CPU work that holds the GIL, so a pool
thread adds a hand-off and a wake-up per request and nothing in parallel (×0.87–0.88 on the
dev queries' HTTP p50 without it, see README). The loop reads and writes the sockets, so a
client that sends or reads slowly holds up nobody; a read is only called once its request
has arrived. A request with a body (a write, which may also wait seconds for the write lock
or segment a bulk load; a POST search) or a CSV export runs on a thread, its body streamed
from the loop as the app reads it: the app still refuses an unauthorised or oversized write
before reading its body, and searches go on meanwhile. What runs inline runs one at a time
per worker: a search that takes its whole budget delays the worker's other requests.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote_to_bytes

READS = frozenset(("GET", "HEAD", "OPTIONS"))
SOFTWARE = "searchsvc (gunicorn asyncio worker)"


class BodyIncomplete(Exception):
    """The request's body stopped arriving (the client left, or sent nothing for the
    server's timeout) before the app had read what it asked for: the app answers 408."""


class InlineWSGI:
    """An ASGI app calling ``app`` (WSGI) for each HTTP request: ``app.engine`` and friends
    stay reachable as attributes (gunicorn's hooks look for them)."""

    def __init__(self, app, write_threads: int = 4):
        self.app = app
        self.write_threads = write_threads
        self._pool: ThreadPoolExecutor | None = None    # made in the worker (after the fork)

    @classmethod
    def for_config(cls, app, config) -> "InlineWSGI":
        """``app`` as ``serve`` runs it: writes on ``config.threads`` threads (a
        :class:`searchsvc.config.Config`)."""
        return cls(app, config.threads)

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind == "websocket":         # nothing here speaks it: the handshake is refused (403)
            await send({"type": "websocket.close"})
            return
        environ = self.wsgi_environ(scope)
        if self.inline(scope):
            environ["wsgi.input"] = io.BytesIO(b"")
            status, headers, chunks, close = self.call(environ)
        else:
            loop = asyncio.get_running_loop()
            environ["wsgi.input"] = LoopInput(receive, loop, finished=not _has_body(scope))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.write_threads, thread_name_prefix="searchsvc-offloop")
            done = self._pool.submit(self.call, environ)
            try:
                status, headers, chunks, close = await asyncio.wrap_future(done)
            except asyncio.CancelledError:      # (gunicorn: the client left, or shutdown)
                done.add_done_callback(_close_when_called)     # the call may still finish on its thread
                raise
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            for i, chunk in enumerate(chunks):
                await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})
            if not chunks:
                await send({"type": "http.response.body", "body": b""})
        finally:
            # Once the answer is sent, as WSGI servers do (PEP 3333): what the app left for
            # then (its access line, metrics) is not waited for by the client.
            _close(close)

    @staticmethod
    def inline(scope: dict) -> bool:
        """Whether a request is answered on the event loop: a read without a body, but not
        a CSV export (up to ``max_export_rows`` rows: ~0.4 s for 10,000 at ×1)."""
        if scope["method"] not in READS or _has_body(scope):
            return False
        query = scope.get("query_string", b"")
        return b"format" not in query or "csv" not in parse_qs(query.decode("latin-1")).get("format", ())

    def call(self, environ: dict):
        """The WSGI call: (status, headers, body chunks, the response's ``close`` or None),
        the body read whole (JSON answers are one chunk; a CSV export is bounded by
        ``max_export_rows``). The caller closes the response once it has sent it."""
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        result = self.app(environ, start_response)
        close = getattr(result, "close", None)
        try:
            chunks = [bytes(c) for c in result if c]
        except BaseException:
            if close is not None:
                close()
            raise
        status, headers = started
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        stream = environ["wsgi.input"]
        if isinstance(stream, LoopInput) and not stream.finished:
            out.append((b"connection", b"close"))    # the rest of its body is never read
        return int(status[:3]), out, chunks, close

    @staticmethod
    def wsgi_environ(scope: dict) -> dict:
        """PEP 3333's environ for an ASGI HTTP scope (``wsgi.input`` is the caller's), as
        gunicorn's WSGI workers build it: PATH_INFO is the path percent-decoded, its bytes
        as latin-1 text (the scope's ``path`` has bytes that are not UTF-8 replaced),
        without the ``root_path`` prefix, which is SCRIPT_NAME."""
        server = scope.get("server") or ("localhost", 80)
        client = scope.get("client") or ("", 0)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string", b"")
        root = scope.get("root_path", "")
        path = unquote_to_bytes(raw_path).decode("latin-1")
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root):]
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": root,
            "PATH_INFO": path,
            "RAW_URI": (raw_path + b"?" + query if query else raw_path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1] if server[1] is not None else ""),
            "REMOTE_ADDR": str(client[0]),
            "REMOTE_PORT": str(client[1]),
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "SERVER_SOFTWARE": SOFTWARE,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,      # the input ends with the body, chunked or not
        }
        for name, value in scope["headers"]:
            key = name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = text
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        return environ

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    # Writes in flight finish within gunicorn's graceful_timeout, or are
                    # killed with the worker (then not acknowledged, and lost only if the
                    # journal had not taken them).
                    self._pool.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _close(close) -> None:
    if close is not None:
        try:
            close()
        except Exception:
            logging.getLogger("searchsvc").exception("closing a response failed")


def _close_when_called(done) -> None:
    """Close the response of a call whose request was cancelled while it ran: what the app
    left for after the answer (its access line, metrics) still happens."""
    if not done.cancelled() and done.exception() is None:
        _close(done.result()[3])


def _has_body(scope: dict) -> bool:
    """Whether the request declares a body (a chunked one, or a length above 0)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class LoopInput(io.RawIOBase):
    """``wsgi.input`` for a request answered on a thread: its body as the ASGI server
    receives it, asked of the event loop as the app reads (nothing is read that the app
    does not ask for; gunicorn has de-chunked it)."""

    def __init__(self, receive, loop, finished: bool = False):
        self._receive, self._loop = receive, loop
        self._buffer = bytearray()
        self.finished = finished      # the whole body received (or none declared)

    def readable(self) -> bool:
        return True

    def _more(self) -> None:
        message = asyncio.run_coroutine_threadsafe(self._receive(), self._loop).result()
        if message["type"] == "http.disconnect":
            raise BodyIncomplete("the request body did not arrive in time")
        self._buffer += message.get("body", b"")
        self.finished = not message.get("more_body", False)

    def read(self, size: int = -1) -> bytes:
        while not self.finished and (size is None or size < 0 or len(self._buffer) < size):
            self._more()
        n = len(self._buffer) if size is None or size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[:len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        while not self.finished and b"\n" not in self._buffer and (size < 0 or len(self._buffer) < size):
            self._more()
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        return self.read(end if size < 0 else min(end, size))
