#!/usr/bin/env python3
"""In-process latency of queries the process has not seen, through ``Engine.search``
alone and through the whole Falcon app: what a long-running worker pays before HTTP.

    python bench/unseen_queries.py --index INDEX [--queries ../shared/eval/queries-dev.jsonl]

The process first answers the even-numbered queries and the typo set (``--warm``) twice,
so its caches hold what a worker's would; then the odd-numbered queries are asked once
each, in turn of the engine and of the app (``ab_http.py``'s parameters: pages of 100 for
phrase and filtered queries), with no result cache. Repeating a query,
as ``query_bench.py``'s later rounds do, measures its caches instead. Prints p50/p99 per
query type and over all for both, and the app's share over the engine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from ab_http import call_app, params    # bench/ (this script's directory) is on sys.path
from ab_inprocess import request
from query_bench import percentile

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval"


def read(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--queries", default=str(SHARED_EVAL / "queries-dev.jsonl"))
    ap.add_argument("--warm", default=str(SHARED_EVAL / "queries-typo-dev.jsonl"),
                    help="more queries to warm with (default: the typo set)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import falcon.testing
    from searchsvc.app import create_app
    from searchsvc.config import Config
    from searchsvc.searching import SearchRequest

    queries = read(args.queries)
    warm = queries[0::2] + read(args.warm)
    unseen = queries[1::2]
    app = create_app(Config.from_env(index_dir=Path(args.index), result_cache_size=0))
    engine = app.engine
    engine.view()
    engine.lexicon()

    def ask_app(q: dict) -> None:
        call_app(app, falcon.testing.create_environ(path="/search", query_string=urlencode(params(q))))

    def ask_engine(q: dict) -> None:
        engine.search(request(SearchRequest, q))

    for _ in range(2):
        for q in warm:
            ask_app(q)
    times: dict[str, dict[str, list[float]]] = {"engine": {}, "app": {}}
    for n, q in enumerate(unseen):      # every other one each: a query asked twice is not unseen
        name, ask = ("engine", ask_engine) if n % 2 else ("app", ask_app)
        t0 = time.perf_counter()
        ask(q)
        times[name].setdefault(q["type"], []).append((time.perf_counter() - t0) * 1000)
    print(f"command: python bench/unseen_queries.py --index {args.index}")
    print(f"{len(unseen)} unseen queries after {len(warm)} others twice; p50/p99 ms")
    print(f"{'type':<10} {'engine':>14} {'app':>14} {'app/engine p50':>15}")
    kinds = list(times["engine"]) + ["all"]
    for kind in kinds:
        e, a = ([t for v in times[s].values() for t in v] if kind == "all" else times[s][kind] for s in ("engine", "app"))
        print(f"{kind:<10} {percentile(e, 50):6.2f}/{percentile(e, 99):6.2f} {percentile(a, 50):6.2f}/{percentile(a, 99):6.2f}"
              f" {percentile(a, 50) / percentile(e, 50):15.2f}")


if __name__ == "__main__":
    main()
