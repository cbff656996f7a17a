"""Prometheus metrics, served at ``/metrics`` in the text exposition format.

Under ``searchsvc serve`` every gunicorn worker counts into files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode; the server sets
the directory up before the app is imported and removes it at exit; ``Config.metrics_dir``),
and a scrape answered by any worker sums them all. Without that directory (falcon.testing,
a plain ``gunicorn searchsvc.wsgi:app``) the counts are this process's own.
Index size, version and age, the journal's length and the caches' hit ratios are
read when scraped.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from .journal import Journal
from .store import IndexMissing

LABELS = ("route", "method", "status")

REQUESTS = Counter("searchsvc_http_requests", "HTTP requests answered", LABELS)
LATENCY = Histogram("searchsvc_http_request_duration_seconds", "Time to answer an HTTP request", LABELS,
                    buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10))
SEARCHES = Counter("searchsvc_searches", "Searches by outcome: hits, relaxed (most words matched), "
                   "zero (no results) or timeout", ["outcome"])
WRITES = Counter("searchsvc_writes", "Articles written through the write API, by operation and outcome",
                 ["operation", "outcome"])
CACHE = Counter("searchsvc_cache_lookups", "Cache lookups by cache and result (hit or miss)", ["cache", "result"])


def count_search(result) -> None:
    SEARCHES.labels("zero" if not result.total else "relaxed" if result.relaxed else "hits").inc()


def journal_length(index_dir: Path) -> tuple[int, int]:
    """(bytes, last sequence number) of the write journal; (0, 0) when there is none."""
    return Journal(index_dir).stats()


def index_age(index_path: Path | None) -> float | None:
    """Seconds since the current index version was committed (its newest table of contents)."""
    if index_path is None:
        return None
    tocs = [p.stat().st_mtime for p in Path(index_path).glob("*.toc")]
    return time.time() - max(tocs) if tocs else None


class StateCollector:
    """Gauges read at scrape time: the index, the journal, the caches' hit ratios."""

    def __init__(self, engine, index_dir: Path, counts):
        self.engine, self.index_dir, self.counts = engine, Path(index_dir), counts
        self.journal = Journal(self.index_dir)

    def collect(self):
        docs = GaugeMetricFamily("searchsvc_index_documents", "Live documents in the index")
        info = GaugeMetricFamily("searchsvc_index_info", "The index version being served", labels=["version"])
        age = GaugeMetricFamily("searchsvc_index_age_seconds", "Seconds since the index version was committed")
        try:
            view = self.engine.view()
        except IndexMissing:
            view = None
        if view is not None:
            docs.add_metric([], view.doc_count)
            info.add_metric([view.version], 1)
            seconds = index_age(self.engine.store.current_path())
            if seconds is not None:
                age.add_metric([], seconds)
        size, seq = self.journal.stats()
        jbytes = GaugeMetricFamily("searchsvc_journal_bytes", "Size of the write journal", value=size)
        jlines = GaugeMetricFamily("searchsvc_journal_last_sequence",
                                   "Sequence number of the last write in the journal", value=seq)
        ratio = GaugeMetricFamily("searchsvc_cache_hit_ratio", "Hits / lookups since start, all workers",
                                  labels=["cache"])
        for cache, (hits, misses) in sorted(self._cache_counts().items()):
            if hits + misses:
                ratio.add_metric([cache], hits / (hits + misses))
        yield from (docs, info, age, jbytes, jlines, ratio)

    def _cache_counts(self) -> dict:
        out: dict[str, list[float]] = {}
        for family in self.counts.collect():
            if family.name != "searchsvc_cache_lookups":
                continue
            for s in family.samples:
                if s.name.endswith("_total"):
                    out.setdefault(s.labels["cache"], [0.0, 0.0])[s.labels["result"] != "hit"] += s.value
        return out


def exposition(engine, index_dir: Path, multiprocess_dir: Path | None = None) -> tuple[bytes, str]:
    """The metrics page: every worker's counters (multiprocess mode, when ``multiprocess_dir``
    is the directory prometheus_client counts into) plus the state gauges."""
    if multiprocess_dir is not None and Path(multiprocess_dir).is_dir():
        counts = CollectorRegistry()
        multiprocess.MultiProcessCollector(counts, path=str(multiprocess_dir))
    else:
        counts = REGISTRY
    registry = CollectorRegistry()
    registry.register(_Forward(counts))
    registry.register(StateCollector(engine, index_dir, counts))
    return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"


class _Forward:
    """Another registry's metrics, within this scrape's registry."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()


def worker_gone(pid: int, multiprocess_dir: Path | None) -> None:
    """Called in the gunicorn master when a worker exited."""
    if multiprocess_dir is not None:
        multiprocess.mark_process_dead(pid, str(multiprocess_dir))
