"""The byte-bounded caches (``cache.py``): lookups counted in batches, safely across threads."""

from __future__ import annotations

import sys
import threading
import time

from hypothesis import given, strategies as st
from prometheus_client import REGISTRY

from searchsvc.cache import ClearingDict, SizedLRU, flush_lookups


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("searchsvc_cache_lookups_total", {"cache": "test-flush", "result": result}) or 0


def test_lookups_reach_the_counters_once_flushed():
    lru = SizedLRU(1000, lambda v: 10, name="test-flush")
    lru.put("a", 1)
    assert lru.get("a") == 1 and lru.get("b") is None and lru.peek("a") == 1   # peek: not a lookup
    before = counted("hit"), counted("miss")
    flush_lookups()
    assert (counted("hit") - before[0], counted("miss") - before[1]) == (1, 1)


def test_the_clearing_dicts_lookups_are_counted_too_unless_it_keeps_nothing():
    kept, off = ClearingDict(4, name="test-flush"), ClearingDict(0, name="test-flush")
    kept.put("a", 1)
    off.put("a", 1)
    assert kept.get("a") == 1 and kept.get("b") is None and off.get("a") is None
    before = counted("hit"), counted("miss")
    flush_lookups()
    assert (counted("hit") - before[0], counted("miss") - before[1]) == (1, 1)     # none of off's


@given(st.integers(1, 5), st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.integers()), max_size=60))
def test_the_clearing_dict_answers_what_was_put_or_nothing_and_never_holds_more_than_its_bound(bound, ops):
    """Against a dict model: a kept key gives the value last put (a key put is kept until
    the dict is emptied), an emptied one nothing; never more than ``bound`` entries."""
    cache, model = ClearingDict(bound), {}
    for put, key, value in ops:
        if put:
            cache.put(key, value)
            model[key] = value
            assert cache.get(key) == value
        else:
            assert cache.get(key) in (None, model.get(key))
        assert len(cache) <= bound


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
