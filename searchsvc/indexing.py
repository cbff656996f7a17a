"""Turning articles into index segments: upserts, deletes and rebuilds.

Whoosh's writer, not jieba, is the slow part of indexing (about 6 µs per
posting, most of it reading field lengths back from disk and sorting every
posting tuple). So:

* each worker process analyses its share of the articles *and* writes its own
  segment (``FastSegmentWriter``); the parent only commits the new segments;
* postings are grouped per term in memory (``GroupingPool``) instead of one
  global sort, and field lengths are kept in memory for the postings writer.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import shutil
import sys
import time
import traceback
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.index import TOC
from whoosh.writing import MERGE_SMALL, NO_MERGE, SegmentWriter

from .analysis import Analysis
from .config import Config
from .journal import Journal, final_state
from .parsing import Article, Skip, read_inputs
from .schema import PreCounted, document
from .searching import verify
from .store import IndexBusy, IndexStore
from .whoosh_adapter import PostingListWriter

BLOCK_LIMIT = 128            # W3Codec's postings per block
MIN_COMPRESSED_POSTINGS = 8  # smaller blocks are written uncompressed
BATCH = 200                  # articles per job sent to a worker
SEGMENT_POSTINGS = 20_000_000  # a worker starts a new segment after this many postings
LOCK_TIMEOUT = 10.0
REBUILD_GATE_WAIT = 60.0     # a rebuild waits this long for in-flight API writes
MERGE_MAX_BYTES = 4 << 20    # larger segments are left out of upserts' merges (~0.5 s a MB to rewrite)


class GroupingPool:
    """Whoosh's posting-pool interface, grouping postings per (field, term).

    Whoosh's ``PostingPool`` sorts every ``(field, term, docnum, ...)`` tuple;
    grouping needs one sort of the distinct terms instead. A writer's first
    document is kept as it came (its terms are distinct) and grouped only when a
    second one arrives: writing one article (a PUT) groups nothing.
    """

    def __init__(self):
        self.groups = defaultdict(list)
        self.count = 0
        self._docnum = None     # the only document so far (None: none yet, or grouped)
        self._first = []        # ...its (fieldname, [(term, freq, weight, value), ...])

    def add(self, item):
        fieldname, tbytes, docnum, weight, vbytes = item
        self.add_counted(fieldname, docnum, [(tbytes, None, weight, vbytes)])

    def add_counted(self, fieldname, docnum, items):
        """A document's terms in one field, each once: ``(term, freq, weight, value)``."""
        self.count += len(items)
        if not self.groups and self._docnum in (None, docnum):
            self._docnum = docnum
            self._first.append((fieldname, items))
            return
        self._group_first()
        groups = self.groups
        for tbytes, _freq, weight, vbytes in items:
            groups[fieldname, tbytes].append((docnum, weight, vbytes))

    def _group_first(self):
        first, self._first = self._first, []
        for fieldname, items in first:
            for tbytes, _freq, weight, vbytes in items:
                self.groups[fieldname, tbytes].append((self._docnum, weight, vbytes))
        self._docnum = None

    def fields(self):
        """``(fieldname, terms)`` in field order; ``terms``: ``(term, sorted postings)`` in term order."""
        if self._first and not self.groups:
            fields = defaultdict(list)
            for fieldname, items in self._first:
                fields[fieldname] += items
            docnum = self._docnum
            for fieldname in sorted(fields):
                items = sorted(fields[fieldname], key=lambda item: item[0])
                yield fieldname, ((tbytes, [(docnum, weight, vbytes)]) for tbytes, _freq, weight, vbytes in items)
            return
        self._group_first()
        keys = sorted(self.groups)
        for fieldname, field_keys in itertools.groupby(keys, key=lambda key: key[0]):
            yield fieldname, ((key[1], sorted(self.groups[key])) for key in field_keys)

    def iter_postings(self):
        for fieldname, terms in self.fields():
            for tbytes, postings in terms:
                for docnum, weight, vbytes in postings:
                    yield fieldname, tbytes, docnum, weight, vbytes

    def cleanup(self):
        self.groups.clear()
        self._first = []
        self._docnum = None


