#!/usr/bin/env python3
"""The long run of tests/test_differential.py: the engine against the grep oracle.

    python bench/differential.py [--examples 500] [--long 10] [--seed N]

Same generated articles, write paths (bulk, PUT/DELETE, the CLI) and queries as the
test, with more examples and longer batches; then ``--long`` examples whose first
article is over ``view.LONG_TEXT_BYTES`` (searched through its pair table). Prints what it checked; any mismatch
stops it with Hypothesis's smallest failing example.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_differential as td  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--long", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    counts: Counter = Counter()

    original = td.check_queries

    def counting(service, draw, n_api=4):
        original(service, draw, n_api)
        counts["API queries (all pages)"] += n_api
        counts["CLI queries"] += 1

    td.check_queries = counting

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(batches=st.lists(st.tuples(st.sampled_from(td.WRITE_PATHS), st.lists(td.operation, min_size=1,
                                                                                  max_size=8)),
                            min_size=1, max_size=5),
           data=st.data())
    def run(batches, data):
        with tempfile.TemporaryDirectory() as root:
            service = td.Service(root)
            counts["examples"] += 1
            for path, batch in batches:
                service.write(path, batch)
                counts[f"batches by {path}"] += 1
                counts["writes (upserts and deletes)"] += len(batch)
                service.check_reopens()
                counts["index reopened and counted"] += 1
                td.check_queries(service, data.draw)

    @settings(max_examples=args.long, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(td.WRITE_PATHS), batch=st.lists(st.one_of(td.long_article, td.operation), max_size=5),
           data=st.data())
    def run_long(path, batch, data):
        with tempfile.TemporaryDirectory() as root:
            service = td.Service(root)
            counts["examples with a long article"] += 1
            service.write(path, [data.draw(td.long_article)] + batch)
            counts["writes (upserts and deletes)"] += 1 + len(batch)
            service.check_reopens()
            counts["index reopened and counted"] += 1
            td.check_queries(service, data.draw, n_api=6)

    if args.seed is not None:
        run, run_long = seed(args.seed)(run), seed(args.seed)(run_long)
    t0 = time.perf_counter()
    run()
    if args.long:
        run_long()
    for k, v in sorted(counts.items()):
        print(f"{k:32} {v}")
    print(f"mismatches                       0\nseconds                          {time.perf_counter() - t0:.0f}")


if __name__ == "__main__":
    main()
