"""A thread-safe LRU cache bounded by bytes (and optionally by entries), for a worker's
per-index-version caches: decoded postings, block directories, query matches."""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable

import cachetools

from .metrics import CACHE


class SizedLRU:
    """cachetools' LRU with a lock (workers answer from several threads). With
    ``max_items``, every entry counts at least ``max_bytes / max_items``, so neither
    bound is exceeded. A value larger than the whole cache is not kept. Lookups are
    counted (``searchsvc_cache_lookups``) under ``name``."""

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int], max_items: int | None = None,
                 name: str = "other"):
        floor = max_bytes // max_items if max_items else 0
        self._lru = cachetools.LRUCache(max(max_bytes, 1), getsizeof=lambda v: max(floor, sizeof(v), 1))
        self._lock = threading.Lock()
        self.enabled = max_bytes > 0 and max_items != 0
        self._hit, self._miss = CACHE.labels(name, "hit"), CACHE.labels(name, "miss")

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._lru.get(key)
        if self.enabled:
            (self._miss if value is None else self._hit).inc()
        return value

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
