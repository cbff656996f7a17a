"""The WSGI app served by an asyncio (ASGI) server: reads called inline on the event loop,
writes on a thread beside it.

``searchsvc serve`` runs gunicorn's asyncio worker (``gunicorn_worker.JsonEdgeWorker``) with
this in front of the Falcon app, which stays a plain WSGI app (``searchsvc.wsgi``, the
tests' ``falcon.testing``). Why not a thread per request, as gunicorn's gthread worker, or
a2wsgi and asgiref's WSGI adapters do: a search is CPU work that holds the GIL, so a pool
thread adds a hand-off and a wake-up per request and nothing in parallel (×0.87–0.88 on the
dev queries' HTTP p50 without it, see README). The loop reads and writes the sockets, so a
client that sends or reads slowly holds up nobody; the app is only called once the whole
request has arrived. A request that changes the index (it may wait seconds for the write
lock or segment a bulk load), or exports a CSV, runs on a thread, so searches go on meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_to_bytes

READS = frozenset(("GET", "HEAD", "OPTIONS"))
READ_POSTS = frozenset(("/search",))        # POST /search is a search with a JSON body


class InlineWSGI:
    """An ASGI app calling ``app`` (WSGI) for each HTTP request: ``app.engine`` and friends
    stay reachable as attributes (gunicorn's hooks look for them)."""

    def __init__(self, app, max_body_bytes: int, write_threads: int = 4):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.write_threads = write_threads
        self._pool: ThreadPoolExecutor | None = None    # made in the worker (after the fork)

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":     # websockets: nothing here speaks them
            raise RuntimeError(f"unsupported ASGI scope {scope['type']!r}")
        got = await self._body(receive)
        if got is None:                 # the client left before its request was whole
            return
        body, cut = got
        environ = self.wsgi_environ(scope, body)
        if cut:                         # the app answers 413; the rest of the body is never read
            environ["CONTENT_LENGTH"] = str(self.max_body_bytes + 1)
        if self.inline(scope):
            status, headers, chunks = self.call(environ)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.write_threads, thread_name_prefix="searchsvc-offloop")
            status, headers, chunks = await asyncio.get_running_loop().run_in_executor(
                self._pool, self.call, environ)
        if cut:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})
        if not chunks:
            await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def inline(scope: dict) -> bool:
        """Whether a request is answered on the event loop: searches and other reads, but
        not a CSV export (up to ``max_export_rows`` rows: ~0.4 s for 10,000 at ×1)."""
        method = scope["method"]
        reads = method in READS or (method == "POST" and scope["path"] in READ_POSTS)
        return reads and b"format=csv" not in scope.get("query_string", b"")

    async def _body(self, receive) -> tuple[bytes, bool] | None:
        """The request body, and whether it was cut: past ``max_body_bytes`` nothing more
        is read (the app refuses it with 413). None: the client disconnected."""
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if more and size > self.max_body_bytes:
                return b"".join(parts), True
        return b"".join(parts), False

    def call(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        """The WSGI call: (status, headers, body chunks), the body read whole (JSON answers
        are one chunk; a CSV export is bounded by ``max_export_rows``)."""
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        result = self.app(environ, start_response)
        try:
            chunks = [bytes(c) for c in result if c]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        return int(status[:3]), [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers], chunks

    @staticmethod
    def wsgi_environ(scope: dict, body: bytes) -> dict:
        """PEP 3333's environ for an ASGI HTTP scope. PATH_INFO is the target's path as
        gunicorn's WSGI workers hand it over: percent-decoded bytes as latin-1 text (the
        scope's ``path`` has bytes that are not UTF-8 replaced)."""
        server = scope.get("server") or ("localhost", 80)
        client = scope.get("client") or ("", 0)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": scope.get("root_path", ""),
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "RAW_URI": raw_path.decode("latin-1"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1] if server[1] is not None else ""),
            "REMOTE_ADDR": str(client[0]),
            "REMOTE_PORT": str(client[1]),
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in scope["headers"]:
            key = name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = text
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        if body and "CONTENT_LENGTH" not in environ:    # a chunked body, already de-chunked
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return environ

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    self._pool.shutdown(wait=True)    # a write in flight is finished, not dropped
                await send({"type": "lifespan.shutdown.complete"})
                return
