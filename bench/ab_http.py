#!/usr/bin/env python3
"""A/B latency of two running services over HTTP, query by query, alternately.

    python bench/ab_http.py --a http://127.0.0.1:8716 --b http://127.0.0.1:8717 \
        --queries ../shared/eval/queries-dev.jsonl [--b-params typos=off] [--repeat 1]

Each query of the file is asked of A and of B in turn (who goes first alternates), as
``evaluate.py`` asks it (page 1; per_page 10, or 100 for phrase/filtered; its section and
dates), over one keep-alive connection per service, so that the load of a shared machine
falls on both alike. With ``--repeat N`` the file is run N times (later runs meet the
services' result caches: use 1 for cold figures). Prints p50/p95/p99 per query type and
over all, for A and B, and the ratio B/A of the medians.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import time
from urllib.parse import urlencode, urlsplit


def params(q: dict) -> dict:
    out = {"q": q["q"], "page": 1, "per_page": 100 if q["type"] in ("phrase", "filtered") else 10}
    if q.get("section"):
        out["section"] = q["section"]
    if q.get("from"):
        out["from"] = q["from"]
    if q.get("to"):
        out["to"] = q["to"]
    return out


def call_app(app, environ: dict) -> None:
    """One WSGI call of ``app``, as gunicorn makes it, its body read and the response
    closed, which runs the app's after-answer bookkeeping (the in-process benches ask the
    Falcon app so); SystemExit unless it answered 200."""
    status = []
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    if not status[0].startswith("200"):
        raise SystemExit(f"{status[0]} for {environ.get('QUERY_STRING', '')!r}")


def query_params(given: str) -> dict:
    """``"per_page=10&typos=off"`` -> ``{"per_page": "10", "typos": "off"}``."""
    return dict(kv.split("=", 1) for kv in given.split("&") if kv)


class Client:
    def __init__(self, url: str, extra: dict):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.extra = extra

    def time(self, q: dict) -> float:
        path = "/search?" + urlencode({**params(q), **self.extra})
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        body = resp.read()
        took = (time.perf_counter() - t0) * 1000
        if resp.status != 200:
            raise SystemExit(f"{resp.status} for {path}: {body[:200]!r}")
        return took


class _Answer:
    """httptools' callbacks for one response: its body, and whether it is complete."""

    def __init__(self):
        self.body, self.complete = [], False

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True


class LeanClient:
    """:class:`Client`'s keep-alive GETs with the answer read by httptools (llhttp, the C parser
    uvicorn uses) instead of ``http.client``, whose own parsing of each answer costs ~0.5 ms
    here: the service's latency as a compiled client (a browser, curl, wrk) sees it.
    Needs ``pip install httptools``."""

    def __init__(self, url: str, extra: dict):
        import httptools
        parts = urlsplit(url)
        self.parser_class = httptools.HttpResponseParser
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.extra = parts.netloc, extra

    def time(self, q: dict) -> float:
        path = "/search?" + urlencode({**params(q), **self.extra})
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        answer = _Answer()
        parser = self.parser_class(answer)
        t0 = time.perf_counter()
        self.sock.sendall(request)
        while not answer.complete:
            data = self.sock.recv(1 << 18)
            if not data:
                raise SystemExit(f"the service closed the connection during {path}")
            parser.feed_data(data)
        took = (time.perf_counter() - t0) * 1000
        if parser.get_status_code() != 200:
            raise SystemExit(f"{parser.get_status_code()} for {path}: {b''.join(answer.body)[:200]!r}")
        return took


CLIENTS = {"http.client": Client, "lean": LeanClient}


def alternate(queries: list[dict], timers: dict) -> dict[str, dict[str, list[float]]]:
    """Each query timed by A's and B's timer (``{"A": f, "B": f}``, f(query) -> ms) in
    turn, who goes first alternating: milliseconds per system, per query type and "all"."""
    times: dict[str, dict[str, list[float]]] = {name: {} for name in timers}
    for n, q in enumerate(queries):
        for name in (("A", "B") if n % 2 == 0 else ("B", "A")):
            took = timers[name](q)
            times[name].setdefault(q["type"], []).append(took)
            times[name].setdefault("all", []).append(took)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="base URL of service A (the baseline)")
    ap.add_argument("--b", required=True, help="base URL of service B")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--a-params", default="", help="extra query parameters for A, e.g. typos=off")
    ap.add_argument("--b-params", default="", help="extra query parameters for B")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--client", choices=sorted(CLIENTS), default="http.client",
                    help="how answers are read: http.client (as evaluate.py) or lean (httptools)")
    a = ap.parse_args()
    # bench/ is the script's own directory on sys.path. Imported here: query_bench imports
    # searchsvc, and peers_reopen.py uses this module's Client under the peers' Python.
    from query_bench import percentile
    make = CLIENTS[a.client]
    clients = {"A": make(a.a, query_params(a.a_params)), "B": make(a.b, query_params(a.b_params))}
    queries = [json.loads(line) for line in open(a.queries, encoding="utf-8") if line.strip()]
    times = alternate(queries * a.repeat, {name: client.time for name, client in clients.items()})
    print(f"{len(queries)} queries x {a.repeat}, A={a.a} {a.a_params}  B={a.b} {a.b_params}")
    print(f"{'type':10} {'A p50/95/99 ms':>20} {'B p50/95/99 ms':>20} {'B/A p50':>8}")
    for t in times["A"]:
        ta, tb = times["A"][t], times["B"][t]
        fa = "/".join(f"{percentile(ta, p):.1f}" for p in (50, 95, 99))
        fb = "/".join(f"{percentile(tb, p):.1f}" for p in (50, 95, 99))
        print(f"{t:10} {fa:>20} {fb:>20} {statistics.median(tb) / statistics.median(ta):8.2f}")


if __name__ == "__main__":
    main()
