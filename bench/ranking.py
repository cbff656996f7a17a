#!/usr/bin/env python3
"""Ranking quality in-process: known-item MRR@10 per query type and topical nDCG@10, in one run.

    python bench/ranking.py --index DIR [--set NAME=VALUE]... [--queries ../shared/eval/queries-dev.jsonl]
                            [--typo ../shared/eval/queries-typo-dev.jsonl] [--topical FILE] [--sheet new.jsonl]

A quick loop for ranking work: ``evaluate.py`` measures the same MRR over HTTP
(the figures to quote), ``bench/topical.py`` the topical table beside the peers.
Here both run through ``Engine.search`` in one process, so a change to
``scoring.py`` is measured on every kind of query in about 30 seconds. Topical pages are
scored with ``bench/topical/judged.jsonl``, the dev queries and the held-out ones (never
tuned on: look at them last); documents nobody judged count as not relevant and
are listed (``--sheet`` writes them as a blind sheet).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import topical  # noqa: E402
from query_bench import request  # noqa: E402
from searchsvc import scoring  # noqa: E402
from searchsvc.config import Config  # noqa: E402
from searchsvc.searching import Engine, SearchRequest  # noqa: E402

RANK_TYPES = ("title", "fragment", "trad", "keywords")


def mrr(engine: Engine, path: str) -> dict[str, float]:
    """MRR@10 per query type, as ``evaluate.py`` computes it (rank of the first acceptable id)."""
    sums: dict[str, list[float]] = {}
    for line in open(path, encoding="utf-8"):
        q = json.loads(line)
        if q["type"] not in RANK_TYPES:
            continue
        ids = [h["id"] for h in engine.search(request(q)).hits]
        ok = set(q.get("accept") or [q["target"]])
        rank = next((i for i, d in enumerate(ids, 1) if d in ok), None)
        sums.setdefault(q["type"], []).append(1 / rank if rank else 0.0)
    return {t: sum(v) / len(v) for t, v in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--queries", default=str(topical.SHARED / "eval" / "queries-dev.jsonl"))
    ap.add_argument("--typo", default=str(topical.SHARED / "eval" / "queries-typo-dev.jsonl"))
    ap.add_argument("--topical", default=str(topical.SHARED / "eval" / "topical" / "queries-dev.txt"))
    ap.add_argument("--corpus", default=str(topical.SHARED / "corpus" / "articles.jsonl.gz"))
    ap.add_argument("--sheet", help="write the unjudged topical documents here")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of searchsvc.scoring for this run (e.g. PHRASE_POWER=2)")
    args = ap.parse_args()
    for item in args.set:
        name, _, value = item.partition("=")
        if not hasattr(scoring, name):
            ap.error(f"--set: searchsvc.scoring has no {name}")
        setattr(scoring, name, type(getattr(scoring, name))(value))
    config = Config.from_env(index_dir=Path(args.index), result_cache_size=0, search_budget=float("inf"))
    engine = Engine.from_config(config)
    for name, path in (("dev", args.queries), ("typo", args.typo)):
        print(name, " ".join(f"{t} {v:.3f}" for t, v in mrr(engine, path).items()))
    sets = [("dev", args.topical, topical.HERE / "runs-peers.json"),
            ("heldout", topical.HERE / "queries-heldout.txt", topical.HERE / "runs-peers-heldout.json")]
    rel = topical.read_judged(topical.HERE / "judged.jsonl")
    todo = {}
    for label, qpath, peers in sets:
        queries = topical.read_queries(qpath)
        runs = json.loads(Path(peers).read_text(encoding="utf-8"))
        runs["searchsvc"] = {q: [h["id"] for h in engine.search(SearchRequest(q=q)).hits] for q in queries}
        todo |= {q: runs["searchsvc"][q] for q in queries}
        for name, nd, p1, p2, unj in topical.score(runs, rel):
            print(f"topical-{label} {name:<10} nDCG@10 {nd:.3f}  P@10(rel>=1) {p1:.3f}  P@10(rel=2) {p2:.3f}"
                  f"  unjudged {unj}")
    if args.sheet:
        n = topical.write_sheet(args.sheet, todo, list(todo), rel, args.corpus)
        print(f"{n} unjudged documents -> {args.sheet}")


if __name__ == "__main__":
    main()
