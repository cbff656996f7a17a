#!/usr/bin/env python3
"""Where an HTTP search's time goes: the client's view beside timestamps taken inside the worker.

    python bench/edge_trace.py --index DIR --queries ../shared/eval/queries-dev.jsonl [--workers 1] [--no-access-line]

Starts ``searchsvc serve`` with its worker patched to stamp each request (bench only:
``data_received`` and ``_on_headers_complete`` are gunicorn's ASGI protocol's, through our
``JsonEdgeProtocol``; ``InlineWSGI.call`` and ``__call__`` the bridge's), asks each query once
over one keep-alive connection (``ab_http.py``'s client and parameters; ``--params
per_page=10`` for pages of 10), then prints the medians of:

* ``read``: from the request's first bytes read to gunicorn_h1c's parse of its head;
* ``dispatch``: from there to the WSGI call (the connection's task woken, the ASGI scope,
  the WSGI environ; a search has no body to read);
* ``app``: the Falcon app (search, snippets, JSON, middleware), of which ``search`` is
  ``Engine.search`` (matching, scoring, facets, snippets) and ``rest`` the app around it
  (parameters, the ETag's version check, middleware, the JSON body);
* ``write``: from the app's return until the answer is handed to the transport;
  then, apart (the client does not wait for it), the work the app left for after the
  answer (``searchsvc.app.after_response``: the access line, metrics, the query log);
* ``outside``: what the client measured beyond all of that: its own parsing of the
  answer, the kernel, the event loop's wake-up, scheduling on a shared machine.

Each part's median is of that part alone: they need not add up to the client's median.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

STAGES = ("read", "dispatch", "app", "write")


def patch_worker(trace_path: str, access_line: bool = True) -> None:
    """Stamp every request in this process's workers; each worker writes its requests'
    stages to ``trace_path.PID`` when it exits (nothing written while timing). Without
    ``access_line`` the app writes no access line."""
    from searchsvc.asgi_bridge import InlineWSGI
    from searchsvc.gunicorn_worker import JsonEdgeProtocol

    received, headers_complete = JsonEdgeProtocol.data_received, JsonEdgeProtocol._on_headers_complete
    call, answer = InlineWSGI.call, InlineWSGI.__call__
    rows = []
    searched = []       # Engine.search's time in the request being answered (one at a time)
    stamps = []         # this request's (one client in turn: one request at a time per worker)

    def timed(search):
        def timed_search(req):
            t0 = time.perf_counter()
            try:
                return search(req)
            finally:
                searched.append(time.perf_counter() - t0)
        return timed_search

    def on_data(self, data):
        if not stamps:
            stamps.append(time.perf_counter())         # the request's first bytes read
        return received(self, data)

    def on_headers(self):
        stamps.append(time.perf_counter())             # parsed
        return headers_complete(self)

    def timed_call(self, environ):
        engine = self.app.engine    # (the searchsvc app; timed here: importing it earlier would import
        if "search" not in vars(engine):     # prometheus_client before serve sets its directory)
            engine.search = timed(engine.search)
            if not access_line:     # (here, after gunicorn's logging set-up reset the child loggers' levels)
                logging.getLogger("searchsvc.access").setLevel(logging.WARNING)
        stamps.append(time.perf_counter())             # the WSGI call begins (scope, environ built)
        try:
            return call(self, environ)
        finally:
            stamps.append(time.perf_counter())         # the app returned

    async def timed_answer(self, scope, receive, send):
        sent = []

        async def timed_send(message):
            await send(message)
            sent[:] = [time.perf_counter()]            # (the last: the answer handed to the transport)

        try:
            return await answer(self, scope, receive, timed_send)
        finally:
            if scope["type"] == "http":
                end = time.perf_counter()              # the response closed: its after-response work done
                stamps.append(sent[0] if sent else end)
                if len(stamps) == 5:
                    rows.append({"path": scope["path"], "stages": [b - a for a, b in zip(stamps, stamps[1:])],
                                 "search": sum(searched), "after": end - stamps[-1]})
                stamps.clear()
                searched.clear()

    def write_rows():
        if rows:
            with open(f"{trace_path}.{os.getpid()}", "w") as f:     # a file per worker
                f.write("".join(json.dumps(r) + "\n" for r in rows))

    atexit.register(write_rows)     # (inherited by the workers gunicorn forks; they leave by sys.exit)
    JsonEdgeProtocol.data_received, JsonEdgeProtocol._on_headers_complete = on_data, on_headers
    InlineWSGI.call, InlineWSGI.__call__ = timed_call, timed_answer


def serve(args) -> int:
    """The child: ``searchsvc serve`` with the stamps."""
    patch_worker(args.trace, access_line=not args.no_access_line)
    from searchsvc.cli import main
    return main(["serve", "--index", args.index, "--port", str(args.port), "--workers", str(args.workers)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(args) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from ab_http import Client, query_params

    queries = [json.loads(line) for line in open(args.queries, encoding="utf-8") if line.strip()]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.jsonl")
        # No result cache: every query is asked once anyway. (The access line per request, here
        # to /dev/null, is written at any SEARCHSVC_LOG_LEVEL: that sets gunicorn's own log.)
        env = {**os.environ, "SEARCHSVC_LOG_LEVEL": "warning", "SEARCHSVC_RESULT_CACHE": "0"}
        server = subprocess.Popen([sys.executable, __file__, "--serve", "--trace", trace, "--index", args.index,
                                   "--port", str(port), "--workers", str(args.workers)]
                                  + (["--no-access-line"] if args.no_access_line else []), env=env,
                                  stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the service did not start")
                    time.sleep(0.5)
            client = Client(f"http://127.0.0.1:{port}", query_params(args.params))
            client.time(queries[0])     # the connection opened, untimed
            took = [client.time(q) for q in queries]
        finally:
            server.send_signal(signal.SIGTERM)      # the workers write their rows as they exit
            server.wait(timeout=60)
        rows = [json.loads(line) for path in glob.glob(trace + ".*") for line in open(path)]
    # One connection: one worker answered every search, in order (its file holds all of
    # them; another worker's, health checks at most); the first was untimed.
    traced = [r for r in rows if r["path"] == "/search"][1:]
    rows, searches = [r["stages"] for r in traced], [r["search"] for r in traced]
    if len(rows) != len(took):
        raise SystemExit(f"{len(rows)} searches traced for {len(took)} asked (a gunicorn whose ASGI "
                         "internals differ from those patched here?)")
    med = {name: statistics.median(r[i] for r in rows) * 1000 for i, name in enumerate(STAGES)}
    app = STAGES.index("app")
    split = {"search": statistics.median(searches) * 1000,
             "rest": statistics.median(r[app] - s for r, s in zip(rows, searches)) * 1000}
    server_total = [sum(r) * 1000 for r in rows]
    outside = [c - s for c, s in zip(took, server_total)]
    print(f"{len(took)} queries; {args.workers} worker(s); params {args.params or '-'}")
    print(f"client p50 {statistics.median(took):.3f} ms; in the worker p50 {statistics.median(server_total):.3f} ms")
    print("  " + "  ".join(f"{name} {ms:.3f}" for name, ms in med.items())
          + f"  outside {statistics.median(outside):.3f}  (medians, ms)")
    print("  app: " + "  ".join(f"{name} {ms:.3f}" for name, ms in split.items()))
    print(f"  after the answer was sent (access line, metrics, query log): "
          f"{statistics.median(r['after'] for r in traced) * 1000:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True, help="the index to serve")
    ap.add_argument("--queries", help="JSON lines with q, type (and section, from, to)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--params", default="", metavar="K=V&...", help="extra query parameters, e.g. per_page=10")
    ap.add_argument("--no-access-line", action="store_true",
                    help="serve without the JSON access line the app writes per request (what it costs)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--trace", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        sys.exit(serve(args))
    if not args.queries:
        ap.error("--queries is required")
    drive(args)


if __name__ == "__main__":
    main()
