#!/usr/bin/env python3
"""Indexing benchmark: `searchsvc index --rebuild` beside jieba's raw segmentation.

    python bench/index_bench.py [--corpus ../shared/corpus/articles.jsonl.gz] [--workers 2] [--repeat 1]
                                [--against DIR]

Prints docs/s, MB/s, peak RSS and index size of a full rebuild (every field the
index needs), and the throughput of plain `jieba.lcut` over the same text with
the same number of processes: the ceiling, so our pipeline's overhead is the ratio.
Each rebuild runs between two jieba runs and is compared with their mean; with
``--repeat N`` the figures are medians of N rebuilds (and N + 1 jieba runs). With
``--against DIR`` (another checkout, e.g. a worktree of the previous main) each round
rebuilds with both trees' code, in alternating order, every rebuild bracketed the same way.
"""

import argparse
import gzip
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def texts(corpus):
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        return [(d["title"] + "\n" + d["body"]) for d in map(json.loads, f)]


def _cut(chunk):
    import jieba
    jieba.setLogLevel(60)
    return sum(len(jieba.lcut(t)) for t in chunk)


def jieba_ceiling(all_texts, workers):
    import jieba
    jieba.setLogLevel(60)
    jieba.initialize()                       # dictionary loaded before timing, like peers.py
    chunks = [all_texts[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_cut, chunks)
    return time.perf_counter() - t0


def rebuild(corpus, workers, index_dir, tree=REPO):
    """Seconds, index size and summary line of a rebuild by the code of ``tree`` (the
    working directory comes first on the module path)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "searchsvc", "index", "--rebuild", "--quiet",
                           "--workers", str(workers), "--index", str(index_dir), str(Path(corpus).resolve())],
                          capture_output=True, text=True, check=True, cwd=tree)
    seconds = time.perf_counter() - t0
    current = (index_dir / "current").resolve()
    size = sum(p.stat().st_size for p in current.iterdir())
    return seconds, size, proc.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus" / "articles.jsonl.gz"))
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--against", type=Path, help="another checkout whose rebuilds alternate with this one's")
    args = ap.parse_args()
    all_texts = texts(args.corpus)
    n, chars = len(all_texts), sum(map(len, all_texts))
    mb = sum(len(t.encode("utf-8")) for t in all_texts) / 1e6
    print(f"command: python bench/index_bench.py --corpus {args.corpus} --workers {args.workers} --repeat {args.repeat}"
          + (f" --against {args.against}" if args.against else ""))
    print(f"corpus: {n} articles, {chars / 1e6:.1f} M chars, {mb:.1f} MB UTF-8")
    # Each rebuild is bracketed by a jieba run before and after, and compared with their
    # mean: this machine's speed drifts over minutes (jieba alone swung 19-35 s in one session).
    trees = [REPO] + ([args.against.resolve()] if args.against else [])
    runs, ceilings, ratios = {t: [] for t in trees}, [], {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        ceilings.append(jieba_ceiling(all_texts, args.workers))
        for i in range(args.repeat):
            for tree in trees if i % 2 == 0 else trees[::-1]:
                seconds, size, line = rebuild(args.corpus, args.workers, Path(tmp) / "ix", tree)
                ceilings.append(jieba_ceiling(all_texts, args.workers))
                runs[tree].append(seconds)
                ratios[tree].append(seconds / ((ceilings[-2] + ceilings[-1]) / 2))
                print(f"run {i + 1}{f' ({tree})' if args.against else ''}: jieba {ceilings[-2]:.1f} s, "
                      f"rebuild {seconds:.1f} s, jieba {ceilings[-1]:.1f} s: {ratios[tree][-1]:.2f}x", flush=True)
                if tree == REPO:
                    ours_size, ours_line = size, line
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ours, ceiling = statistics.median(runs[REPO]), statistics.median(ceilings)
    print(f"searchsvc index --rebuild: {ours:.1f} s (median of {len(runs[REPO])}), {n / ours:.0f} docs/s, "
          f"{mb / ours:.2f} MB/s, index {ours_size / 1e6:.1f} MB, peak RSS of a child "
          f"{rss:.0f} MB{' (either tree)' if args.against else ''}  [{ours_line}]")
    print(f"jieba.lcut ceiling ({args.workers} processes): {ceiling:.1f} s (median of {len(ceilings)}), "
          f"{n / ceiling:.0f} docs/s")
    for tree in trees:
        print(f"ratio searchsvc / jieba{f' ({tree})' if args.against else ''} (each rebuild over the mean of the "
              f"jieba runs around it): median {statistics.median(ratios[tree]):.2f}x of "
              f"{', '.join(f'{r:.2f}' for r in ratios[tree])}")


if __name__ == "__main__":
    main()
