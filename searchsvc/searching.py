"""Answering queries: matching, ranking, filters, facets, paging.

Whoosh stores the index; evaluation is vectorised with numpy over per-term
posting arrays, because Whoosh's own matchers and collectors spend ~10 µs of
Python per matching document (the naive peer's 24 ms median).

Matching is substring matching, as grep would do it on normalised text: an
article matches a word or a quoted phrase when its title or body contains it.
Candidates come from the character field (all of the text's bigrams, or its
one unigram), and are confirmed against the stored normalised text when the
grams alone cannot prove it. Articles whose jieba words include the word are
confirmed without reading anything.

Ranking is BM25F over the jieba word fields (title weighted above body; char
grams stand in for words jieba never produced), multiplied by a boost when
the whole query occurs contiguously in the title or body; newer first on ties.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import unicodedata
from dataclasses import dataclass, field as dc_field

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.reading import MultiReader, SegmentReader
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from . import spelling
from .analysis import Analysis, OffsetMap, phrase_bigrams
from .cache import SizedLRU
from .lexicon import Lexicon
from .postings import TermBlocks, term_blocks
from .related import key_terms, related_docs
from .highlight import SNIPPET_SCAN_CHARS, highlight, snippet
from .query import Clause, ParsedQuery, parse
from .schema import HEAD_BYTES, UNDATED, date_to_minutes, stored_article
from .store import IndexMissing, IndexStore
from .synonyms import Synonyms

K1 = 1.6                   # tuned on queries-dev (grid 1.2/1.6/2.0 x title 1.5/2.5)
B = 0.75
TITLE_BOOST = 1.5          # BM25F weight of a title occurrence vs a body one
GRAM_WEIGHT = 0.5          # char-gram BM25 standing in for a word jieba never produced
# Articles holding the whole query contiguously rank before those holding only its
# words (like a match_phrase boost that always wins): tier 3 = the title is the
# query, 2 = the title contains it, 1 = the body does. Scores are tier * TIER + BM25F.
TIER = 1000.0
SPARSE_RATIO = 16       # posting list 16x longer than the documents asked about: skip, don't decode,
SPARSE_MIN_DF = 20_000  # ...if it is long at all (shorter ones decode fast and stay cached)
HEAD_SCAN_MIN = 2_000   # candidates from which heads are searched by numpy, not one by one
GRAM_DECODE_RATIO = 30  # decoding a posting ~0.3 µs, confirming a text ~10 µs (Plan._candidates)
LONG_TEXT_BYTES = 256 << 10  # texts at least this long are kept decompressed (IndexView._long)
TIER_SCAN_BYTES = 60_000  # text searched for the query across line breaks (tier 1), per article
SORTS = ("relevance", "newest", "oldest")
RESULT_CACHE_BYTES = 16 << 20   # cached matches per worker (RSS budget)
FEW_HITS = 2                    # at most this many hits for a short query: look for a did-you-mean
SHORT_QUERY = 8                 # (long queries are pasted titles and sentences, rarely typos)
SUGGEST_FACTOR = 5              # ...offered when it finds this many times more
LEXICON_MAX_AGE = 600.0         # seconds before the vocabulary is refreshed for new writes
MINUTES_PER_DAY = 24 * 60
_LENGTH_TABLE = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)


class SearchTimeout(Exception):
    """A query ran over its time budget (and was stopped, freeing the worker thread)."""


class BadRequest(ValueError):
    """A parameter the engine cannot use; ``param`` names it."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SearchRequest:
    q: str = ""
    sections: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = "relevance"
    page: int = 1
    per_page: int = 10


@dataclass
class SearchResult:
    total: int
    hits: list[dict]
    facets: dict
    relaxed: bool = False
    took_ms: float = 0.0
    version: str = ""
    expansions: dict = dc_field(default_factory=dict)
    suggestion: str | None = None

    def to_json(self, req: SearchRequest) -> dict:
        """The response body of ``GET /search`` (and of ``searchsvc search --json``)."""
        return {"query": req.q, "total": self.total, "page": req.page, "per_page": req.per_page,
                "took_ms": self.took_ms, "relaxed": self.relaxed, "suggestion": self.suggestion,
                "expansions": self.expansions, "hits": self.hits, "facets": self.facets}


