#!/usr/bin/env python3
"""The HTTP floor: what gunicorn and Falcon cost on this machine for an answer that does nothing.

    python bench/http_floor.py [--requests 2000] [--worker-class serve gthread sync] [--url http://127.0.0.1:8000]

Starts gunicorn (one worker, 4 threads for gthread) serving a constant JSON answer from a
bare Falcon app (``serve``: with ``searchsvc serve``'s worker, gunicorn's asyncio worker and
gunicorn_h1c, through ``searchsvc.asgi_bridge``), and times ``--requests`` keep-alive GETs from ``http.client``, as
``ab_http.py`` and ``evaluate.py`` ask; with ``--url``, also a running service's
``/healthz`` the same way. Prints p50/p99 per server. The floor sets what "our HTTP p50
over FTS5's in-process p50" can reach: FTS5 answers a query in about the floor's time.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import falcon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # the checkout's searchsvc
from searchsvc.asgi_bridge import InlineWSGI  # noqa: E402


class _Constant:
    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


app = falcon.App()            # what gunicorn serves (``http_floor:app``)
app.add_route("/healthz", _Constant())
bridged = InlineWSGI(app)      # the same through serve's bridge (``http_floor:bridged``)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_gets(host: str, port: int, path: str, n: int) -> list[float]:
    """Milliseconds of ``n`` keep-alive GETs (after 100 untimed)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)

    def get() -> float:
        t = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"{resp.status} from {host}:{port}{path}")
        return (time.perf_counter() - t) * 1000

    for _ in range(100):
        get()
    return sorted(get() for _ in range(n))


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not listen on {port}")


def report(name: str, ms: list[float]) -> None:
    print(f"{name:32s} p50 {statistics.median(ms):6.3f} ms  p99 {ms[int(len(ms) * 0.99)]:6.3f} ms  ({len(ms)} requests)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--worker-class", nargs="+", default=["serve", "gthread", "sync"],
                    choices=["serve", "gthread", "sync"])
    ap.add_argument("--url", help="also time this running service's /healthz")
    args = ap.parse_args()
    for kind in args.worker_class:
        port = _free_port()
        worker = ["-k", "searchsvc.gunicorn_worker.JsonEdgeWorker", "--http-parser", "fast"] if kind == "serve" \
            else ["-k", kind, "--threads", "4"]
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", *worker,
                                 "--keep-alive", "5", "--log-level", "warning", "-b", f"127.0.0.1:{port}",
                                 "--chdir", str(Path(__file__).resolve().parent),
                                 "--pythonpath", str(Path(__file__).resolve().parent.parent),
                                 "http_floor:bridged" if kind == "serve" else "http_floor:app"])
        try:
            wait_for(port)
            report(f"gunicorn {'(serve)' if kind == 'serve' else '-k ' + kind}, constant", time_gets("127.0.0.1", port, "/healthz", args.requests))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if args.url:
        parts = urlsplit(args.url)
        report(f"{args.url} /healthz", time_gets(parts.hostname, parts.port or 80, "/healthz", args.requests))


if __name__ == "__main__":
    main()