class _Codec(W3Codec):
    """W3Codec naming new segments from ``os.urandom``: Whoosh draws names from the
    ``random`` module, whose state Hypothesis resets for every example, so a later
    segment could get an existing one's name. Segments keep a plain W3Codec (it is
    pickled into the TOC), so the files are unchanged."""

    def new_segment(self, storage, indexname):
        return W3Segment(W3Codec(compression=1), indexname, segid=uuid.uuid4().hex[:16])


class FastSegmentWriter(SegmentWriter):
    """A Whoosh ``SegmentWriter`` that writes postings a block at a time.

    Whoosh's writer sorts every posting tuple, reads each posting's field
    length back from disk and feeds the codec one posting at a time (about
    6 µs a posting, most of the indexing time). This writer keeps postings
    grouped per term and field lengths in memory, and writes whole posting
    lists (``whoosh_adapter.PostingListWriter``); the files it writes are
    ordinary Whoosh 2.7 segments (the tests compare them with the stock
    writer's). (Whoosh 2.7.4's inline postings, ``inlinelimit`` > 1, are
    broken: ``W3TermInfo.set_inline`` does not exist.)
    """

    def __init__(self, ix, **kwargs):
        kwargs.setdefault("codec", _Codec(compression=1))
        super().__init__(ix, **kwargs)
        self.pool = GroupingPool()
        self._precounted = {name for name, f in self.schema.items() if isinstance(f, PreCounted)}
        self._lengths = defaultdict(dict)    # fieldname -> {docnum: length}

    def add_document(self, **fields):
        """Whoosh's add_document (no spelling, no vectors, no field boosts), with
        pre-counted term lists handed to the pool whole."""
        self._check_state()
        pdw = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        names = sorted(name for name in fields if not name.startswith("_"))
        self._check_fields(schema, names)
        pdw.start_doc(docnum)
        for name in names:
            value = fields[name]
            if value is None:
                continue
            field = schema[name]
            length = 0
            if field.indexed:
                items = field.index(value)
                if name in self._precounted:
                    self.pool.add_counted(name, docnum, items)
                    length = sum(item[1] for item in items)
                    self._lengths[name][docnum] = length
                else:
                    for tbytes, freq, weight, vbytes in items:
                        length += freq if field.scorable else 0
                        self.pool.add((name, tbytes, docnum, weight, vbytes))
            pdw.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None:
                pdw.add_column_value(name, field.column_type, field.to_column_value(value))
        pdw.finish_doc()
        self._added = True
        self.docnum += 1

    def _flush_segment(self):
        self.perdocwriter.close()
        out = PostingListWriter(self.fieldwriter, self.codec._compression, BLOCK_LIMIT, MIN_COMPRESSED_POSTINGS)
        for fieldname, terms in self.pool.fields():
            out.start_field(fieldname, self.schema[fieldname])
            out.add_many(terms, self._field_lengths(fieldname))
        out.close()

    def _field_lengths(self, fieldname):
        known = self._lengths.get(fieldname)
        if known is not None and len(known) == self.docnum - self.docbase:
            return known.get
        pdr = self.codec.per_document_reader(self.storage, self.get_segment())
        return lambda docnum: pdr.doc_field_length(docnum, fieldname)

    def finish_segment(self):
        """Write this writer's segment without committing a TOC (for a parent to commit)."""
        segment = self._finalize_segment()
        # Not _finish(): the temp directory is shared by every writer of this
        # index and the committing parent removes it.
        self.is_closed = True
        return segment


