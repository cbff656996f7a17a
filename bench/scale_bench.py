#!/usr/bin/env python3
"""Scale benchmark: the corpus replicated x1, x3, x10 under new ids, beside the peers.

    python bench/scale_bench.py [--factors 1 3 10] [--workers 2] [--work-dir /tmp/scale]
        [--peers fts5,tantivy --peer-python /path/to/python --peer-factors 1 10]

For each factor: writes the replicated corpus (copy i of article X gets id
"X~i"; never committed), rebuilds an index from it, and serves it with
`searchsvc serve` (default workers) under ../shared/eval/evaluate.py, sequential
pass only (``--warm N``: after N unmeasured passes, as a server that has been answering
for a while). Prints index time and size, HTTP p50/p99 per query type and worker
memory, so the cost curve is visible. Quality figures are meaningless here
(the ground truth knows one copy of each article), only latency counts.

With ``--peers``, ``../shared/bench/peers.py`` indexes the same replicated corpus at
each of ``--peer-factors`` and answers the same queries in-process (``--peer-python``:
an interpreter with jieba and tantivy); the table then gives our HTTP p50/p99 over
each peer's in-process p50/p99 at that size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import SHARED, evaluate, free_port, memory, wait_healthy, workers_of  # noqa: E402


def replicate(corpus: Path, factor: int, out: Path) -> int:
    n = 0
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        articles = [json.loads(line) for line in f]
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(factor):
            for a in articles:
                copy = dict(a, id=a["id"] if i == 0 else f"{a['id']}~{i}")
                if i and copy.get("url"):
                    copy["url"] = f"{copy['url']}#copy{i}"
                f.write(json.dumps(copy, ensure_ascii=False) + "\n")
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(SHARED / "corpus" / "articles.jsonl.gz"))
    ap.add_argument("--queries", default=str(SHARED / "eval" / "queries-dev.jsonl"))
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="indexing processes")
    ap.add_argument("--work-dir", help="keep corpora and indexes here (default: a temporary directory)")
    ap.add_argument("--reuse", action="store_true", help="with --work-dir: reuse indexes built by an earlier run")
    ap.add_argument("--warm", type=int, default=0, metavar="N",
                    help="ask each server the queries N times before the measured pass (default 0: "
                         "measured cold, just started, its mapped pages and caches empty)")
    ap.add_argument("--peers", help="comma-separated peers of ../shared/bench/peers.py, e.g. fts5,tantivy")
    ap.add_argument("--peer-python", default=sys.executable, help="interpreter for peers.py")
    ap.add_argument("--peer-factors", type=int, nargs="+", default=[1, 10])
    args = ap.parse_args()
    print("command: python bench/scale_bench.py " + " ".join(sys.argv[1:]))
    rows, peers = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for factor in args.factors:
            corpus = work / f"corpus-x{factor}.jsonl.gz"
            index = work / f"index-x{factor}"
            if args.reuse and (index / "current").exists():     # measure queries again, same index
                n, seconds = factor * sum(1 for _ in gzip.open(args.corpus, "rt", encoding="utf-8")), float("nan")
            else:
                n = replicate(Path(args.corpus), factor, corpus)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "searchsvc", "index", "--rebuild", "--quiet", "--workers",
                                str(args.workers), "--index", str(index), str(corpus)], check=True)
                seconds = time.perf_counter() - t0
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--index", str(index),
                                     "--port", str(port)], env=dict(os.environ, SEARCHSVC_LOG_LEVEL="warning"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_healthy(url, proc)
                # sized once serving: `serve` builds an older index's missing sidecars before it answers
                files = list((index / "current").resolve().iterdir())
                size = sum(p.stat().st_size for p in files) / 1e6
                sidecars = sum(p.stat().st_size for p in files if p.suffix == ".ssp") / 1e6
                for _ in range(args.warm):
                    evaluate(url, args.queries, work / f"warm-x{factor}.json", ["--max-ids", "100"])
                result = evaluate(url, args.queries, work / f"eval-x{factor}.json", ["--max-ids", "100"])
                mem = [memory(p) for p in workers_of(proc.pid)]
            finally:
                proc.terminate()
                proc.wait(30)
            rows.append((factor, n, seconds, size, result["summary"], mem))
            print(f"x{factor}: {n} articles indexed in {seconds:.0f} s, {size:.0f} MB "
                  f"(sidecars {sidecars:.0f} MB)", flush=True)
            if args.peers and factor in args.peer_factors:
                out = work / f"peers-x{factor}.json"
                peers[factor] = run_peers(args, corpus, out, reuse=args.reuse and out.exists())
    print(f"\n{'corpus':<8} {'articles':>9} {'index s':>8} {'MB':>6} {'all p50':>8} {'all p99':>8} "
          f"{'worst type p99':>22} {'worker RSS/PSS/USS MB':>24}")
    for factor, n, seconds, size, summary, mem in rows:
        worst = max((k for k in summary if k != "all"), key=lambda k: summary[k]["latency_ms"]["p99"])
        lat = summary["all"]["latency_ms"]
        m = max(mem, key=lambda m: m["rss"])
        print(f"x{factor:<7} {n:>9} {seconds:>8.0f} {size:>6.0f} {lat['p50']:>8.2f} {lat['p99']:>8.2f} "
              f"{worst + ' ' + format(summary[worst]['latency_ms']['p99'], '.1f'):>22} "
              f"{m['rss']:>8.0f}/{m['pss']:.0f}/{m['uss']:.0f}")
    base = {factor: summary["all"]["latency_ms"] for factor, _, _, _, summary, _ in rows}
    if base and 1 in base:
        print("\ngrowth over x1: " + ", ".join(f"x{f} p50 {lat['p50'] / base[1]['p50']:.2f}x, "
                                               f"p99 {lat['p99'] / base[1]['p99']:.2f}x" for f, lat in base.items()))
    if peers:
        print(f"\n{'corpus':<8} {'peer':<8} {'peer p50':>9} {'peer p99':>9} {'our p50':>8} {'our p99':>8} "
              f"{'p50 ratio':>10} {'p99 ratio':>10}")
        for factor, results in peers.items():
            ours = base[factor]
            for name, lat in results.items():
                print(f"x{factor:<7} {name:<8} {lat['p50']:>9.2f} {lat['p99']:>9.2f} {ours['p50']:>8.2f} "
                      f"{ours['p99']:>8.2f} {ours['p50'] / lat['p50']:>10.2f} {ours['p99'] / lat['p99']:>10.2f}")


def run_peers(args, corpus: Path, out: Path, reuse: bool) -> dict:
    """Each peer's in-process latency (all query types) over ``corpus``, from peers.py
    (or from its earlier ``out``, with ``reuse``)."""
    if not reuse:
        subprocess.run([args.peer_python, str(SHARED / "bench" / "peers.py"), "--corpus", str(corpus),
                        "--queries", args.queries, "--peers", args.peers, "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    return {r["system"]: r["summary"]["all"]["latency_ms"] for r in results}


if __name__ == "__main__":
    main()
