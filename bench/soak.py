#!/usr/bin/env python3
"""Soak: searches, API writes and a --rebuild at once, against a real `searchsvc serve`.

    python bench/soak.py [--seconds 60] [--articles 1000] [--limit 5000] [--clients 4]

Builds an index of the first --limit corpus articles, serves it (2 workers, write
API on, loopback only), then for --seconds: --clients threads search the dev
queries; one writer upserts --articles new articles through the write API
(bulk batches and single PUTs), deletes a fifth of them, and retries a 503 after
its Retry-After; a third of the way in, `searchsvc index --rebuild` rebuilds the
index from the same corpus and swaps it. At the end every acknowledged write is
checked (present with its content, or absent when deleted), the 5xx count and
the worker pids (no restarts) are reported; the exit status is 1 on any failure.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import SHARED, free_port, wait_healthy, workers_of  # noqa: E402

TOKEN = "soak-token"


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, headers=None):
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            return r.status, r.read(), r.getheader("Retry-After")
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise


def article(i: int, version: int) -> dict:
    return {"id": f"soak-{i}", "title": f"耐久测试文章{i}第{version}版", "body": f"耐久测试正文{i}，版本{version}。" * 20,
            "section": "工作动态 > 耐久测试", "date": "2026-11-26T10:00"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(SHARED / "corpus" / "articles.jsonl.gz"))
    ap.add_argument("--queries", default=str(SHARED / "eval" / "queries-dev.jsonl"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=5000, help="corpus articles to index and rebuild")
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    print("command: python bench/soak.py " + " ".join(sys.argv[1:]))
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    corpus = tmp / "corpus.jsonl"
    with gzip.open(args.corpus, "rt", encoding="utf-8") as src:
        corpus.write_text("".join(itertools.islice(src, args.limit)), encoding="utf-8")
    index = tmp / "index"
    subprocess.run([sys.executable, "-m", "searchsvc", "index", "--quiet", "--index", str(index), str(corpus)],
                   check=True)
    port = free_port()
    env = dict(os.environ, SEARCHSVC_WRITE_TOKEN=TOKEN, SEARCHSVC_LOG_LEVEL="warning")
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--index", str(index), "--port", str(port),
                               "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    queries = [json.loads(line)["q"] for line in open(args.queries, encoding="utf-8")]
    stats = {"searches": 0, "search_5xx": 0, "search_errors": 0, "writes": 0, "write_5xx": 0, "retries": 0,
             "latencies": []}
    expected: dict[str, dict | None] = {}
    lock = threading.Lock()
    failures = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        time.sleep(2)                                     # both workers booted
        pids = set(workers_of(server.pid))
        deadline = time.monotonic() + args.seconds

        def searcher(seed):
            rnd, client = random.Random(seed), Client(port)
            while time.monotonic() < deadline:
                q = rnd.choice(queries)
                t0 = time.perf_counter()
                try:
                    status, _, _ = client.call("GET", "/search?" + urllib.parse.urlencode({"q": q}))
                except (OSError, http.client.HTTPException):
                    client = Client(port)
                    with lock:
                        stats["search_errors"] += 1
                    continue
                with lock:
                    stats["searches"] += 1
                    stats["latencies"].append((time.perf_counter() - t0) * 1000)
                    stats["search_5xx"] += status >= 500

        def send(client, method, path, body, on_ok):
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            while True:
                status, data, retry = client.call(method, path, body, headers)
                if status == 503 and retry:
                    with lock:
                        stats["retries"] += 1
                    time.sleep(float(retry))
                    continue
                with lock:
                    stats["writes"] += 1
                    stats["write_5xx"] += status >= 500
                if status < 300 or (method == "DELETE" and status == 404):
                    on_ok(json.loads(data))
                else:
                    failures.append(f"{method} {path}: {status} {data[:200]!r}")
                return

        def writer():
            client, n, version = Client(port), args.articles, 1
            per_slice = max(1, n // 10)
            for start in range(0, n, per_slice):       # spread over the run
                batch = [article(i, version) for i in range(start, min(n, start + per_slice))]
                bulk, singles = batch[: len(batch) // 2], batch[len(batch) // 2:]
                body = "\n".join(json.dumps(a, ensure_ascii=False) for a in bulk).encode()
                send(client, "POST", "/articles/bulk", body,
                     lambda r, bulk=bulk: expected.update({a["id"]: a for a in bulk}))
                for a in singles:
                    send(client, "PUT", "/articles/" + a["id"], json.dumps(a, ensure_ascii=False).encode(),
                         lambda r, a=a: expected.update({a["id"]: a}))
                for a in batch[::5]:
                    send(client, "DELETE", "/articles/" + a["id"], None,
                         lambda r, a=a: expected.update({a["id"]: None}))
                time.sleep(max(0.0, (deadline - time.monotonic()) / 12))

        def rebuild():
            time.sleep(args.seconds / 3)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "searchsvc", "index", "--rebuild", "--quiet", "--workers", "1",
                                "--index", str(index), str(corpus)], capture_output=True, text=True)
            stats["rebuild"] = f"exit {r.returncode} in {time.perf_counter() - t0:.1f} s {r.stderr.strip()[-200:]}"
            if r.returncode:
                failures.append("rebuild failed: " + r.stderr[-500:])

        threads = [threading.Thread(target=searcher, args=(i,)) for i in range(args.clients)]
        threads += [threading.Thread(target=writer), threading.Thread(target=rebuild)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.5)                                  # every worker past its reload interval
        check = Client(port)
        present = 0
        for doc_id, want in expected.items():
            status, data, _ = check.call("GET", "/articles/" + doc_id)
            if want is None:
                if status != 404:
                    failures.append(f"{doc_id}: deleted but GET gave {status}")
            elif status != 200:
                failures.append(f"{doc_id}: acknowledged but GET gave {status}")
            else:
                got = json.loads(data)
                if (got["title"], got["body"]) != (want["title"], want["body"]):
                    failures.append(f"{doc_id}: content differs")
                present += 1
        status, data, _ = check.call("GET", "/search?" + urllib.parse.urlencode(
            {"q": '"耐久测试正文"', "per_page": 1}))
        total = json.loads(data).get("total") if status == 200 else None
        if total is None:
            failures.append(f"final search failed: {status} {data[:200]!r}")
        elif total != present:
            failures.append(f"search finds {total} soak articles, expected {present}")
        restarted = set(workers_of(server.pid)) != pids
        if restarted:
            failures.append("a worker was restarted")
    finally:
        server.terminate()
        server.wait(30)
    lat = sorted(stats["latencies"]) or [0]
    print(f"searches: {stats['searches']} ({stats['searches'] / args.seconds:.0f}/s), "
          f"p50 {lat[len(lat) // 2]:.1f} ms, p99 {lat[int(0.99 * (len(lat) - 1))]:.1f} ms, "
          f"5xx {stats['search_5xx']}, connection errors {stats['search_errors']}")
    print(f"writes: {stats['writes']} requests, 5xx {stats['write_5xx']}, 503-retries {stats['retries']}; "
          f"acknowledged articles {len(expected)} (kept {present}, deleted {len(expected) - present}); "
          f"search total {total}")
    print(f"rebuild: {stats.get('rebuild')}; worker restarts: {'yes' if restarted else 'none'}")
    print("RESULT: " + ("ok" if not failures and not stats["search_5xx"] else "FAILED"))
    for f in failures[:20]:
        print("  " + f)
    text = (tmp / "server.log").read_text(errors="replace")
    if "Traceback" in text:
        print("first server traceback:\n" + text[text.index("Traceback"):][:3000])
    return 1 if failures or stats["search_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
