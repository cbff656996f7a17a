"""Time the peers on indexes an earlier ``peers.py --workdir DIR`` run built, without
building them again (at x10 that build takes about an hour here), so that a same-session
ratio to the peers stays affordable at every size.

    /path/to/peer-python bench/peers_reopen.py --workdir /tmp/scale/peerwork-x10 \\
        --corpus /tmp/scale/corpus-x10.jsonl.gz --queries ../shared/eval/queries-dev.jsonl

``--corpus`` must be the corpus the indexes were built from (its order names the
documents). The queries run through ``peers.py``'s own ``top``/``all_ids``, as its run
does (each once, in a fresh process: like our `evaluate.py` pass, not warmed first);
prints in-process p50/p99 per query type and overall, as ``peers.py`` computes them.

With ``--ours URL`` (a running ``searchsvc serve`` on the same corpus), each query is also
asked of our service over HTTP (one keep-alive connection, ``ab_http.py``'s parameters:
pages of 100 for phrase and filtered queries, as ``evaluate.py`` asks; ``--ours-params
per_page=10`` for the page the peers return), the peer and ours in turn, who goes first
alternating: the ratio of our HTTP p50 to the peer's in-process p50 is then taken over the
same seconds of the machine. This machine's speed drifts by 1.5x within minutes; rounds
run one after the other put that drift into the ratio. Each peer's pass asks ours every
query again: the second peer meets our caches warmed by the first (the result cache holds
512 of the 1,200 dev queries).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

from ab_http import CLIENTS, query_params      # bench/ (this script's directory) is on sys.path

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
    ap.add_argument("--ours", metavar="URL", help="also time our service at URL, interleaved per query")
    ap.add_argument("--ours-params", default="", metavar="K=V&...",
                    help="extra query parameters for ours, e.g. per_page=10")
    ap.add_argument("--ours-client", choices=sorted(CLIENTS), default="http.client",
                    help="how our answers are read: http.client (as evaluate.py; ~0.5 ms of its own "
                         "per answer here) or lean (httptools' C parser: the service's latency)")
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
        ours = None
        if args.ours:       # a connection per pass (an idle one is closed after 5 s), opened untimed
            ours = CLIENTS[args.ours_client](args.ours, query_params(args.ours_params))
            ours.time(queries[0])
        by_type: dict[str, list[float]] = {}
        ours_by_type: dict[str, list[float]] = {}
        failed = 0
        for n, q in enumerate(queries):
            mine = ours.time(q) if ours is not None and n % 2 else None    # ours first on odd queries
            try:
                t = time.perf_counter()
                peer.top(q, peers.TOP_K)
                ms = (time.perf_counter() - t) * 1000
                if q["type"] not in peers.RANK_TYPES:
                    peer.all_ids(q)             # (as peers.py does: outside the timing)
            except Exception as e:              # one bad query must not sink the run (as in peers.py)
                failed += 1
                print(f"[{name}] {q['q']!r}: {type(e).__name__}: {e}", file=sys.stderr)
                ms = None
            if ours is not None and not n % 2:
                mine = ours.time(q)
            if ms is not None:                  # (ours over the same queries as the peer's)
                by_type.setdefault(q["type"], []).append(ms)
                if mine is not None:
                    ours_by_type.setdefault(q["type"], []).append(mine)
        peer.close()
        every = [ms for v in by_type.values() for ms in v]
        print(f"[{name}] {len(docs)} docs, {len(every)} queries answered, {failed} failed"
              + (f"; ours over HTTP at {args.ours} {args.ours_params} in turn, read by {args.ours_client}"
                 if ours else ""))
        ours_every = [ms for v in ours_by_type.values() for ms in v]
        for t, v in sorted(by_type.items()) + [("all", every)]:
            lat = latency_summary(v)            # peers.py's and evaluate.py's percentiles
            line = f"  {t:10s} p50 {lat['p50']:7.2f}  p99 {lat['p99']:7.2f} ms"
            if ours is not None:
                mine = latency_summary(ours_every if t == "all" else ours_by_type[t])
                line += (f"   ours p50 {mine['p50']:7.2f}  p99 {mine['p99']:7.2f} ms"
                         f"   ours/{name} p50 {mine['p50'] / lat['p50']:5.2f}x  p99 {mine['p99'] / lat['p99']:5.2f}x")
            print(line)


if __name__ == "__main__":
    main()
