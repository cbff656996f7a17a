"""The byte-bounded caches (``cache.py``): lookups counted in batches, safely across threads."""

from __future__ import annotations

import sys
import threading
import time

from prometheus_client import REGISTRY

from searchsvc.cache import SizedLRU, flush_lookups


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("searchsvc_cache_lookups_total", {"cache": "test-flush", "result": result}) or 0


def test_lookups_reach_the_counters_once_flushed():
    lru = SizedLRU(1000, lambda v: 10, name="test-flush")
    lru.put("a", 1)
    assert lru.get("a") == 1 and lru.get("b") is None and lru.peek("a") == 1   # peek: not a lookup
    before = counted("hit"), counted("miss")
    flush_lookups()
    assert (counted("hit") - before[0], counted("miss") - before[1]) == (1, 1)


def test_after_a_request_lookups_are_counted_at_most_once_a_second_and_a_scrape_counts_all():
    lru = SizedLRU(1000, lambda v: 10, name="test-flush")
    flush_lookups()                          # (a scrape, say): the second starts now
    before = counted("miss")
    lru.get("absent")
    flush_lookups(max_age=60)                # after a request, within the minute: not yet
    assert counted("miss") == before
    flush_lookups()                          # a scrape (or a worker's exit): everything
    assert counted("miss") == before + 1
    lru.get("absent")
    time.sleep(0.01)
    flush_lookups(max_age=0.005)             # after a request, past the age: counted
    assert counted("miss") == before + 2


def test_caches_made_while_another_thread_flushes():
    """A request thread opens a new index view (eight caches) while others flush after
    their requests: the registry of caches is never listed while it changes."""
    errors, stop = [], threading.Event()

    def flush():
        while not stop.is_set():
            try:
                flush_lookups()
            except Exception as e:     # the failure this test is about
                errors.append(e)
                return

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        flusher = threading.Thread(target=flush)
        flusher.start()
        for _ in range(20_000):
            SizedLRU(100, len, name="test-race").get("x")    # made and dropped at once
        stop.set()
        flusher.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
