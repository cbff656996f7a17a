#!/usr/bin/env python3
"""What a pause between queries costs the app, in one process: the same app, the same
queries, asked back to back and after a pause.

    python bench/paced.py --index DIR --queries ../shared/eval/queries-dev.jsonl [--gap-ms 2]

In-process benchmarks (``ab_inprocess.py``, ``query_bench.py``) ask the next query the
moment the last one ends; over HTTP a worker waits between requests (the client reads
the answer and sends the next). The queries are asked of the Falcon app (a WSGI call, as
gunicorn makes it; no result cache, no query log) in three passes, each query one of three
ways a pass, the way rotating from query to query and pass to pass, so that every query is
asked each way once and every ask follows another query: ``hot`` right after it, ``sleep``
after ``time.sleep(gap)``, ``busy`` after spinning on the clock for the gap (the CPU kept
busy: no idle state). Prints p50 per way and query type, and each paused way over hot.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from falcon import testing

from ab_http import call_app, params   # bench/ is the script's own directory on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from searchsvc.app import create_app   # noqa: E402  (the checkout this script is in)
from searchsvc.config import Config    # noqa: E402

WAYS = ("hot", "sleep", "busy")


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gap-ms", type=float, default=2.0, help="the pause before a paced query (default 2)")
    ap.add_argument("--warm", type=int, default=200, help="queries asked first, untimed")
    a = ap.parse_args()
    app = create_app(Config.from_env(environ={}, index_dir=Path(a.index), result_cache_size=0,
                                     query_log_enabled=False, search_budget=float("inf")))
    app.engine.view()
    app.engine.lexicon()
    queries = [json.loads(line) for line in open(a.queries, encoding="utf-8") if line.strip()]
    environs = [testing.create_environ(path="/search", query_string=urlencode(params(q))) for q in queries]

    def ask(environ: dict) -> float:
        t0 = time.perf_counter()
        call_app(app, dict(environ))
        return (time.perf_counter() - t0) * 1000

    pause = {"hot": lambda: None, "sleep": lambda: time.sleep(a.gap_ms / 1000), "busy": lambda: spin(a.gap_ms / 1000)}
    for environ in environs[:a.warm]:
        ask(environ)
    times: dict[str, dict[str, list[float]]] = {way: {} for way in WAYS}
    for round_ in range(len(WAYS)):
        for n, (q, environ) in enumerate(zip(queries, environs)):
            way = WAYS[(n + round_) % len(WAYS)]
            pause[way]()
            took = ask(environ)
            for key in (q["type"], "all"):
                times[way].setdefault(key, []).append(took)
    print(f"{len(queries)} queries through the app in-process, index {a.index}, pause {a.gap_ms} ms")
    print(f"{'type':10} {'hot p50':>8} {'sleep p50':>10} {'busy p50':>9} {'sleep/hot':>10} {'busy/hot':>9}")
    for t in sorted(times["hot"], key=lambda t: t == "all"):        # all last
        hot, slept, busy = (statistics.median(times[way][t]) for way in WAYS)
        print(f"{t:10} {hot:8.2f} {slept:10.2f} {busy:9.2f} {slept / hot:10.3f} {busy / hot:9.3f}")


if __name__ == "__main__":
    main()
