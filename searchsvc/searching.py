"""Answering queries: the engine that orchestrates the search pipeline.

A request passes through the current index version (:mod:`view`), matching
(:mod:`matching`: grep-like substring matching on normalised text), ranking
(:mod:`scoring`: BM25F and where the query occurs contiguously), filters and facets
(:mod:`facets`), then sorting, paging and hit rendering (here). Matches are
cached per index version, so paging and re-sorting skip matching.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field as dc_field

import numpy as np

from . import facets, spelling, typos
from .analysis import Analysis, OffsetMap
from .cache import SizedLRU
from .contract import SORTS
from .highlight import SNIPPET_SCAN_CHARS, highlight, snippet
from .lexicon import Lexicon
from .matching import Plan, SearchTimeout
from .query import Clause, ParsedQuery, parse, render
from .related import key_terms, related_docs
from .schema import UNDATED, stored_article
from .store import IndexMissing, IndexStore
from .synonyms import Synonyms
from .view import IndexView, UnreadableIndex, verify

# Re-exported: the entry points and the indexer import these from here.
__all__ = ["BadRequest", "Engine", "IndexView", "Matches", "SearchRequest", "SearchResult", "SearchTimeout",
           "UnreadableIndex", "verify"]

RESULT_CACHE_BYTES = 16 << 20   # cached matches per worker (RSS budget)
FEW_HITS = 2                    # at most this many hits for a short query: look for a did-you-mean
SHORT_QUERY = 8                 # (long queries are pasted titles and sentences, rarely typos)
SUGGEST_FACTOR = 5              # ...offered when it finds this many times more
LEXICON_MAX_AGE = 600.0         # seconds before the vocabulary is refreshed for new writes
_NOT_IN_HITS = frozenset(("body", "editor"))   # a hit shows a snippet, and no editor
_BODY = frozenset(("body",))    # an export is the whole record (editor too) but the body


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
    typos: bool = True     # search homophones of probable pinyin typos (off: the text as typed only)
    explain: bool = False  # each hit's score parts


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
    corrected: str | None = None

    def to_json(self, req: SearchRequest) -> dict:
        """The response body of ``GET /search`` (and of ``searchsvc search --json``)."""
        return {"query": req.q, "total": self.total, "page": req.page, "per_page": req.per_page,
                "took_ms": self.took_ms, "relaxed": self.relaxed, "suggestion": self.suggestion,
                "corrected": self.corrected, "expansions": self.expansions, "hits": self.hits, "facets": self.facets}


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
    corrected: str | None = None
    plan: Plan | None = dc_field(default=None, repr=False)    # released: to explain scores

    @property
    def nbytes(self) -> int:
        return (self.docs.nbytes + (0 if self.scores is None else self.scores.nbytes)
                + (self.plan.nbytes if self.plan else 0) + 2000)



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
        """The engine every entry point uses (API, CLI, benchmarks): one set of settings,
        jieba's dictionary compact (the serve master's workers each count it in their RSS)."""
        analysis = analysis or Analysis.shared(config.userdict, config.cache_dir, compact=True)
        return cls(IndexStore(config.index_dir), analysis, config.reload_interval, config.max_result_window,
                   config.result_cache_size, Synonyms(config.synonyms, analysis.normalizer),
                   config.search_budget, config.postings_cache_mb)

    # ------------------------------------------------------------ index versions
    def invalidate(self) -> None:
        """Check for a new index version on the next request (after this process wrote)."""
        self._checked = float("-inf")

    def release_stale(self) -> bool:
        """Let the view go if a newer index version was committed, and say whether it did.
        For the serve master, which answers nothing and so never reopens: its view would keep
        the files of the generation it started with open, allocated on disk after a rebuild
        deletes them. The next :meth:`view` opens the current version."""
        with self._lock:
            if self._view is None:
                return False
            try:
                version = self.store.version()
            except OSError:
                return False
            if version is None or version == self._view.version:
                return False
            self._view = None       # its descriptors and maps close with the last reference
            self._results.clear()
            return True

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
        if req.explain and matches.scores is not None and req.sort == "relevance" and len(page_docs):
            # The parts over every match, as they were scored (which texts are read for
            # phrases depends on the others' scores), then this page's.
            plan = matches.plan.with_deadline(time.perf_counter() + self.budget)
            try:
                parts = plan.score_parts(matches.docs)
                for hit, d, s in zip(hits, page_docs, scores):
                    hit["explain"] = parts.explain(int(np.searchsorted(matches.docs, d)), float(s))
            except SearchTimeout:    # the page stands; only the explanations are left out
                pass
        return SearchResult(total=int(len(matches.docs)), hits=hits, facets=matches.facets,
                            relaxed=matches.relaxed, took_ms=round((time.perf_counter() - t0) * 1000, 2),
                            version=view.version, expansions=matches.expansions,
                            suggestion=matches.suggestion, corrected=matches.corrected)

    def matches(self, view: "IndexView", req: SearchRequest) -> "Matches":
        """Every article the query and filters select, scored; cached per index version
        (and synonyms table) so paging, re-sorting and repeated queries skip matching."""
        synonyms = self.synonyms.table()
        key = (view.version, id(synonyms), req.q, req.sections, req.date_from, req.date_to, req.typos)
        found = self._results.get(key)
        if found is None:
            found = self._match(view, req, synonyms)
            self._results.put(key, found)
        return found

    def _match(self, view: "IndexView", req: SearchRequest, synonyms) -> "Matches":
        parsed = parse(req.q)
        if req.typos and not parsed.is_empty:
            self.lexicon()      # built once per process (by the server before it forks): not the query's time
        deadline = time.perf_counter() + self.budget
        plan = Plan(view, self.analysis, parsed, synonyms, deadline=deadline)
        section_mask = facets.section_mask(view, req.sections)
        date_mask = facets.date_mask(view, req.date_from, req.date_to)
        # The facets count matches inside the other filter, the hits inside both: with
        # both filters, matches outside either are never looked at.
        scope = section_mask | date_mask if section_mask is not None and date_mask is not None else None
        matched, relaxed = plan.match(scope)
        corrected = None
        if req.typos and section_mask is None and date_mask is None:    # filters: exactly what was typed
            found = self._homophone_search(view, parsed, plan, matched, relaxed, synonyms, deadline)
            if found is not None:
                plan, matched, relaxed, corrected = found
        # One pass over the index for the live matches; the filters and facets then gather
        # among them. The facets count matches inside the other filter, the hits inside both.
        docs = (matched & view.live).nonzero()[0]
        in_sections = None if section_mask is None else section_mask[docs]
        in_dates = None if date_mask is None else date_mask[docs]
        facet_counts = {
            "section": facets.section_facet(view, docs if in_dates is None else docs[in_dates]),
            "year": facets.year_facet(view, docs if in_sections is None else docs[in_sections]),
        }
        if in_sections is not None and in_dates is not None:
            docs = docs[in_sections & in_dates]
        elif in_sections is not None:
            docs = docs[in_sections]
        elif in_dates is not None:
            docs = docs[in_dates]
        scores = None if parsed.is_empty else plan.scores(docs)
        suggestion = None
        few = len(docs) == 0 or (len(docs) <= FEW_HITS and len(req.q) <= SHORT_QUERY)
        if (relaxed or few) and parsed.is_plain and corrected is None:
            try:
                suggestion = self._did_you_mean(view, req, synonyms, 0 if relaxed else len(docs),
                                                [m for m in (section_mask, date_mask) if m is not None],
                                                deadline)
            except SearchTimeout:    # the results stand; only the correction is left out
                suggestion = None
        return Matches(docs=docs, scores=scores, facets=facet_counts, relaxed=relaxed, needles=plan.needles,
                       expansions=plan.expansions, suggestion=suggestion, corrected=corrected,
                       plan=plan.release())

    def _homophone_search(self, view, parsed: ParsedQuery, plan: Plan, matched, relaxed: bool, synonyms,
                          deadline: float):
        """The query searched with the homophones of its probable typos too (:mod:`typos`),
        as ``(plan, matched, relaxed, corrected query)``, when that finds articles holding
        every word and none of them holds the typos as typed. None leaves the literal
        results untouched: a query whose words, as typed, all occur in an article is
        answered as typed (a rare name is not "corrected" into a common word)."""
        fixes = self._typos(view, parsed)
        if not fixes:
            return None
        fixed = Plan(view, self.analysis, parsed, synonyms, deadline=deadline, typos=fixes)
        try:
            found, fixed_relaxed = fixed.match()
        except SearchTimeout:      # within the query's budget, or not at all
            return None
        if fixed_relaxed:
            return None
        found &= view.live
        n_found = int(np.count_nonzero(found))
        n_typed = int(np.count_nonzero(found & fixed.typed_mask()))
        if n_found == 0 or n_typed > 0:
            return None
        corrected = render(parsed, fixed.read_typos(found))
        if corrected == render(parsed):
            return None
        if not relaxed:
            found = found | matched     # the text as typed still finds what it found
        return fixed, found, False, corrected

    def _typos(self, view, parsed: ParsedQuery) -> dict[Clause, list[typos.Fix]]:
        """Probable pinyin typos of the query's plain words (never phrases, ``title:``, OR
        or negated words), by clause."""
        lexicon = self.lexicon()
        if lexicon is None:
            return {}
        segmenter, norm = self.analysis.segmenter, self.analysis.normalizer
        freq = segmenter.freq

        def df(piece: str) -> int:     # articles holding the stretch's bigrams: at least its own
            return min(view.doc_frequency("text_c", piece[i:i + 2]) for i in range(len(piece) - 1))

        out = {}
        for (c, *alternatives) in parsed.groups:
            if alternatives or c.phrase or c.field:
                continue
            text = "".join(norm(c.text).split())
            fixes = typos.find(text, list(segmenter.tokenize(text)), lexicon, lambda w: freq.get(w, 0) > 0, df)
            if fixes:
                out[c] = fixes
        return out

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

    def section_tree(self) -> list[dict]:
        """Sections as a tree (name, path, count, children), largest first."""
        return facets.section_tree(self.view())

    def _hit(self, view, docnum, score, needles) -> dict:
        doc = view.stored(docnum)
        body = doc["body"]
        hit = stored_article(doc, leave_out=_NOT_IN_HITS)
        normalizer = self.analysis.normalizer
        if len(body) > SNIPPET_SCAN_CHARS:  # its window search reads 4,000 characters: kept per version
            hit["title_html"] = highlight(doc["title"], needles, normalizer)
            key = (docnum, tuple(needles))
            html = view.snippets.get(key)
            if html is None:
                html = snippet(body, needles, normalizer, near=_first_match(view, docnum, doc, needles))
                view.snippets.put(key, html)
            hit["snippet_html"] = html
        else:
            norm_title = norm_body = None
            if doc.get("_offsets") is None:     # normalised char for char: the stored normal form serves
                norm_title, _, norm_body = view.norm_text(docnum).partition("\n")
            hit["title_html"] = highlight(doc["title"], needles, normalizer, norm=norm_title)
            hit["snippet_html"] = snippet(body, needles, normalizer, norm_body=norm_body)
        hit["score"] = round(score, 4)
        return hit

    def article(self, doc_id: str, q: str = "") -> dict | None:
        """The stored article; with ``q``, also ``body_html`` with the query's matches marked."""
        view = self.view()
        docnum = view.docnum_for_id(doc_id)
        if docnum is None:
            return None
        doc = view.stored(docnum)
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
        for d, score in related_docs(view, docnum, terms, limit):
            hit = stored_article(view.stored(d), leave_out=_NOT_IN_HITS)
            hit["score"] = round(score, 4)
            out.append(hit)
        return out

    def export(self, req: SearchRequest, limit: int):
        """Every hit of a search (up to ``limit``) in order, as stored articles without bodies."""
        view = self.view()
        docs, _ = self._order(view, self.matches(view, req), req.sort, limit)
        for d in docs:
            yield stored_article(view.stored(int(d)), leave_out=_BODY)


def _first_match(view, docnum: int, doc: dict, needles) -> int:
    """Where (original body index) the first needle occurs in a long body, found in the
    stored normalised text (no normalising per request); 0 if none."""
    index = view.first_in_body(docnum, needles)
    if index is None:
        return 0
    offsets = OffsetMap.stored(doc.get("_offsets"))
    if isinstance(offsets, tuple):              # (title, body) maps of older indexes
        offsets = offsets[1]
    return offsets[index] if offsets is not None else index

