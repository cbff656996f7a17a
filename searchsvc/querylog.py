"""The query log behind /popular and autocomplete: queries and counts only.

What is logged is a query's public form (:func:`searchsvc.query.public_form`):
only queries that found articles without relaxing, with negations dropped, so
every logged word occurs in an indexed article.

No IP addresses, user agents or times finer than a day are kept. Each worker
counts in memory and appends ``{"day", "q", "count"}`` lines every
``flush_seconds``; appends of one short line are atomic across processes,
and rotation (by size, under an exclusive lock) keeps ``keep`` old files.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_QUERY_CHARS = 100
REOPEN_TRIES = 5      # a log rotated under a waiting writer is reopened (a rotation per try is unlikely)


def _is_current(f, path: Path) -> bool:
    """Whether the open file ``f`` is still the one at ``path`` (not rotated away since it was opened)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(f.fileno())
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


class QueryLog:
    def __init__(self, path: Path | None, max_bytes: int = 5 << 20, keep: int = 3,
                 flush_seconds: float = 10.0):
        self.path, self.max_bytes, self.keep, self.flush_seconds = path, max_bytes, keep, flush_seconds
        self._pending: Counter = Counter()
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def record(self, query: str) -> None:
        q = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not q or self.path is None:
            return
        with self._lock:
            self._pending[(dt.date.today().isoformat(), q)] += 1
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._last_flush = time.monotonic()
        if not pending or self.path is None:
            return
        self._snapshot = None     # this worker's own counts show at once; others' within the interval
        data = "".join(json.dumps({"day": d, "q": q, "count": n}, ensure_ascii=False) + "\n"
                       for (d, q), n in pending.items()).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(REOPEN_TRIES):
                with open(self.path, "ab") as f:
                    fcntl.flock(f, fcntl.LOCK_EX)
                    if not _is_current(f, self.path):
                        continue    # another worker rotated it while this one waited for the lock
                    f.write(data)
                    f.flush()
                    if f.tell() > self.max_bytes:
                        self._rotate()
                    return
        except OSError:   # the log is a convenience; searching must not fail for it
            pass

    def _rotate(self) -> None:
        """Shift the old files up (the oldest is dropped) and make the log ``.1``; under the
        log's lock, so one worker rotates at a time and each rotation is of the current log."""
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def popular(self, days: int, limit: int, cache_seconds: float = 30.0) -> list[tuple[str, int]]:
        """The most frequent queries of the last ``days`` days (all workers, flushed counts).
        The log is read once per ``cache_seconds`` into arrays; each (days, limit) is then a
        bincount over them, however many distinct pairs clients ask for."""
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.loaded > cache_seconds:
            snap = self._snapshot = self._load()
        since = dt.date.today().toordinal() - (days - 1)
        found = snap.answers.get((since, limit))    # autocomplete asks the same on every keystroke
        if found is None:
            keep = snap.days >= since
            totals = np.bincount(snap.query[keep], weights=snap.count[keep], minlength=len(snap.queries))
            top = np.flatnonzero(totals)
            top = top[np.lexsort((top, -totals[top]))][:limit]
            found = snap.answers[(since, limit)] = [(snap.queries[i], int(totals[i])) for i in top]
        return list(found)

    def _load(self) -> "_Snapshot":
        index: dict[str, int] = {}
        days, query, count = array("i"), array("i"), array("q")

        def add(day: str, q: str, n: int) -> None:
            days.append(dt.date.fromisoformat(day).toordinal())
            query.append(index.setdefault(q, len(index)))
            count.append(n)

        if self.path is not None:
            for i in range(self.keep, -1, -1):
                p = self.path if i == 0 else self.path.with_name(f"{self.path.name}.{i}")
                try:
                    lines = p.read_bytes().splitlines()
                except OSError:
                    continue
                for line in lines:
                    try:
                        rec = json.loads(line)
                        add(rec["day"], str(rec["q"]), int(rec["count"]))
                    except (ValueError, KeyError, TypeError):
                        continue   # a torn or foreign line
        with self._lock:   # this worker's unflushed counts too
            for (d, q), n in self._pending.items():
                add(d, q, n)
        return _Snapshot(time.monotonic(), list(index), np.frombuffer(days, dtype=np.int32),
                         np.frombuffer(query, dtype=np.int32), np.frombuffer(count, dtype=np.int64))


@dataclass
class _Snapshot:
    loaded: float
    queries: list[str]
    days: np.ndarray        # date ordinal of each record
    query: np.ndarray       # index into ``queries``
    count: np.ndarray
    answers: dict = field(default_factory=dict)     # (first day, limit) -> popular()
