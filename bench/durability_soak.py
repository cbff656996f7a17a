#!/usr/bin/env python3
"""Durability soak: the write-path state machine of the tests, run long, and 10,000 single PUTs.

    python bench/durability_soak.py [--minutes 3] [--steps 40] [--puts 10000]

Part 1 runs tests/durability_machine.py (puts, deletes, bulk requests, rebuilds,
restarts, concurrent writers, a full disk, kill -9 of writer processes, all
against a dict model, every id checked after every step) with fresh random
examples until --minutes have passed, and prints steps run, faults injected,
writes acknowledged, ids checked and lost (ids served differently from the model;
must be 0). Part 2 PUTs --puts articles one by one through the app, reading each
back at once, and prints open descriptors and segments along the way (they must
stay flat). No shared corpus needed. Exit status 1 on any loss or growth.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hypothesis import settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from durability_machine import DurableWrites, Figures  # noqa: E402
from searchsvc.analysis import Analysis  # noqa: E402
from searchsvc.config import Config  # noqa: E402
from searchsvc.store import IndexStore  # noqa: E402
from writeutil import app_client, gen_article, make_config, open_fds, put, rebuild, served, write_corpus  # noqa: E402


def soak(minutes: float, steps: int, config: Config, analysis: Analysis) -> int:
    DurableWrites.analysis, DurableWrites.base_config = analysis, config
    deadline, runs, lost = time.monotonic() + minutes * 60, 0, 0
    while time.monotonic() < deadline:
        try:
            run_state_machine_as_test(DurableWrites, settings=settings(
                max_examples=5, stateful_step_count=steps, deadline=None, database=None))
        except AssertionError as e:       # Hypothesis has shrunk it: print the minimal case
            print(f"LOST: {e}", file=sys.stderr)
            lost += 1
            break
        runs += 1
    print(f"state machine: {runs * 5} examples, {Figures.steps} steps run, {Figures.faults} faults injected "
          f"(full disk, kill -9; {Figures.interrupted} kills mid-request), {Figures.acked} writes acknowledged, "
          f"{Figures.rejected} rejected (507/500/503), {Figures.checked} ids checked, lost = {lost}")
    return lost


def many_puts(n: int, config: Config, analysis: Analysis) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(config, Path(tmp))
        rebuild(cfg, analysis, write_corpus(Path(tmp) / "corpus.jsonl", 20))
        client = app_client(cfg, analysis)
        t0, seen = time.perf_counter(), []
        for i in range(1, n + 1):
            assert put(client, gen_article(f"p-{i}", i)).status_code == 201
            assert served(client, f"p-{i}") is not None
            if i in (100, n // 10, n // 2, n) or i % 2000 == 0:
                with IndexStore(cfg.index_dir).open().reader() as reader:
                    segments = len(reader.leaf_readers())
                seen.append((i, open_fds(), segments))
                print(f"after {i:>6} PUTs: {open_fds()} descriptors, {segments} segments, "
                      f"{(time.perf_counter() - t0) / i * 1000:.1f} ms per PUT+GET", flush=True)
        first, last = seen[0], seen[-1]
        return last[1] <= first[1] + 8 and max(s for _, _, s in seen) <= 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=40, help="steps per example")
    ap.add_argument("--puts", type=int, default=10_000)
    args = ap.parse_args()
    logging.disable(logging.ERROR)    # the injected faults' "write failed" tracebacks, by the hundred
    config = Config.from_env(environ={}, reload_interval=0.0)
    analysis = Analysis(config.userdict, config.cache_dir).initialize()
    lost = soak(args.minutes, args.steps, config, analysis) if args.minutes > 0 else 0
    flat = many_puts(args.puts, config, analysis) if args.puts > 0 else True
    print(f"descriptors and segments flat: {flat}")
    return 1 if lost or not flat else 0


if __name__ == "__main__":
    sys.exit(main())
