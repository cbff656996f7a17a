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


def load(tree: Path, index: str):
    """``(Engine, SearchRequest)`` of the tree's package. The metrics module stays the first
    tree's: its counters are registered once per process (both trees define the same)."""
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
    kw = {"q": q["q"], "per_page": 100 if q["type"] in ("phrase", "filtered") else 10}
    if q.get("section"):
        kw["sections"] = (q["section"],)
    if q.get("from"):
        kw["date_from"] = dt.date.fromisoformat(q["from"][:10])
    if q.get("to"):
        kw["date_to"] = dt.date.fromisoformat(q["to"][:10])
    return request_class(**kw)


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
    times: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    for n, q in enumerate(queries):
        for name in (("A", "B") if n % 2 == 0 else ("B", "A")):
            engine, request_class = engines[name]
            r = request(request_class, q)
            t0 = time.perf_counter()
            engine.search(r)
            took = (time.perf_counter() - t0) * 1000
            times[name].setdefault(q["type"], []).append(took)
            times[name].setdefault("all", []).append(took)
    print(f"{len(queries)} queries, A={a.a} B={a.b}, index {a.index}")
    print(f"{'type':10} {'A p50 ms':>9} {'B p50 ms':>9} {'B/A p50':>8} {'B/A sum':>8}")
    for t in times["A"]:
        ta, tb = times["A"][t], times["B"][t]
        pa, pb = statistics.median(ta), statistics.median(tb)
        print(f"{t:10} {pa:9.2f} {pb:9.2f} {pb / pa:8.3f} {sum(tb) / sum(ta):8.3f}")


if __name__ == "__main__":
    main()