def merge_small(writer, segments) -> list:
    """Whoosh's MERGE_SMALL among the segments of at most MERGE_MAX_BYTES. Whoosh picks by
    document count, so the one-article segment of a very long article would be rewritten,
    posting by posting, by the fifth upsert after it (17 s for a 5 MB article)."""
    large = {s.segment_id() for s in segments if _segment_bytes(writer.storage, s) > MERGE_MAX_BYTES}
    kept = {s.segment_id() for s in MERGE_SMALL(writer, [s for s in segments if s.segment_id() not in large])}
    return [s for s in segments if s.segment_id() in kept | large]


def _segment_bytes(storage, segment) -> int:
    return sum(storage.file_length(name) for name in segment.list_files(storage))


@dataclass
class Summary:
    indexed: int = 0        # new ids
    updated: int = 0        # ids that replaced an existing article
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    documents: int = 0      # in the index after the run

    def line(self) -> str:
        return (f"indexed {self.indexed}, updated {self.updated}, "
                f"skipped {len(self.skipped)} in {self.seconds:.1f} s")


class Indexer:
    """Adds, replaces and deletes articles in the index at ``config.index_dir``."""

    def __init__(self, config: Config, analysis: Analysis | None = None):
        self.config = config
        self.store = IndexStore(config.index_dir)
        self.analysis = analysis or Analysis.shared(config.userdict, config.cache_dir)

    # ------------------------------------------------------------ public API
    def index_paths(self, paths: Iterable, rebuild: bool = False, workers: int | None = None,
                    on_skip: Callable[[Skip], None] | None = None,
                    progress: Callable[[int], None] | None = None) -> Summary:
        """Read ``paths`` (JSONL files, page files, directories) and index them."""
        t0 = time.perf_counter()
        articles: dict[str, Article] = {}
        skipped = []
        for item in read_inputs(paths, self.config.site_crumbs):
            if isinstance(item, Skip):
                skipped.append(item)
                if on_skip:
                    on_skip(item)
            else:
                articles[item.id] = item      # a later line with the same id wins
        summary = self.index_articles(list(articles.values()), rebuild, workers, progress)
        summary.skipped = skipped
        summary.seconds = time.perf_counter() - t0
        return summary

    def index_articles(self, articles: list[Article], rebuild: bool = False, workers: int | None = None,
                       progress: Callable[[int], None] | None = None,
                       lock_wait: float = LOCK_TIMEOUT) -> Summary:
        self.analysis.initialize()
        digest = self.analysis.segmenter.userdict_digest()
        if rebuild:
            with self.store.rebuild_lock():
                self.store.remove_stale_generations()      # a killed rebuild's leftovers first
                path, ix = self.store.create_generation(digest)
                try:
                    summary = self._write(ix, articles, workers, progress, replace=False)
                    # Writes through the API (the journal) are replayed into the new generation:
                    # all of it first while writers carry on, then, holding the gate so none
                    # lands in the old generation only, what they wrote meanwhile; then the swap
                    # and the checkpoint (the journal compacted to the final state per id).
                    journal = Journal(self.store.root)
                    with journal.locked(timeout=REBUILD_GATE_WAIT):
                        pass                                # migrates a legacy journal, cuts a torn tail
                    _, seen = self._replay_journal(ix, journal)
                    with self.store.write_gate(exclusive=True, timeout=REBUILD_GATE_WAIT), \
                            journal.locked(timeout=REBUILD_GATE_WAIT) as log:
                        self.roll_forward(log)
                        self._replay_journal(ix, journal, start=seen)
                        self.store.swap(path)
                        try:
                            log.checkpoint(journal.replay()[0])
                        except OSError as e:   # the journal stays as it was: still complete
                            print(f"warning: journal not checkpointed: {e}", file=sys.stderr)
                except BaseException:   # e.g. disk full: the live index stays as it was
                    if self.store.current_path() != path:
                        shutil.rmtree(path, ignore_errors=True)
                    raise
                summary.documents = ix.doc_count()
                self.store.remove_stale_generations()
                return summary
        if self.store.exists():
            reasons = self.store.rebuild_reasons(digest)
            if reasons:
                print(f"warning: {'; '.join(reasons)}: run with --rebuild", file=sys.stderr)
        ix = self.store.open_or_create(digest)
        return self._write(ix, articles, workers, progress, replace=True, lock_wait=lock_wait)

    def _replay_journal(self, ix, journal: Journal, start: int = 0) -> tuple[dict, int]:
        """Apply the committed writes of the journal from byte ``start`` to ``ix``
        (one commit); returns (their final state, where the journal ended)."""
        state, end = journal.replay(start)
        if state:
            self.apply_state(ix, state)
        return state, end

    def apply_state(self, ix, state: dict[str, Article | None], lock_wait: float = LOCK_TIMEOUT) -> Summary:
        """Put or delete (None) each id of ``state`` in one commit."""
        return self._write(ix, [a for a in state.values() if a is not None], 1, None, replace=True,
                           lock_wait=lock_wait, deletes=[i for i, a in state.items() if a is None])

    def roll_forward(self, log, lock_wait: float = LOCK_TIMEOUT) -> None:
        """Complete a journaled write left without outcome (its process died before answering):
        reapplied to the live index (idempotent), then marked committed."""
        if log.pending is not None:
            self.apply_state(self.store.open(), final_state([log.pending.ops]), lock_wait)
            log.done(log.pending)

    # ------------------------------------------------------------ internals
    def _writer(self, ix, lock_wait: float = LOCK_TIMEOUT) -> FastSegmentWriter:
        from whoosh.index import LockError
        try:
            return FastSegmentWriter(ix, timeout=lock_wait, delay=0.05)
        except LockError:
            raise IndexBusy(f"the index is locked by another writer (waited {lock_wait:g} s)") from None

    def _write(self, ix, articles, workers, progress, replace: bool, lock_wait: float = LOCK_TIMEOUT,
               deletes: Iterable[str] = ()) -> Summary:
        summary = Summary()
        writer = self._writer(ix, lock_wait)
        try:
            if replace and writer.segments:
                with writer.searcher() as s:
                    for a in articles:
                        summary.updated += bool(writer.delete_by_term("id", a.id, searcher=s))
                    for doc_id in deletes:
                        writer.delete_by_term("id", doc_id, searcher=s)
            summary.indexed = len(articles) - summary.updated
            workers = max(1, min(workers or self.config.workers, -(-len(articles) // BATCH) or 1))
            if workers == 1:
                for a in articles:
                    writer.add_document(**document(a, self.analysis))
                    if progress:
                        progress(1)
                new_segments = []
            else:
                new_segments = self._parallel(ix, articles, workers, progress)
            # Upserts merge small segments (Whoosh's policy), or every write would add one.
            segments = writer._merge_segments(merge_small if replace else NO_MERGE, False, False)
            if writer._added:
                segments.append(writer._finalize_segment())
            else:
                writer._close_segment()
            segments += new_segments
            old = {s.segment_id() for s in writer.segments}
            fresh = [s for s in segments if s.segment_id() not in old]
            if fresh:   # read back as the service will before any reader can see it
                verify(writer.storage, writer.schema, fresh, [a.id for a in articles])
            writer._commit_toc(segments)
            writer._finish()
            summary.documents = ix.doc_count()
        except BaseException:
            if not writer.is_closed:
                writer.cancel()
            if not writer.storage.file_exists(TOC._filename(writer.indexname, writer.generation)):
                raise
            # This writer's TOC is there: the commit happened, only what followed failed
            # (e.g. too many open files). Callers must not report the write as not done.
            logging.getLogger("searchsvc").exception("committed, then finishing the commit failed")
        return summary

    def _parallel(self, ix, articles, workers, progress) -> list:
        """Fork workers that each analyse and write segments; return the segments.

        Worker k gets the k-th contiguous share of the articles: neighbouring
        articles share vocabulary, so the segments' term tables overlap less
        (a smaller index) and the result does not depend on scheduling.
        """
        ctx = multiprocessing.get_context("fork")   # inherit the loaded jieba dictionary
        queues = [ctx.Queue(4) for _ in range(workers)]
        results = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(ix, self.analysis, q, results), daemon=True) for q in queues]
        for p in procs:
            p.start()
        shares = [articles[k * len(articles) // workers:(k + 1) * len(articles) // workers] for k in range(workers)]
        batches = [[share[i:i + BATCH] for i in range(0, len(share), BATCH)] for share in shares]
        segments, finished = [], 0
        try:
            for i in range(max(map(len, batches))):
                for q, worker_batches in zip(queues, batches):   # round robin keeps every worker busy
                    if i < len(worker_batches):
                        finished += _put(q, worker_batches[i], results, segments, progress, procs)
                finished += _collect(results, segments, progress, block=False, procs=procs)
            for q in queues:
                finished += _put(q, None, results, segments, progress, procs)
            while finished < len(procs):
                finished += _collect(results, segments, progress, block=True, procs=procs)
        finally:
            for p in procs:
                if finished < len(procs) and p.is_alive():
                    p.kill()
                p.join()
            if finished < len(procs):
                for q in queues:    # jobs no worker will read: don't wait at exit to flush them
                    q.cancel_join_thread()
        return segments


def _put(q, item, results, segments, progress, procs) -> int:
    """Queue a job; while the worker's queue is full, handle messages, so a worker that
    failed (and stopped reading) raises here instead of blocking the parent forever."""
    finished = 0
    while True:
        try:
            q.put(item, timeout=0.5)
            return finished
        except queue.Full:
            finished += _collect(results, segments, progress, block=False, procs=procs)
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("an indexing worker died") from None


def _collect(results, segments, progress, block: bool, procs) -> int:
    """Handle worker messages (all queued ones, or wait for one); returns workers finished."""
    finished = 0
    while True:
        try:
            kind, value = results.get(timeout=1.0) if block else results.get_nowait()
        except queue.Empty:
            if not block:
                return finished
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("an indexing worker died") from None
            continue
        if kind == "oserror":                 # disk full, permissions: the CLI reports these plainly
            raise OSError(*value)
        if kind == "error":
            raise RuntimeError(f"indexing worker failed:\n{value}")
        if kind == "progress" and progress:
            progress(value)
        if kind == "segments":
            segments.extend(value)
            finished += 1
        if block:
            return finished


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this worker when the parent dies (kill -9 included)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # elsewhere _next_job's parent check still ends it


def _next_job(jobs, parent: int):
    """The next batch; exits when the parent died (a killed `index` must not leave
    workers holding its inherited locks)."""
    while True:
        try:
            return jobs.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                os._exit(1)


def _worker(ix, analysis: Analysis, jobs, results) -> None:
    """Worker process: analyse jobs of articles and write them into segments."""
    parent = os.getppid()
    _die_with_parent()
    try:
        segments, writer = [], None
        while (batch := _next_job(jobs, parent)) is not None:
            for article in batch:
                if writer is None:
                    writer = FastSegmentWriter(ix, _lk=False)
                writer.add_document(**document(article, analysis))
            if writer is not None and writer.pool.count >= SEGMENT_POSTINGS:
                segments.append(writer.finish_segment())
                writer = None
            results.put(("progress", len(batch)))
        if writer is not None:
            segments.append(writer.finish_segment())
        results.put(("segments", segments))
    except OSError as e:
        results.put(("oserror", (e.errno, e.strerror or str(e))))
    except BaseException:
        results.put(("error", traceback.format_exc()))
    finally:
        results.close()
        results.join_thread()
    os._exit(0)  # skip inherited atexit handlers and finalizers of the parent
