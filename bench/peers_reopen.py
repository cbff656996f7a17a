"""Time the peers on indexes an earlier ``peers.py --workdir DIR`` run built, without
building them again (at x10 that build takes about an hour here), so that a same-session
ratio to the peers stays affordable at every size.

    /path/to/peer-python bench/peers_reopen.py --workdir /tmp/scale/peerwork-x10 \\
        --corpus /tmp/scale/corpus-x10.jsonl.gz --queries ../shared/eval/queries-dev.jsonl

``--corpus`` must be the corpus the indexes were built from (its order names the
documents). The queries run through ``peers.py``'s own ``top``/``all_ids``, as its run
does (each once, in a fresh process: like our `evaluate.py` pass, not warmed first);
prints in-process p50/p99 per query type and overall, as ``peers.py`` computes them.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"


def reopen(peers, name: str, path: str, docs):
    """A peers.py peer answering from the index already at ``path``."""
    peer = peers.PEERS[name]()
    if name == "fts5":
        peer.db = sqlite3.connect(os.path.join(path, "fts5.db"))
    elif name == "tantivy":
        import tantivy
        peer.tv = tantivy
        peer.index = tantivy.Index.open(path)
        peer.schema = peer.index.schema
        peer.searcher = peer.index.searcher()
        peer.ids = [d["id"] for d in docs]
    else:
        raise SystemExit(f"reopening {name} is not supported (fts5, tantivy)")
    return peer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, help="the --workdir of the peers.py run that built the indexes")
    ap.add_argument("--corpus", required=True, help="the corpus they were built from")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--peers", default="fts5,tantivy")
    ap.add_argument("--shared-bench", default=str(SHARED_BENCH), help="where peers.py is")
    args = ap.parse_args()
    sys.path.insert(0, args.shared_bench)
    import peers
    from common import latency_summary      # (peers.py puts ../shared/eval on the path)

    docs = peers.read_corpus(args.corpus, None)
    queries = peers.restrict_queries(peers.load_queries(args.queries, None), {d["id"] for d in docs})
    peers.jieba_module().initialize()
    for name in args.peers.split(","):
        peer = reopen(peers, name, os.path.join(args.workdir, name), docs)
        peer.top(queries[0], peers.TOP_K)       # warm-up, untimed
        by_type: dict[str, list[float]] = {}
        failed = 0
        for q in queries:
            try:
                t = time.perf_counter()
                peer.top(q, peers.TOP_K)
                ms = (time.perf_counter() - t) * 1000
                if q["type"] not in peers.RANK_TYPES:
                    peer.all_ids(q)             # (as peers.py does: outside the timing)
            except Exception as e:              # one bad query must not sink the run (as in peers.py)
                failed += 1
                print(f"[{name}] {q['q']!r}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            by_type.setdefault(q["type"], []).append(ms)
        peer.close()
        every = [ms for v in by_type.values() for ms in v]
        print(f"[{name}] {len(docs)} docs, {len(every)} queries answered, {failed} failed")
        for t, v in sorted(by_type.items()) + [("all", every)]:
            lat = latency_summary(v)            # peers.py's and evaluate.py's percentiles
            print(f"  {t:10s} p50 {lat['p50']:7.2f}  p99 {lat['p99']:7.2f} ms")


if __name__ == "__main__":
    main()
