#!/usr/bin/env python3
"""Topical ranking: nDCG@10 and P@10 of a running service beside the peers, from blind judgments.

    python bench/topical.py URL [--name searchsvc] [--sheet new-sheet.jsonl]
    python bench/topical.py URL --queries bench/topical/queries-heldout.txt --peers bench/topical/runs-peers-heldout.json
    python bench/topical.py URL --also before=bench/topical/run-dev-main-8736273.json

The method is ``../shared/eval/topical/``'s: the first page of each topical query
is judged blind (2 = mainly about the topic, 1 = a substantive part, 0 = absent
or a passing mention). The peers' first pages (FTS5 + jieba, tantivy + jieba,
pooled once by ``pool.py``) are kept in ``bench/topical/runs-peers.json``; every
judgment made so far is in ``bench/topical/judged.jsonl`` (dev and held-out queries;
``queries-heldout.txt`` was never used while tuning). This script asks the
service at URL for its first pages, scores every system with the judgments, and
writes the documents nobody has judged yet to ``--sheet`` (shuffled, no system
named) for the next blind round. Unjudged documents count as not relevant, so a
score with unjudged documents is a lower bound; the count is printed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "bench" / "topical"
SHARED = REPO.parent / "shared"


def read_queries(path) -> list[str]:
    """A query file's queries (``#`` lines are comments)."""
    return [ln.strip() for ln in open(path, encoding="utf-8") if ln.strip() and not ln.startswith("#")]


def first_pages(url: str, queries: list[str]) -> dict[str, list[str]]:
    run = {}
    for q in queries:
        with urllib.request.urlopen(f"{url}/search?" + urllib.parse.urlencode({"q": q, "per_page": 10})) as r:
            run[q] = [h["id"] for h in json.load(r)["hits"]]
    return run


def read_judged(path: Path) -> dict[tuple[str, str], int]:
    rel = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rel[(r["query"], r["doc"])] = int(r["rel"])
    return rel


def score(runs: dict, rel: dict) -> list[tuple[str, float, float, float, int]]:
    """Per system: nDCG@10 (ideal: the judged pool of every system), P@10 rel>=1, P@10 rel=2,
    and how many of its first-page documents are unjudged (the shared ``score.py``'s formulas)."""
    queries = list(next(iter(runs.values())))
    rows = []
    for name, run in runs.items():
        nd, p1, p2, unjudged = [], [], [], 0
        for q in queries:
            gains = [rel.get((q, d), 0) for d in run[q][:10]]
            unjudged += sum((q, d) not in rel for d in run[q][:10])
            pool = sorted((rel.get((q, d), 0) for d in {d for r in runs.values() for d in r[q][:10]}),
                          reverse=True)[:10]
            dcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(gains))
            idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(pool))
            nd.append(dcg / idcg if idcg else 0.0)
            p1.append(sum(g >= 1 for g in gains) / 10)
            p2.append(sum(g == 2 for g in gains) / 10)
        n = len(queries)
        rows.append((name, sum(nd) / n, sum(p1) / n, sum(p2) / n, unjudged))
    return rows


def write_sheet(path: str, run: dict, queries: list[str], rel: dict, corpus: str) -> int:
    """Write ``run``'s unjudged documents as a blind sheet (one query's documents together,
    shuffled, no system named); returns how many."""
    todo = sorted({(q, d) for q in queries for d in run[q] if (q, d) not in rel})
    need = {d for _, d in todo}
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        docs = {a["id"]: a for a in map(json.loads, f) if a["id"] in need}
    random.Random(7).shuffle(todo)
    todo.sort(key=lambda t: queries.index(t[0]))
    with open(path, "w", encoding="utf-8") as out:
        for q, d in todo:
            a = docs[d]
            out.write(json.dumps({"qid": queries.index(q), "query": q, "doc": d, "title": a["title"],
                                  "date": (a.get("date") or "")[:10], "text": a["body"][:400]},
                                 ensure_ascii=False) + "\n")
    return len(todo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="the service, e.g. http://127.0.0.1:8000")
    ap.add_argument("--name", default="searchsvc", help="this run's name in the table")
    ap.add_argument("--queries", default=str(SHARED / "eval" / "topical" / "queries-dev.txt"))
    ap.add_argument("--peers", default=str(HERE / "runs-peers.json"),
                    help="the peers' first pages for these queries (pool.py's runs.json; held-out: "
                         "runs-peers-heldout.json with --queries bench/topical/queries-heldout.txt)")
    ap.add_argument("--corpus", default=str(SHARED / "corpus" / "articles.jsonl.gz"))
    ap.add_argument("--sheet", help="write the unjudged documents here (a blind sheet)")
    ap.add_argument("--save-run", help="write this run's first pages here (JSON)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=RUN.json",
                    help="another system's saved first pages (--save-run), scored in the same pool")
    args = ap.parse_args()

    queries = read_queries(args.queries)
    runs = {k: v for k, v in json.loads(Path(args.peers).read_text(encoding="utf-8")).items() if k != "searchsvc"}
    for item in args.also:
        name, _, path = item.partition("=")
        runs[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    runs[args.name] = first_pages(args.url, queries)
    if args.save_run:
        Path(args.save_run).write_text(json.dumps(runs[args.name], ensure_ascii=False, indent=1), encoding="utf-8")
    rel = read_judged(HERE / "judged.jsonl")
    print(f"{'system':<18} {'nDCG@10':>8} {'P@10 rel>=1':>12} {'P@10 rel=2':>11} {'unjudged':>9}"
          f"  ({len(queries)} queries, {len(rel)} judgments)")
    for name, nd, p1, p2, unj in score(runs, rel):
        print(f"{name:<18} {nd:>8.3f} {p1:>12.3f} {p2:>11.3f} {unj:>9}")
    if args.sheet:
        todo = write_sheet(args.sheet, runs[args.name], queries, rel, args.corpus)
        print(f"{todo} unjudged documents -> {args.sheet}")


if __name__ == "__main__":
    main()
