"""A worker's per-index-version caches: a thread-safe LRU bounded by bytes (and optionally
by entries) for decoded postings, block directories, query matches; a plain dict emptied
when full for the term dictionary's entries."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Hashable

import cachetools

from .metrics import CACHE


class _Counted:
    """A cache whose lookups are counted (``searchsvc_cache_lookups``) under ``name``, in
    batches (:func:`flush_lookups`): a query looks up ~250 times, and a multiprocess
    counter's ``inc`` costs microseconds."""

    _all: "weakref.WeakSet[_Counted]" = weakref.WeakSet()     # (the counters are process-wide too)
    _all_lock = threading.Lock()     # a view (and its caches) is made in one request thread while others flush

    def __init__(self, name: str):
        self._lock = threading.Lock()
        self._hit, self._miss = CACHE.labels(name, "hit"), CACHE.labels(name, "miss")
        self._counts = [0, 0]     # hits, misses not yet counted into the counters
        with _Counted._all_lock:
            _Counted._all.add(self)

    def flush(self) -> None:
        """Add the lookups made since the last flush to the counters."""
        with self._lock:
            (hits, misses), self._counts = self._counts, [0, 0]
        if hits:
            self._hit.inc(hits)
        if misses:
            self._miss.inc(misses)


class SizedLRU(_Counted):
    """cachetools' LRU with a lock (workers answer from several threads). With
    ``max_items``, every entry counts at least ``max_bytes / max_items``, so neither
    bound is exceeded. A value larger than the whole cache is not kept."""

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int], max_items: int | None = None,
                 name: str = "other"):
        super().__init__(name)
        floor = max_bytes // max_items if max_items else 0
        self._lru = cachetools.LRUCache(max(max_bytes, 1), getsizeof=lambda v: max(floor, sizeof(v), 1))
        self.enabled = max_bytes > 0 and max_items != 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._lru.get(key)
            if self.enabled:
                self._counts[value is None] += 1
        return value

    def peek(self, key: Hashable) -> Any:
        """The value, if kept, without counting a lookup or refreshing it."""
        with self._lock:
            # (the base class's lookup: LRUCache's own would move the key to the front)
            return cachetools.Cache.__getitem__(self._lru, key) if key in self._lru else None

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        with self._lock:
            try:
                self._lru[key] = value
            except ValueError:      # larger than the whole cache
                pass

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def nbytes(self) -> int:
        return self._lru.currsize


class ClearingDict(_Counted):
    """A plain dict of at most ``max_items`` entries, emptied when full, for small entries
    asked for very often (a term's dictionary entry: ~65 times a query). An LRU's locked
    bookkeeping costs ~5 µs a miss and ~3 µs a hit, more than the lookup it saves; here a
    hit is a dict's, and emptying costs a few misses of the terms every query asks. No lock:
    each dict operation is atomic under the GIL (a lookup racing the emptying misses), and a
    count lost to a race only makes the lookup counters a little low."""

    def __init__(self, max_items: int, name: str = "other"):
        super().__init__(name)
        self.max_items = max_items
        self.enabled = max_items > 0
        self._dict: dict = {}

    def get(self, key: Hashable) -> Any:
        value = self._dict.get(key)
        if self.enabled:
            self._counts[value is None] += 1
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        if len(self._dict) >= self.max_items:
            self._dict.clear()
        self._dict[key] = value

    def clear(self) -> None:
        self._dict.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._dict

    def __len__(self) -> int:
        return len(self._dict)


LOOKUP_FLUSH_SECONDS = 1.0   # after a request, lookups are counted at most this often
_last_flush = [0.0]


def flush_lookups(max_age: float = 0.0) -> None:
    """Count every cache's recent lookups: before a scrape and at a worker's exit, and after
    a request once ``max_age`` seconds passed since the last time (every cache's two
    multiprocess counters cost ~40 µs a request). A scrape answered by another worker
    misses the lookups this one made since its last flush, until its next request past
    the second, a scrape it answers, or its exit."""
    now = time.monotonic()
    if max_age and now - _last_flush[0] < max_age:
        return
    _last_flush[0] = now
    with _Counted._all_lock:
        caches = list(_Counted._all)
    for lru in caches:
        lru.flush()
