#!/usr/bin/env python3
"""A/B of two source trees' engines in one process, query by query, alternately.

    python bench/ab_inprocess.py --a ../prev --b . --index INDEX \
        --queries ../shared/eval/queries-dev.jsonl

Both trees' ``searchsvc`` packages are imported into this process (one after the other,
each under the package's own name) and open the same index; each query of the file is
then asked of A and of B in turn (who goes first alternates), as ``evaluate.py`` asks
it (per_page 10, or 100 for phrase/filtered; its section and dates), with no result
cache. On a shared machine whose speed drifts by tens of percent within a minute, two
servers (``ab_http.py``) or two processes still see different moments; here the two
engines share every moment, so small changes show (an A/A run: ×0.99). No HTTP: what
changed outside ``Engine.search`` is not measured. Prints p50 per query type and
over all for A and B, B/A of the medians and of the sums.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

from ab_http import alternate, params   # bench/ is the script's own directory on sys.path


def load(tree: Path, index: str):
    """``(Engine, SearchRequest)`` of the tree's package. The metrics module stays the one
    first imported: its counters are registered once per process (every tree defines the same)."""
    for name in [k for k in sys.modules if (k == "searchsvc" or k.startswith("searchsvc.")) and k != "searchsvc.metrics"]:
        del sys.modules[name]
    sys.path.insert(0, str(tree.resolve()))
    try:
        from searchsvc.config import Config
        from searchsvc.searching import Engine, SearchRequest
    finally:
        sys.path.pop(0)
    engine = Engine.from_config(Config.from_env(environ={}, index_dir=index, result_cache_size=0))
    engine.view()
    engine.lexicon()
    return engine, SearchRequest


def request(request_class, q: dict):
    """The search ``ab_http.params`` asks over HTTP, as the tree's SearchRequest."""
    p = params(q)
    date = lambda s: dt.date.fromisoformat(s[:10]) if s else None  # noqa: E731
    return request_class(q=p["q"], per_page=p["per_page"], sections=(p["section"],) if p.get("section") else (),
                         date_from=date(p.get("from")), date_to=date(p.get("to")))


def timer(engine, request_class):
    """Milliseconds of one query's search (the request is built before the clock starts)."""
    def time_of(q: dict) -> float:
        r = request(request_class, q)
        t0 = time.perf_counter()
        engine.search(r)
        return (time.perf_counter() - t0) * 1000
    return time_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, type=Path, help="source tree A (the baseline): a checkout's top directory")
    ap.add_argument("--b", required=True, type=Path, help="source tree B")
    ap.add_argument("--index", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--warm", type=int, default=200, help="queries asked of each first, untimed")
    a = ap.parse_args()
    engines = {"A": load(a.a, a.index), "B": load(a.b, a.index)}
    queries = [json.loads(line) for line in open(a.queries, encoding="utf-8") if line.strip()]
    for engine, request_class in engines.values():
        for q in queries[:a.warm]:
            engine.search(request(request_class, q))
    times = alternate(queries, {name: timer(*pair) for name, pair in engines.items()})
    print(f"{len(queries)} queries, A={a.a} B={a.b}, index {a.index}")
    print(f"{'type':10} {'A p50 ms':>9} {'B p50 ms':>9} {'B/A p50':>8} {'B/A sum':>8}")
    for t in times["A"]:
        ta, tb = times["A"][t], times["B"][t]
        pa, pb = statistics.median(ta), statistics.median(tb)
        print(f"{t:10} {pa:9.2f} {pb:9.2f} {pb / pa:8.3f} {sum(tb) / sum(ta):8.3f}")


if __name__ == "__main__":
    main()
