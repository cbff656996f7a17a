#!/usr/bin/env python3
"""HTTP benchmark: `searchsvc serve` (default workers) measured by ../shared/eval/evaluate.py.

    python bench/http_bench.py --index index [--load-seconds 30 --concurrency 4] [--out me.json]

Starts the real server on a free loopback port, runs evaluate.py sequentially
(quality + per-type latency) and in load mode, then reads every gunicorn
worker's memory from /proc: RSS (what `ps` shows; counts index pages mapped
from the page cache, shared by all workers), PSS (shared pages divided among
the processes sharing them) and USS (private memory only).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SEARCHSVC_SHARED", REPO.parent / "shared"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server did not become healthy")


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of one process in MB (from /proc/PID/smaps_rollup)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def workers_of(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def suggest_latency(url: str, queries_file, n: int = 600) -> dict:
    """p50/p99 of /suggest over one keep-alive connection: Chinese prefixes, pinyin, initials."""
    import http.client
    import statistics
    import urllib.parse
    from pypinyin import Style, lazy_pinyin
    texts = [json.loads(line)["q"].strip('"') for line in open(queries_file, encoding="utf-8")]
    prefixes = []
    for t in texts[: n // 3]:
        head = t[:4]
        prefixes += [head[:2], "".join(lazy_pinyin(head[:2])), "".join(lazy_pinyin(head, style=Style.FIRST_LETTER))]
    host = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    times = []
    for p in prefixes:
        t0 = time.perf_counter()
        conn.request("GET", "/suggest?" + urllib.parse.urlencode({"q": p}))
        r = conn.getresponse()
        r.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (p, r.status)
    times.sort()
    return {"n": len(times), "p50": statistics.median(times), "p99": times[int(0.99 * (len(times) - 1))]}


def evaluate(url, queries, out, extra):
    cmd = [sys.executable, str(SHARED / "eval" / "evaluate.py"), "--url", url, "--queries", str(queries),
           "--name", "searchsvc", "--out", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.load(open(out))["results"][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(REPO / "index"))
    ap.add_argument("--queries", default=str(SHARED / "eval" / "queries-dev.jsonl"))
    ap.add_argument("--load-seconds", type=float, default=30)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, help="gunicorn workers (default: the service default)")
    ap.add_argument("--out", help="also keep evaluate.py's JSON (sequential run) here")
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "searchsvc", "serve", "--index", args.index, "--port", str(port)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    print("command: python bench/http_bench.py " + " ".join(sys.argv[1:]))
    env = dict(os.environ, SEARCHSVC_LOG_LEVEL="warning")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(url, proc)
        workers = workers_of(proc.pid)
        idle = [memory(p) for p in workers]
        with tempfile.TemporaryDirectory() as tmp:
            seq = evaluate(url, args.queries, args.out or Path(tmp) / "seq.json", [])
            load = evaluate(url, args.queries, Path(tmp) / "load.json",
                            ["--load-only", "--load-seconds", str(args.load_seconds),
                             "--concurrency", str(args.concurrency)])["load"]
        suggest = suggest_latency(url, args.queries)
        busy = [memory(p) for p in workers_of(proc.pid)]
        restarted = set(workers_of(proc.pid)) != set(workers)
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"workers: {len(workers)}{' (a worker was restarted!)' if restarted else ''}")
    print(f"{'type':<10} {'quality':>16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, s in seq["summary"].items():
        quality = (f"MRR@10 {s['mrr10']:.3f}" if "mrr10" in s else
                   f"exact {s['exact']:.3f}" if "exact" in s else "")
        lat = s["latency_ms"]
        print(f"{kind:<10} {quality:>16} {lat['p50']:8.2f} {lat['p95']:8.2f} {lat['p99']:8.2f} {s['errors']:7d}")
    lat = load["latency_ms"]
    print(f"load: {load['concurrency']} clients x {load['seconds']:.0f} s: {load['qps']:.1f} QPS, "
          f"p50/p95/p99 {lat['p50']:.2f}/{lat['p95']:.2f}/{lat['p99']:.2f} ms, {load['errors']} errors")
    print(f"/suggest: {suggest['n']} prefixes (Chinese, pinyin, initials), "
          f"p50 {suggest['p50']:.2f} ms, p99 {suggest['p99']:.2f} ms")
    for label, mem in (("idle", idle), ("after load", busy)):
        print(f"worker memory {label}: " + "; ".join(
            f"RSS {m['rss']:.0f} MB, PSS {m['pss']:.0f} MB, USS {m['uss']:.0f} MB" for m in mem))


if __name__ == "__main__":
    main()
