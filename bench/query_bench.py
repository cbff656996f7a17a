#!/usr/bin/env python3
"""In-process query latency per query type, and where the time goes.

    python bench/query_bench.py --index index [--queries ../shared/eval/queries-dev.jsonl] [--rounds 3]

Each query of the dev set is answered as ``/search`` answers it (page 1, top 10,
highlighted snippets, section and year facets, filters where the query has them)
directly through ``Engine.search``. Round 1 starts from a cold postings cache;
later rounds are warm. The result-page cache is off so every round does the work.
Then one profiled round (cProfile) splits the time into parse, match, score+sort,
facets and snippets.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from searchsvc.config import Config  # noqa: E402
from searchsvc.searching import Engine, SearchRequest  # noqa: E402

# Stages of Engine.search, by the function that does each (cumulative time).
STAGES = {
    "parse + analyse": ("query.py", "parse"),
    "match": ("matching.py", "match"),
    "score": ("matching.py", "scores"),
    "sort + page": ("searching.py", "_order"),
    "facets": [("facets.py", "section_facet"), ("facets.py", "year_facet")],
    "snippets + stored": ("searching.py", "_hit"),
}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def request(q: dict) -> SearchRequest:
    date = lambda s: dt.date.fromisoformat(s) if s else None  # noqa: E731
    return SearchRequest(q=q["q"], sections=(q["section"],) if q.get("section") else (),
                         date_from=date(q.get("from")), date_to=date(q.get("to")))


def run_round(engine, queries):
    times: dict[str, list[float]] = {}
    for q in queries:
        t0 = time.perf_counter()
        engine.search(request(q))
        times.setdefault(q["type"], []).append((time.perf_counter() - t0) * 1000)
    times["all"] = [t for v in list(times.values()) for t in v]
    return times


def stage_times(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats
    out = {}
    for stage, keys in STAGES.items():
        keys = keys if isinstance(keys, list) else [keys]
        total = 0.0
        for (filename, _, func), (_, _, _, cumulative, _) in stats.items():
            if any(filename.endswith("searchsvc/" + f) and func == name for f, name in keys):
                total += cumulative
        out[stage] = total * 1000
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(REPO / "index"))
    ap.add_argument("--queries", default=str(REPO.parent / "shared" / "eval" / "queries-dev.jsonl"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--every", type=int, default=1, help="use every K-th query (all types, fewer queries)")
    args = ap.parse_args()
    queries = [json.loads(line) for line in open(args.queries, encoding="utf-8")]
    queries = queries[::args.every]
    # The API's engine (Engine.from_config), with no result cache (every round does the
    # work) and no time budget (measure, don't stop).
    config = Config.from_env(index_dir=Path(args.index), result_cache_size=0, search_budget=float("inf"))
    engine = Engine.from_config(config)
    t0 = time.perf_counter()
    view = engine.view()
    engine.lexicon()      # the server builds it in the background at start
    print(f"command: python bench/query_bench.py --index {args.index} --rounds {args.rounds}"
          + (f" --every {args.every}" if args.every > 1 else ""))
    print(f"index: {view.doc_count} articles, opened in {(time.perf_counter() - t0) * 1000:.0f} ms; "
          f"{len(queries)} queries")
    print(f"{'round':<6} {'type':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in range(1, args.rounds + 1):
        times = run_round(engine, queries)
        for kind, values in times.items():
            print(f"{r:<6} {kind:<10} {percentile(values, 50):8.2f} {percentile(values, 95):8.2f} "
                  f"{percentile(values, 99):8.2f} {max(values):8.2f}")
    profile = cProfile.Profile()
    profile.enable()
    t0 = time.perf_counter()
    run_round(engine, queries)
    wall = (time.perf_counter() - t0) * 1000
    profile.disable()
    print(f"profiled warm round (cProfile inflates Python-heavy stages): {wall / len(queries):.2f} ms/query")
    for stage, ms in stage_times(profile).items():
        print(f"  {stage:<18} {ms / len(queries):6.2f} ms/query  {100 * ms / wall:5.1f}%")
    pstats.Stats(profile).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