class IndexView:
    """One open version of the index: a Whoosh searcher plus per-document arrays.

    ``source`` is an index (what the service opens) or a Whoosh reader over some
    segments (what a writer checks before it publishes them, see :func:`verify`).
    """

    def __init__(self, source, version: str, cache_bytes: int = 48 << 20):
        self.version = version
        self.searcher = source.searcher() if hasattr(source, "searcher") else Searcher(source)
        reader = self.searcher.reader()
        self.leaves = [(leaf, base) for leaf, base in reader.leaf_readers() if leaf.doc_count_all()]
        self.n = reader.doc_count_all()
        self.live = np.zeros(self.n, dtype=bool)
        self.date = np.full(self.n, UNDATED, dtype=np.int64)
        sections: dict[str, int] = {"": 0}
        self.section_ord = np.zeros(self.n, dtype=np.int32)
        self.lengths = {f: np.zeros(self.n, dtype=np.float32) for f in ("title", "body", "title_c", "text_c")}
        self._norm_cols = []
        heads = []
        for leaf, base in self.leaves:
            count = leaf.doc_count_all()
            span = slice(base, base + count)
            self.live[[base + d for d in leaf.all_doc_ids()]] = True
            if leaf.has_column("date"):
                self.date[span] = np.fromiter(leaf.column_reader("date"), dtype=np.int64, count=count)
            if leaf.has_column("section"):
                self.section_ord[span] = [sections.setdefault(s or "", len(sections))
                                          for s in leaf.column_reader("section")]
            for f, arr in self.lengths.items():
                col = leaf._perdoc._cached_reader(_lenfield(f), LENGTHS_COLUMN)   # Whoosh's length bytes
                if col is not None:     # None: no document of the segment has a word in f
                    arr[span] = _LENGTH_TABLE[np.fromiter(col, dtype=np.uint8, count=count)]
            self._norm_cols.append((base, count, leaf.column_reader("norm")))
            heads.append(_column_bytes(leaf, "head", count, HEAD_BYTES))
        self.heads = b"".join(heads)     # HEAD_BYTES per document, docnum order
        self.head_rows = np.frombuffer(self.heads, dtype=f"S{HEAD_BYTES}")   # the same bytes, as rows
        self.sections = [s for s, _ in sorted(sections.items(), key=lambda kv: kv[1])]
        self.doc_count = int(self.live.sum())
        self.avg = {f: float(a[self.live].mean()) if self.doc_count else 1.0 for f, a in self.lengths.items()}
        undated = self.date == UNDATED
        days = np.where(undated, 0, self.date // MINUTES_PER_DAY).astype("datetime64[D]")
        self.year = np.where(undated, -1, days.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32)
        # Decoded posting arrays of recent terms, and block directories of long posting
        # lists, bounded by bytes (worker RSS budget).
        self._cache = SizedLRU(cache_bytes, lambda p: p[0].nbytes + p[1].nbytes + 200, name="postings")
        self._blocks = SizedLRU(cache_bytes // 8, lambda d: sum(b.nbytes for b, _, _ in d), name="blocks")
        self._masks = SizedLRU(cache_bytes // 4, lambda bits: bits.nbytes + 100, name="masks")
        # The texts of very long articles, which would otherwise be inflated on every
        # query they are a candidate for or a hit of.
        self._long = SizedLRU(cache_bytes // 2, _text_size, name="long texts")
        self._df: dict = {}

    def close(self):
        self.searcher.close()

    # ------------------------------------------------------------ postings
    def postings(self, fieldname: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(global docnums, term frequencies) of a term, deleted documents included."""
        key = (fieldname, term)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ids, tfs = [], []
        for blocks, base, _count in self._term_blocks(fieldname, term):
            i, w = blocks.decode()
            ids.append(i + base)
            tfs.append(w)
        result = ((np.concatenate(ids).astype(np.int32), np.concatenate(tfs)) if ids
                  else (np.zeros(0, np.int32), np.zeros(0, np.float32)))
        self._cache.put(key, result)
        return result

    def term_freqs(self, fieldname: str, term: str, docs: np.ndarray) -> np.ndarray:
        """The term's frequency in each of ``docs`` (sorted global docnums; 0 where absent).
        For a few documents and a long posting list only the blocks that can hold them
        are decoded (found in the term's block directory, which is kept)."""
        key = (fieldname, term)
        hit = self._cache.get(key)
        df = self.doc_frequency(fieldname, term)
        if hit is not None or df < SPARSE_MIN_DF or len(docs) * SPARSE_RATIO >= df:
            ids, tfs = hit if hit is not None else self.postings(fieldname, term)
            if not len(ids):
                return np.zeros(len(docs), dtype=np.float32)
            pos = np.minimum(np.searchsorted(ids, docs), len(ids) - 1)
            return np.where(ids[pos] == docs, tfs[pos], 0).astype(np.float32)
        directory = self._blocks.get(key)
        if directory is None:
            directory = self._term_blocks(fieldname, term)
            self._blocks.put(key, directory)
        out = np.zeros(len(docs), dtype=np.float32)
        for blocks, base, count in directory:
            lo, hi = np.searchsorted(docs, [base, base + count])
            if lo < hi:
                out[lo:hi] = blocks.weights_of(docs[lo:hi] - base)
        return out

    def _term_blocks(self, fieldname: str, term: str) -> list[tuple[TermBlocks, int, int]]:
        """The term's posting list in each segment holding it, with the segment's
        first global docnum and its document count."""
        tbytes = term.encode("utf-8")
        found = []
        for leaf, base in self.leaves:
            blocks = term_blocks(leaf, fieldname, tbytes)
            if blocks is not None:
                found.append((blocks, base, leaf.doc_count_all()))
        return found

    def doc_frequency(self, fieldname: str, term: str) -> int:
        """Articles holding the term (deleted ones included), from the term dictionary
        alone: no postings are decoded."""
        key = (fieldname, term)
        df = self._df.get(key)
        if df is None:
            tbytes = term.encode("utf-8")
            df = sum(leaf.doc_frequency(fieldname, tbytes) for leaf, _ in self.leaves)
            if len(self._df) > 100_000:
                self._df.clear()
            self._df[key] = df
        return df

    def mask(self, fieldname: str, term: str) -> np.ndarray:
        """Articles holding the term (a new array). Kept as bits, 64x smaller than the
        decoded postings: common grams recur in most queries."""
        key = (fieldname, term)
        bits = self._masks.get(key)
        if bits is None:
            m = np.zeros(self.n, dtype=bool)
            m[self.postings(fieldname, term)[0]] = True
            self._masks.put(key, np.packbits(m))
            return m
        return np.unpackbits(bits, count=self.n).view(bool)

    def norm_bytes(self, docnum: int) -> bytes:
        """The article's normalised "title\\nbody", UTF-8 (a UTF-8 substring test equals a str one)."""
        hit = self._long.get(("norm", docnum))
        if hit is not None:
            return hit
        for base, count, col in self._norm_cols:
            if base <= docnum < base + count:
                text = col[docnum - base]
                if len(text) >= LONG_TEXT_BYTES:    # decompressing it again would cost milliseconds
                    self._long.put(("norm", docnum), text)
                return text
        raise IndexError(docnum)

    def head(self, docnum: int) -> bytes:
        """The first HEAD_BYTES of the normalised text (NUL-padded), decompressing nothing."""
        return self.heads[docnum * HEAD_BYTES:(docnum + 1) * HEAD_BYTES]

    def heads_contain(self, docs: np.ndarray, text: bytes, title_only: bool = False) -> np.ndarray:
        """Whether each of ``docs`` holds ``text`` in its head (in its title, with
        ``title_only``): a confirmation that decompresses nothing."""
        if len(docs) < HEAD_SCAN_MIN:       # a Python loop beats numpy's set-up
            head = self.head
            return np.fromiter((text in (head(d).split(b"\n", 1)[0] if title_only else head(d))
                                for d in docs.tolist()), dtype=bool, count=len(docs))
        rows = self.head_rows.take(docs)
        found = np.strings.find(rows, text)
        if not title_only:
            return found >= 0
        newline = np.strings.find(rows, b"\n")
        return (found >= 0) & ((newline < 0) | (found + len(text) <= newline))

    def title_bytes(self, docnum: int) -> bytes:
        """The normalised title, UTF-8: from the head column unless the title is longer."""
        title, newline, _ = self.head(docnum).partition(b"\n")
        return title if newline else self.norm_bytes(docnum).split(b"\n", 1)[0]

    def norm_text(self, docnum: int) -> str:
        return self.norm_bytes(docnum).decode("utf-8")

    def stored(self, docnum: int) -> dict:
        hit = self._long.get(("stored", docnum))
        if hit is not None:
            return hit
        fields = self.searcher.stored_fields(docnum)
        if len(fields["doc"].get("body") or "") * 3 >= LONG_TEXT_BYTES:    # (inflating 5 MB: ~10 ms)
            self._long.put(("stored", docnum), fields)
        return fields

    def docnum_for_id(self, doc_id: str) -> int | None:
        ids, _ = self.postings("id", unicodedata.normalize("NFC", doc_id))   # ids are stored NFC
        live = [int(d) for d in ids if self.live[d]]
        return live[-1] if live else None


VERIFY_SAMPLE = 64      # articles read back from new segments before they are published


def _text_size(value) -> int:
    return len(value) if isinstance(value, bytes) else 3 * len(value["doc"].get("body") or "") + 1000


def verify(storage, schema, segments, ids) -> None:
    """Open new ``segments`` the way the service does and read a sample of ``ids`` back
    (their stored fields and normalised text); raises :class:`UnreadableIndex` when that
    fails, so nothing a worker cannot open is ever made current."""
    step = max(1, len(ids) // VERIFY_SAMPLE)
    view = None
    try:
        view = IndexView(MultiReader([SegmentReader(storage, schema, s) for s in segments]), "verify",
                         cache_bytes=1 << 20)
        for doc_id in list(ids)[::step] + list(ids)[-1:]:
            docnum = view.docnum_for_id(doc_id)
            if docnum is None:
                raise ValueError(f"article {doc_id!r} is missing")
            view.norm_bytes(docnum)
            view.stored(docnum)
    except Exception as e:
        raise UnreadableIndex(f"the new index version cannot be read back ({type(e).__name__}: {e}); "
                              f"nothing was published") from e
    finally:
        if view is not None:
            view.close()


class UnreadableIndex(Exception):
    """What a write produced cannot be opened by the service's reader (not published)."""


def _column_bytes(leaf, name: str, count: int, width: int) -> bytes:
    """A fixed-width column of one segment as one bytes object (one read, not one per document)."""
    reader = leaf.column_reader(name, translate=False)
    stored = reader._dbfile.get(reader._basepos, reader._count * width)
    return stored + b"\0" * (count * width - len(stored))


class Engine:
    """Long-lived per process: the current index view and the search logic."""

    def __init__(self, store: IndexStore, analysis: Analysis, reload_interval: float = 1.0,
                 max_result_window: int = 10_000, result_cache_size: int = 512,
                 synonyms: Synonyms | None = None, budget: float = 2.0, postings_cache_mb: int = 32):
        self.store = store
        self.analysis = analysis
        self.synonyms = synonyms or Synonyms(None)
        self.budget = budget
        self.postings_cache_bytes = postings_cache_mb << 20
        self._lexicon: tuple[str, float, Lexicon, str] | None = None   # generation, built, lexicon, version
        self._lexicon_thread: threading.Thread | None = None
        self.reload_interval = reload_interval
        self.max_result_window = max_result_window
        self._view: IndexView | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.error: str | None = None
        # Recent query matches keyed by (index version, query, filters): paging,
        # re-sorting and popular queries skip matching. Bounded by entries and bytes.
        self._results = SizedLRU(RESULT_CACHE_BYTES, lambda m: m.nbytes, max_items=result_cache_size,
                                 name="results")

    @classmethod
    def from_config(cls, config, analysis: Analysis | None = None) -> "Engine":
        """The engine every entry point uses (API, CLI, benchmarks): one set of settings."""
        analysis = analysis or Analysis.shared(config.userdict, config.cache_dir)
        return cls(IndexStore(config.index_dir), analysis, config.reload_interval, config.max_result_window,
                   config.result_cache_size, Synonyms(config.synonyms, analysis.normalizer),
                   config.search_budget, config.postings_cache_mb)

    # ------------------------------------------------------------ index versions
    def invalidate(self) -> None:
        """Check for a new index version on the next request (after this process wrote)."""
        self._checked = float("-inf")

    def view(self) -> IndexView:
        """The current index view, reopened when a new version was committed."""
        now = time.monotonic()
        view = self._view
        if view is not None and now - self._checked < self.reload_interval:
            return view
        with self._lock:
            self._checked = time.monotonic()
            try:
                version = self.store.version()
            except OSError as e:
                version, self.error = None, str(e)
            if version is None:
                if self._view is None:
                    self.error = self.error or f"no index in {self.store.root}"
                    raise IndexMissing(self.error)
                return self._view
            if self._view is None or self._view.version != version:
                try:
                    new = IndexView(self.store.open(), version, self.postings_cache_bytes)
                except Exception as e:  # a damaged index must not take the service down
                    self.error = str(e) if isinstance(e, IndexMissing) else (
                        f"index cannot be opened: {e} (rebuild it with: searchsvc index --rebuild PATH)")
                    if self._view is None:
                        raise IndexMissing(self.error) from e
                    return self._view
                # The old view is not closed: requests still running on it keep it alive, and
                # its descriptors close when the last of them lets go (PreadFileStorage).
                self._view, self.error = new, None
                self._results.clear()
            return self._view

    # ------------------------------------------------------------ search
    def search(self, req: SearchRequest) -> SearchResult:
        t0 = time.perf_counter()
        if req.sort not in SORTS:
            raise BadRequest("sort", f"sort must be one of {', '.join(SORTS)}")
        if req.page * req.per_page > self.max_result_window:
            raise BadRequest("page", f"page × per_page may not exceed {self.max_result_window}")
        view = self.view()
        matches = self.matches(view, req)
        start = (req.page - 1) * req.per_page
        page_docs, scores = self._order(view, matches, req.sort, start + req.per_page)
        page_docs, scores = page_docs[start:], scores[start:]
        hits = [self._hit(view, int(d), float(s), matches.needles) for d, s in zip(page_docs, scores)]
        return SearchResult(total=int(len(matches.docs)), hits=hits, facets=matches.facets,
                            relaxed=matches.relaxed, took_ms=round((time.perf_counter() - t0) * 1000, 2),
                            version=view.version, expansions=matches.expansions,
                            suggestion=matches.suggestion)

    def matches(self, view: "IndexView", req: SearchRequest) -> "Matches":
        """Every article the query and filters select, scored; cached per index version
        (and synonyms table) so paging, re-sorting and repeated queries skip matching."""
        synonyms = self.synonyms.table()
        key = (view.version, id(synonyms), req.q, req.sections, req.date_from, req.date_to)
        found = self._results.get(key)
        if found is None:
            found = self._match(view, req, synonyms)
            self._results.put(key, found)
        return found

    def _match(self, view: "IndexView", req: SearchRequest, synonyms) -> "Matches":
        parsed = parse(req.q)
        deadline = time.perf_counter() + self.budget
        plan = Plan(view, self.analysis, parsed, synonyms, deadline=deadline)
        section_mask = self._section_mask(view, req.sections)
        date_mask = self._date_mask(view, req.date_from, req.date_to)
        # The facets count matches inside the other filter, the hits inside both: with
        # both filters, matches outside either are never looked at.
        scope = section_mask | date_mask if section_mask is not None and date_mask is not None else None
        matched, relaxed = plan.match(scope)
        base = matched & view.live
        facets = {
            "section": self._section_facet(view, base & date_mask if date_mask is not None else base),
            "year": self._year_facet(view, base & section_mask if section_mask is not None else base),
        }
        final = base
        for m in (section_mask, date_mask):
            if m is not None:
                final = final & m
        docs = np.flatnonzero(final)
        scores = None if parsed.is_empty else plan.scores(docs)
        suggestion = None
        few = len(docs) == 0 or (len(docs) <= FEW_HITS and len(req.q) <= SHORT_QUERY)
        if (relaxed or few) and parsed.is_plain:
            try:
                suggestion = self._did_you_mean(view, req, synonyms, 0 if relaxed else len(docs),
                                                [m for m in (section_mask, date_mask) if m is not None],
                                                deadline)
            except SearchTimeout:    # the results stand; only the correction is left out
                suggestion = None
        return Matches(docs=docs, scores=scores, facets=facets, relaxed=relaxed, needles=plan.needles,
                       expansions=plan.expansions, suggestion=suggestion)

    def _did_you_mean(self, view, req, synonyms, total, filters, deadline: float) -> str | None:
        """A correction that finds many more articles (:mod:`spelling`), or None; within
        the query's own time budget."""
        lexicon = self.lexicon()
        if lexicon is None:
            return None
        for candidate in spelling.candidates(self.analysis.normalizer(req.q).strip(), lexicon):
            plan = Plan(view, self.analysis, parse(candidate), synonyms, deadline=deadline)
            mask, relaxed = plan.match()
            if relaxed:
                continue
            mask &= view.live
            for m in filters:
                mask &= m
            if int(mask.sum()) >= max(1, SUGGEST_FACTOR * total):
                return candidate
        return None

    # ------------------------------------------------------------ vocabulary
    def lexicon(self, wait: bool = True) -> Lexicon | None:
        """The vocabulary for suggestions and corrections. Rebuilt in the background
        when the index generation changes or it is older than LEXICON_MAX_AGE
        (writes add few words); only the very first build is waited for."""
        view = self.view()
        generation = view.version.split(":")[0]
        current = self._lexicon
        stale = (current is None or current[0] != generation
                 or (current[3] != view.version and time.monotonic() - current[1] > LEXICON_MAX_AGE))
        with self._lock:
            thread = self._lexicon_thread
            if stale and (thread is None or not thread.is_alive()):
                thread = threading.Thread(target=self._build_lexicon, args=(view, generation),
                                          name="lexicon", daemon=True)
                self._lexicon_thread = thread
                thread.start()
        if self._lexicon is None and wait and thread is not None:
            thread.join()
        return self._lexicon[2] if self._lexicon else None

    def _build_lexicon(self, view, generation):
        try:
            self._lexicon = (generation, time.monotonic(), Lexicon(view), view.version)
        except Exception:   # a view closed under us: the next call retries
            logging.getLogger("searchsvc").exception("building the lexicon failed")

    @staticmethod
    def _order(view, matches: "Matches", sort, k):
        """The first ``k`` matches in ``sort`` order (an empty query has no relevance: newest)."""
        docs = matches.docs
        if matches.scores is None and sort == "relevance":
            sort = "newest"
        if len(docs) == 0 or k <= 0:
            return docs[:0], np.zeros(0)
        dates = view.date[docs]
        undated = dates == UNDATED
        if sort == "relevance":
            scores = matches.scores
            if len(docs) > k:   # keep every doc tied with the k-th score: pages must not overlap
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                keep = scores >= kth
                docs, scores, dates = docs[keep], scores[keep], dates[keep]
            order = np.lexsort((docs, -dates, -scores))[:k]
        else:
            scores = np.zeros(len(docs))
            key = -dates if sort == "newest" else dates
            order = np.lexsort((docs, key, undated))[:k]   # undated last either way
        return docs[order], scores[order]

    @staticmethod
    def _section_mask(view, sections):
        if not sections:
            return None
        wanted = [i for i, s in enumerate(view.sections)
                  if s and any(s == p or s.startswith(p + " > ") for p in sections)]
        return np.isin(view.section_ord, wanted)

    @staticmethod
    def _date_mask(view, date_from, date_to):
        if date_from is None and date_to is None:
            return None
        lo = date_to_minutes(dt.datetime.combine(date_from, dt.time())) if date_from else UNDATED + 1
        # The day after date_to, in minutes (not date_to + 1 day: 9999-12-31 has no next day).
        hi = (date_to_minutes(dt.datetime.combine(date_to, dt.time())) + MINUTES_PER_DAY
              if date_to else np.iinfo(np.int64).max)
        return (view.date >= lo) & (view.date < hi) & (view.date != UNDATED)

    @staticmethod
    def _section_facet(view, mask):
        """Counts for every section path and each of its leading parts."""
        totals = _prefix_counts(view, mask)
        return [{"value": v, "count": c} for v, c in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]

    def section_tree(self) -> list[dict]:
        """Sections as a tree (name, path, count, children), largest first."""
        totals = _prefix_counts(self.view(), None)

        def children(prefix: str | None) -> list[dict]:
            depth = 0 if prefix is None else prefix.count(" > ") + 1
            nodes = [p for p in totals if p.count(" > ") == depth
                     and (prefix is None or p.startswith(prefix + " > "))]
            return [{"name": p.rsplit(" > ", 1)[-1], "path": p, "count": totals[p], "children": children(p)}
                    for p in sorted(nodes, key=lambda p: (-totals[p], p))]
        return children(None)

    @staticmethod
    def _year_facet(view, mask):
        years = view.year[mask]
        years = years[years >= 0]
        if not len(years):
            return []
        values, counts = np.unique(years, return_counts=True)
        return [{"value": str(v), "count": int(c)} for v, c in sorted(zip(values, counts), key=lambda x: -x[0])]

    def _hit(self, view, docnum, score, needles) -> dict:
        doc = view.stored(docnum)["doc"]
        hit = stored_article(doc)
        body = hit.pop("body")
        hit.pop("editor", None)
        normalizer = self.analysis.normalizer
        hit["title_html"] = highlight(doc["title"], needles, normalizer)
        near = _first_match(view, docnum, doc, needles) if len(body) > SNIPPET_SCAN_CHARS else 0
        hit["snippet_html"] = snippet(body, needles, normalizer, near=near)
        hit["score"] = round(score, 4)
        return hit

    def article(self, doc_id: str, q: str = "") -> dict | None:
        """The stored article; with ``q``, also ``body_html`` with the query's matches marked."""
        view = self.view()
        docnum = view.docnum_for_id(doc_id)
        if docnum is None:
            return None
        doc = view.stored(docnum)["doc"]
        article = stored_article(doc)
        if q.strip():
            plan = Plan(view, self.analysis, parse(q), self.synonyms.table())
            article["title_html"] = highlight(doc["title"], plan.needles, self.analysis.normalizer)
            article["body_html"] = highlight(doc["body"], plan.needles, self.analysis.normalizer)
        return article

    def related(self, doc_id: str, limit: int = 5) -> list[dict] | None:
        """Articles like ``doc_id`` (None when there is no such article)."""
        view = self.view()
        docnum = view.docnum_for_id(doc_id)
        if docnum is None:
            return None
        lexicon = self.lexicon()
        title, _, body = view.norm_text(docnum).partition("\n")
        terms = key_terms(title, body, self.analysis, lexicon.df if lexicon else {}, view.doc_count)
        out = []
        for d, score in related_docs(view, docnum, terms, _bm25, limit):
            hit = stored_article(view.stored(d)["doc"])
            hit.pop("body")
            hit.pop("editor", None)
            hit["score"] = round(score, 4)
            out.append(hit)
        return out

    def export(self, req: SearchRequest, limit: int):
        """Every hit of a search (up to ``limit``) in order, as stored articles without bodies."""
        view = self.view()
        docs, _ = self._order(view, self.matches(view, req), req.sort, limit)
        for d in docs:
            doc = stored_article(view.stored(int(d))["doc"])
            doc.pop("body")
            yield doc


def _first_match(view, docnum: int, doc: dict, needles) -> int:
    """Where (original body index) the first needle occurs in a long body, found in the
    stored normalised text (a C-speed search, no normalising per request); 0 if none."""
    text = view.norm_bytes(docnum)
    body_start = text.find(b"\n") + 1         # the normalised title never holds a newline
    found = [p for p in (text.find(n.encode("utf-8"), body_start) for n in needles if n) if p >= 0]
    if not found:
        return 0
    index = len(text[body_start:min(found)].decode("utf-8", "ignore"))
    offsets = OffsetMap.stored(doc.get("_offsets"))
    if isinstance(offsets, tuple):              # (title, body) maps of older indexes
        offsets = offsets[1]
    return offsets[index] if offsets is not None else index


def _prefix_counts(view, mask) -> dict[str, int]:
    live = view.live if mask is None else mask
    counts = np.bincount(view.section_ord[live], minlength=len(view.sections))
    totals: dict[str, int] = {}
    for ordinal in np.flatnonzero(counts):
        parts = view.sections[ordinal].split(" > ") if view.sections[ordinal] else []
        for i in range(1, len(parts) + 1):
            prefix = " > ".join(parts[:i])
            totals[prefix] = totals.get(prefix, 0) + int(counts[ordinal])
    return totals


class Plan:
    """One parsed query against one index view: match masks and scores."""

    def __init__(self, view: IndexView, analysis: Analysis, parsed: ParsedQuery, synonyms=None,
                 deadline: float = float("inf")):
        self.view = view
        self.deadline = deadline
        self.analysis = analysis
        self.parsed = parsed
        self.synonyms = synonyms or {}
        self.expansions: dict[str, list[str]] = {}
        norm = analysis.normalizer
        # Each positive group: list of alternatives; each alternative: list of units.
        self.groups = [[self._units(c) for c in g] for g in parsed.groups]
        self.excluded = [self._units(c) for c in parsed.excluded]
        self.needles = list(dict.fromkeys(t for g in self.groups for alt in g for u in alt for t in u.texts))
        plain = [c for c in parsed.positive_clauses() if not c.phrase]
        # The whole query as typed, for the contiguous-phrase boost.
        self.full = norm("".join(c.text for c in parsed.positive_clauses())) if parsed.groups else ""
        self.full = "".join(self.full.split())
        self._boost_full = len(plain) == len(parsed.positive_clauses()) and len(self.full) >= 2
        self._coverage = None   # (match counts, units) once the query was relaxed

    def _units(self, clause: Clause) -> list["Unit"]:
        norm = self.analysis.normalizer(clause.text)
        if clause.phrase:
            return [Unit(norm, clause.field, phrase=True)] if norm.strip() else []
        words = list(dict.fromkeys(self.analysis.query_terms(clause.text)))
        whole = "".join(norm.split())
        if len(words) > 1 and whole in self.synonyms:    # the clause as a whole has synonyms
            words = [whole]
        units = []
        for w in words:
            alts = self.synonyms.get(w, ())
            if alts:
                self.expansions[w] = list(alts)
            units.append(Unit(w, clause.field, synonyms=alts))
        return units

    def check_time(self) -> None:
        """Stop between steps once over budget; a cooperative check works in any thread
        (Whoosh's TimeLimitCollector uses signals, which only the main thread receives)."""
        if time.perf_counter() > self.deadline:
            raise SearchTimeout("the query took longer than its time budget")

    # ------------------------------------------------------------ matching
    def match(self, scope: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """Matching articles (exact inside ``scope``, if given) and whether the query
        had to be relaxed (no article holds all of its words)."""
        view = self.view
        result = np.ones(view.n, dtype=bool) if scope is None else scope.copy()
        relaxed = False
        groups = [[alt for alt in g if alt] for g in self.groups]
        if self.groups and not any(groups):   # only punctuation: no terms, no matches
            return np.zeros(view.n, dtype=bool), False
        groups = [g for g in groups if g]
        if all(len(g) == 1 for g in groups):
            # Only ANDed units (no OR): narrow by every unit's grams first, so each text is
            # read to confirm a unit only when it could hold all of them.
            for g in groups:
                for u in g[0]:
                    result &= self.gram_mask(u, scope=result)
            for g in groups:
                for u in g[0]:
                    result &= self.unit_mask(u, scope=result)
                    self.check_time()
        else:
            for g in groups:
                result &= self._group_mask(g)
                self.check_time()
        if groups and not result[view.live].any():
            if scope is not None:       # relax only if nothing matches anywhere
                result, relaxed = self.match()
                return result & scope, relaxed
            relaxed = self._relax(groups)
            if relaxed is not None:
                result, relaxed = relaxed, True
            else:
                relaxed = False
        for units in self.excluded:
            if units:
                ex = result.copy()                  # only matters where result holds
                for u in units:
                    ex &= self.unit_mask(u, scope=ex)
                result &= ~ex
        return result, relaxed

    def _relax(self, groups) -> np.ndarray | None:
        """Most plain words must match (phrases, OR groups and title: words still must).

        A word found nowhere may be several words typed together ("20221126"):
        its bigrams stand in for it.
        """
        live = self.view.live
        required = np.ones(self.view.n, dtype=bool)
        words = []
        for g in groups:
            if len(g) == 1 and all(not u.phrase for u in g[0]):
                words += g[0]
            else:
                required &= self._group_mask(g)
        words = [v for u in words for v in (self._split(u) if not self.unit_mask(u)[live].any() else [u])]
        if len(words) < 2:
            return None
        counts = np.zeros(self.view.n, dtype=np.int16)
        for u in words:
            counts += self.unit_mask(u)
        self._coverage = (counts, words)
        return required & (counts >= max(1, math.ceil(len(words) / 2)))

    @staticmethod
    def _split(unit: "Unit") -> list["Unit"]:
        grams = phrase_bigrams(unit.text)
        return [Unit(g, unit.field) for g in grams] if len(grams) > 1 else [unit]

    def _group_mask(self, alternatives) -> np.ndarray:
        mask = np.zeros(self.view.n, dtype=bool)
        for units in alternatives:
            alt = np.ones(self.view.n, dtype=bool)
            for u in units:
                alt &= self.unit_mask(u)
            mask |= alt
        return mask

    def gram_mask(self, unit: "Unit", scope: np.ndarray | None = None) -> np.ndarray:
        """Articles holding the unit's character grams (a superset of its matches);
        with ``scope``, only inside it."""
        if unit.grams is not None:
            return unit.grams
        if unit.synonyms:
            mask = np.logical_or.reduce([self.gram_mask(Unit(t, unit.field), scope) for t in unit.texts])
        else:
            gram_field = "title_c" if unit.field == "title" else "text_c"
            mask = self._candidates(gram_field, phrase_bigrams(unit.text), scope)
        if scope is None:
            unit.grams = mask
        return mask

    def _candidates(self, gram_field: str, grams: list[str], scope: np.ndarray | None = None) -> np.ndarray:
        """Articles (inside ``scope``) holding the grams, rarest first. A gram whose posting
        list is much longer than the candidates left is looked up for those candidates
        only (skipping through its blocks); once two grams are applied, one over
        GRAM_DECODE_RATIO times longer is left out: reading the few candidates' texts,
        which confirm every match anyway, costs less."""
        view = self.view
        mask = np.ones(view.n, dtype=bool) if scope is None else scope.copy()
        left = view.n if scope is None else int(np.count_nonzero(mask))
        ranked = sorted(grams, key=lambda g: view.doc_frequency(gram_field, g))
        for i, g in enumerate(ranked):
            df = view.doc_frequency(gram_field, g)
            if left == 0:
                break
            if i >= 2 and df > GRAM_DECODE_RATIO * left:
                break
            if df > SPARSE_RATIO * left and df >= SPARSE_MIN_DF:
                docs = np.flatnonzero(mask)
                mask[docs[view.term_freqs(gram_field, g, docs) == 0]] = False
            else:
                mask &= view.mask(gram_field, g)
            left = int(np.count_nonzero(mask))
        return mask

    def unit_mask(self, unit: "Unit", scope: np.ndarray | None = None) -> np.ndarray:
        """Articles whose (title or) text contains the unit's text (or a synonym), exactly.
        With ``scope``, exact only inside it (texts outside are not read)."""
        if unit.mask is not None:
            return unit.mask
        if unit.synonyms:
            mask = np.logical_or.reduce([self.unit_mask(Unit(t, unit.field), scope) for t in unit.texts])
            if scope is None:
                unit.mask = mask
            return mask
        view = self.view
        mask = self.gram_mask(unit, scope).copy()
        grams = phrase_bigrams(unit.text)
        # One char or one bigram is proven by its posting, unless it holds whitespace (a
        # gram's space stands for any whitespace run, the phrase for itself).
        exact_by_grams = len(grams) == 1 and grams[0] == unit.text and not any(c.isspace() for c in unit.text)
        if not exact_by_grams:
            candidates = np.flatnonzero(mask & view.live if scope is None else mask & view.live & scope)
            if not any(c.isspace() for c in unit.text):   # a jieba word is a substring: proof
                word_fields = ("title",) if unit.field == "title" else ("title", "body")
                proven = np.zeros(len(candidates), dtype=bool)
                for f in word_fields:
                    proven |= view.term_freqs(f, unit.text, candidates) > 0
                candidates = candidates[~proven]
            text = unit.text.encode("utf-8")
            title_only = unit.field == "title"
            candidates = candidates[~view.heads_contain(candidates, text, title_only)]   # nothing decompressed
            for n, d in enumerate(candidates):
                if n % 256 == 255:
                    self.check_time()
                haystack = view.title_bytes(int(d)) if title_only else view.norm_bytes(int(d))
                if text not in haystack:
                    mask[d] = False
        if scope is None:
            unit.mask = mask
        return mask

    # ------------------------------------------------------------ scoring
    def scores(self, docs: np.ndarray) -> np.ndarray:
        view = self.view
        total = np.zeros(view.n, dtype=np.float64)
        n_live = max(view.doc_count, 1)
        coverage = self._coverage
        units = coverage[1] if coverage else [u for g in self.groups for alt in g for u in alt]
        for u in dict.fromkeys(units):
            if not u.synonyms:
                total[docs] += self._unit_scores(u.text, u.field, u.phrase, n_live, docs)
            else:   # a word or any of its synonyms: the best of them counts
                total[docs] += np.maximum.reduce([self._unit_scores(t, u.field, u.phrase, n_live, docs)
                                                  for t in u.texts])
        s = total[docs]
        if coverage:   # relaxed: favour articles holding more of the words
            s = s * (coverage[0][docs] / max(1, len(coverage[1]))) ** 2
        if self._boost_full and len(docs):
            s = s + TIER * self._phrase_tier(docs, s)
        return s

    def _unit_scores(self, text, field, phrase, n_live, docs) -> np.ndarray:
        """BM25F of one word or phrase for each of ``docs``."""
        view = self.view
        total = np.zeros(len(docs), dtype=np.float64)
        word_hit = False
        if not phrase:
            for f, weight in (("title", TITLE_BOOST), ("body", 1.0)):
                if field == "title" and f == "body":
                    continue
                df = view.doc_frequency(f, text)
                if df:
                    word_hit = True
                    total += weight * _bm25(docs, view.term_freqs(f, text, docs), view.lengths[f], view.avg[f],
                                            n_live, df)
        if not word_hit:   # phrases and words jieba never produced: char grams
            fields = (("title_c", TITLE_BOOST),) if field == "title" else (("title_c", TITLE_BOOST), ("text_c", 1.0))
            grams = phrase_bigrams(text)
            for f, weight in fields:
                for g in grams:
                    df = view.doc_frequency(f, g)
                    if df:
                        total += (GRAM_WEIGHT * weight / len(grams)) * _bm25(
                            docs, view.term_freqs(f, g, docs), view.lengths[f], view.avg[f], n_live, df)
        return total

    def _phrase_tier(self, docs, s) -> np.ndarray:
        """0-3 per article: where the whole query occurs contiguously (see TIER)."""
        view = self.view
        tier = np.zeros(len(docs))
        full = self.full
        cand = self._candidates("text_c", phrase_bigrams(full))
        idx = np.flatnonzero(cand[docs])
        if len(idx) > 2000:   # a very common query: only the best-scored can reach a page
            idx = idx[np.argsort(-s[idx])[:2000]]
        full_bytes = full.encode("utf-8")
        for n, i in enumerate(idx):
            if n % 256 == 255:
                self.check_time()
            text = view.norm_bytes(int(docs[i]))
            title, _, body = text.partition(b"\n")
            compact_title = "".join(title.decode("utf-8").split())
            if full in compact_title:
                tier[i] = 3 if compact_title == full else 2
            elif full_bytes in body:
                tier[i] = 1
            else:   # the query broken by a line or space; looked for near the start only (cost)
                start = body[:TIER_SCAN_BYTES].decode("utf-8", "ignore")
                tier[i] = 1 if full in "".join(start.split()) else 0
        return tier


@dataclass
class Matches:
    """What a query selects: matching live docnums, their scores, facets."""
    docs: np.ndarray
    scores: np.ndarray | None      # None for an empty query (no relevance)
    facets: dict
    relaxed: bool
    needles: list[str]
    expansions: dict = dc_field(default_factory=dict)
    suggestion: str | None = None

    @property
    def nbytes(self) -> int:
        return self.docs.nbytes + (0 if self.scores is None else self.scores.nbytes) + 2000


@dataclass(eq=False)
class Unit:
    """A word or phrase that must occur (normalised text)."""
    text: str
    field: str | None = None
    phrase: bool = False
    synonyms: tuple[str, ...] = ()
    mask: np.ndarray | None = dc_field(default=None, repr=False)     # exact matches
    grams: np.ndarray | None = dc_field(default=None, repr=False)    # candidates by grams

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.text, *self.synonyms)


def _bm25(ids, tfs, lengths, avg, n_live, df=None) -> np.ndarray:
    df = len(ids) if df is None else df
    idf = math.log(1 + (n_live - df + 0.5) / (df + 0.5))
    norm = K1 * (1 - B + B * lengths[ids] / (avg or 1.0))
    return idf * tfs * (K1 + 1) / (tfs + norm)
