#!/usr/bin/env python3
"""What one very large article costs everyone else: its write, every endpoint that
shows it, and the median of a probe set of searches before and after it is indexed.

    python bench/large_article.py [--mb 5] [--articles 3000] [--probes 300] [--work-dir DIR]

Builds an index of the bundled examples plus the first ``--articles`` articles of
``../shared/corpus`` (generated articles without it), then measures two probes: one
search repeated 100 times as a visitor's would be answered (default configuration),
and a mix of dev queries answered as ``/search`` does with the result cache off (every
query matched and scored anew; the index version's caches of postings, long texts and
snippets stay on, as they are in service). It PUTs one ``--mb`` MB article (real corpus
text repeated, so it holds most of the vocabulary) and times each endpoint on it (median
of 3). The probes then run alternately on a copy of the index taken before the PUT and
on the index after it (each query before, then after), so that the machine's shared
load weighs on both sides alike. Budget: every endpoint under the search budget (2 s),
probe median moved by < 20 %, the PUT under 5 s.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from falcon import testing  # noqa: E402

from searchsvc.app import create_app  # noqa: E402
from searchsvc.cli import EXAMPLE_CORPUS  # noqa: E402
from searchsvc.config import Config  # noqa: E402
from searchsvc.indexing import Indexer  # noqa: E402

SHARED = REPO.parent / "shared"
TOKEN = "bench"


def corpus(n: int) -> list[dict]:
    path = SHARED / "corpus" / "articles.jsonl.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in itertools.islice(f, n)]
    words = "党建 学习 会议 发展 经济 乡村 振兴 基层 组织 纪律 作风 群众 服务 改革 创新".split()
    return [{"id": f"g{i}", "title": f"{words[i % 15]}{words[i * 7 % 15]}工作", "date": "2024-01-01",
             "body": "。".join(words[(i + k) % 15] * 3 for k in range(200))} for i in range(n)]


def probes(n: int) -> list[dict]:
    path = SHARED / "eval" / "queries-dev.jsonl"
    if path.exists():
        qs = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        return qs[::max(1, len(qs) // n)][:n]
    return [{"q": w} for w in "党建 学习 会议 发展 乡村振兴 基层组织 纪律作风".split()]


def params(q: dict) -> dict:
    p = {"q": q["q"]}
    for k in ("section", "from", "to"):
        if q.get(k):
            p[k] = q[k]
    return p


def timed(client, path, **params) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.simulate_get(path, params=params)
    return (time.perf_counter() - t0) * 1000, r.status_code


def probe_medians(before, after, queries) -> tuple[float, float]:
    """Median ms of ``queries`` on each client, each query timed on ``before`` then on ``after``."""
    times = [(timed(before, "/search", **params(q))[0], timed(after, "/search", **params(q))[0]) for q in queries]
    return statistics.median(b for b, _ in times), statistics.median(a for _, a in times)


PROBE = {"q": "党建工作"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--work-dir", type=Path)
    args = ap.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="large-article-"))
    articles = corpus(args.articles)
    data = work / "corpus.jsonl"
    data.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), "utf-8")
    config = Config.from_env(environ={}, index_dir=work / "ix", reload_interval=0.0, write_token=TOKEN,
                             result_cache_size=0, query_log_enabled=False)
    t0 = time.perf_counter()
    Indexer(config).index_paths([data, EXAMPLE_CORPUS], rebuild=True)
    print(f"index: {len(articles) + 12} articles in {time.perf_counter() - t0:.1f} s")
    shutil.copytree(work / "ix", work / "ix-before", symlinks=True)
    client = testing.TestClient(create_app(config))
    queries = probes(args.probes)

    body, size = [], 0
    for a in itertools.cycle(articles):
        body.append(a["body"])
        size += len(a["body"].encode("utf-8")) + 1
        if size >= args.mb * 1e6:
            break
    big = {"title": "超长文章汇编", "body": "\n".join(body), "date": "2024-06-01", "section": "测试 > 长文"}
    t0, cpu0 = time.perf_counter(), time.process_time()
    r = client.simulate_put("/articles/huge", body=json.dumps(big, ensure_ascii=False),
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    put_s, put_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    # CPU seconds too: the wall clock of one PUT on a shared machine says as much about the others' load
    print(f"PUT of a {size / 1e6:.1f} MB article: {r.status_code} in {put_s:.2f} s (CPU {put_cpu:.2f} s)")

    word = "党建"
    endpoints = [("/articles/huge", {}), ("/articles/huge", {"q": "的"}), ("/articles/huge/related", {}),
                 ("/a/huge", {}), ("/a/huge", {"q": "的"}), ("/search", {"q": word}),
                 ("/search", {"q": word, "format": "csv"}), ("/", {"q": word}), ("/suggest", {"q": "dang"})]
    print(f"{'endpoint':40} {'median ms':>10}  status")
    worst = 0.0
    for path, p in endpoints:
        runs = [timed(client, path, **p) for _ in range(3)]
        ms = statistics.median(t for t, _ in runs)
        worst = max(worst, ms)
        label = path + ("?" + "&".join(f"{k}={v}" for k, v in p.items()) if p else "")
        print(f"{label:40} {ms:10.1f}  {runs[0][1]}")
    old = config.with_(index_dir=work / "ix-before")
    visitor = Config().result_cache_size
    clients = [testing.TestClient(create_app(c)) for c in (old, config, old.with_(result_cache_size=visitor),
                                                          config.with_(result_cache_size=visitor))]
    probe_medians(clients[0], clients[1], queries)             # warm the caches
    before, after = probe_medians(clients[0], clients[1], queries)
    single_before, single_after = probe_medians(clients[2], clients[3], [PROBE] * 100)
    print(f"probe search {PROBE['q']!r} x100, default config: before {single_before:.2f} ms, after "
          f"{single_after:.2f} ms ({(single_after / single_before - 1) * 100:+.0f} %)")
    print(f"probe mix ({len(queries)} dev queries, no result cache): before {before:.2f} ms, after {after:.2f} ms "
          f"({(after / before - 1) * 100:+.0f} %)")
    budget = config.search_budget * 1000
    print(f"verdict: PUT {'<' if put_s < 5 else '>='} 5 s; slowest endpoint {worst:.0f} ms "
          f"({'within' if worst < budget else 'over'} the {budget:.0f} ms budget); "
          f"probe search {'within' if single_after <= single_before * 1.2 else 'beyond'} +20 %, "
          f"probe mix {'within' if after <= before * 1.2 else 'beyond'} +20 %")


if __name__ == "__main__":
    main()
