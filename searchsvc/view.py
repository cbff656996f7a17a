"""One open version of the index: a Whoosh searcher plus per-document arrays
(liveness, dates, sections, field lengths, text heads) and the caches of
posting arrays that matching and scoring read; :func:`verify` opens new
segments the same way before a writer publishes them.

Evaluation is vectorised with numpy over per-term posting arrays, because
Whoosh's own matchers and collectors spend ~10 µs of Python per matching
document (the naive peer's 24 ms median).
"""

from __future__ import annotations

import bisect
import unicodedata

import numpy as np
from whoosh.reading import MultiReader, SegmentReader
from whoosh.searching import Searcher

from .cache import ClearingDict, SizedLRU
from .longtext import PairPositions
from .postings import TermBlocks, find_sorted, term_blocks
from .schema import HEAD_BYTES, UNDATED
from .sidecar import SUFFIX, SideList, open_for
from .whoosh_adapter import ColumnRows, column_bytes, field_lengths, reader_segment_path

SPARSE_RATIO = 16       # posting list 16x longer than the documents asked about: skip, don't decode,
SPARSE_MIN_DF = 20_000  # ...if it is long at all (shorter ones decode fast and stay cached)
BISECT_DOCS = 32        # term frequencies at this many documents or fewer: one bisect each (Sidecar.freq_of)
DENSE_RATIO = 10        # IndexView._spread: a binary search costs ~10 postings spread (or ~160 articles zeroed)
HEAD_SCAN_MIN = 2_000   # candidates from which heads are searched by numpy, not one by one
LONG_TEXT_BYTES = 256 << 10  # texts at least this long are kept decompressed (IndexView._long), and
                             # searched through their pair tables (longtext.py)
MINUTES_PER_DAY = 24 * 60
_ABSENT = (-1, -1, -1)  # IndexView._lookup: a term a segment lacks (or has no sidecar for)


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
        # Each segment's posting arrays (sidecar.py), or None: its Whoosh blocks are decoded.
        self.sidecars = [open_for(leaf) for leaf, _ in self.leaves]
        self.mapped = all(side is not None for side in self.sidecars)    # every segment's postings mapped
        # Each segment's first global docnum, and the end: where a sorted docnum array splits.
        self._bounds = np.array([base for _, base in self.leaves] + [reader.doc_count_all()], dtype=np.int64)
        self.n = reader.doc_count_all()
        self.live = np.zeros(self.n, dtype=bool)
        self.date = np.full(self.n, UNDATED, dtype=np.int64)
        sections: dict[str, int] = {"": 0}
        self.section_ord = np.zeros(self.n, dtype=np.int32)
        self.lengths = {f: np.zeros(self.n, dtype=np.float32) for f in ("title", "body", "title_c", "text_c")}
        self._columns = []      # per segment: (first docnum, documents, norm reader, doc reader or None)
        heads = []
        for (leaf, base), side in zip(self.leaves, self.sidecars):
            count = leaf.doc_count_all()
            span = slice(base, base + count)
            self.live[[base + d for d in leaf.all_doc_ids()]] = True
            if leaf.has_column("date"):
                self.date[span] = np.fromiter(leaf.column_reader("date"), dtype=np.int64, count=count)
            if leaf.has_column("section"):
                self.section_ord[span] = [sections.setdefault(s or "", len(sections))
                                          for s in leaf.column_reader("section")]
            for f, arr in self.lengths.items():
                lengths = side.lengths(f) if side is not None else field_lengths(leaf, f, count)
                if lengths is not None:     # None: no document of the segment has a word in f
                    arr[span] = lengths
            # The article record: an LZ4 column (schema 5), or Whoosh's stored fields (older indexes)
            doc_col = ColumnRows(leaf, "doc") if leaf.has_column("doc") else None
            self._columns.append((base, count, ColumnRows(leaf, "norm"), doc_col))
            heads.append(column_bytes(leaf, "head", count, HEAD_BYTES))
        self._bases = [base for base, _, _, _ in self._columns]     # (bisected per text or record read)
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
        # (ids, frequencies), or (ids, None) when only the ids were asked (doc_ids).
        self._cache = SizedLRU(cache_bytes, lambda p: p[0].nbytes + (p[1].nbytes if p[1] is not None else 0) + 200,
                               name="postings")
        self._blocks = SizedLRU(cache_bytes // 8, lambda d: sum(b.nbytes for b, _, _ in d), name="blocks")
        self._masks = SizedLRU(cache_bytes // 4, lambda bits: bits.nbytes + 100, name="masks")
        # The texts of very long articles, which would otherwise be inflated on every
        # query they are a candidate for or a hit of.
        self._long = SizedLRU(cache_bytes // 2, _text_size, name="long texts")
        # Their pair tables (~9 MB for 5 MB of text), which substring tests on them read.
        self._pairs = SizedLRU(cache_bytes, lambda table: table.nbytes, name="long text pairs")
        self._pairs_budget = cache_bytes
        self._long_docs: set[int] = set()       # docnums seen to hold a long text
        self._long_stored: set[int] = set()     # ...or a long article record
        # Snippets of long bodies by (docnum, query words): a repeated query lists them again.
        self.snippets = SizedLRU(cache_bytes // 32, lambda html: 2 * len(html) + 200, name="snippets")
        self._untabled: set[int] = set()        # ...whose pair table would not fit in the cache
        # Each recent term's document frequency and sidecar spans (a query asks both, ~65
        # times in all, mostly for terms it asked before): ~165 bytes a segment and ~150 more
        # an entry (measured: 478 bytes at 2 segments, 777 at 4, 4.0 KB at 22). A quarter of
        # the default budget holds ~17,000 entries at 2 segments, more than the ~15,000 terms
        # the 1,200 queries of the eval file look up: once they were seen, the file ran 12 %
        # faster (p50) than with an eighth, which was emptied three times a pass.
        self._dictionary = ClearingDict(cache_bytes // 4 // (165 * len(self.leaves) + 150), name="dictionary")

    def close(self):
        self.searcher.close()     # (sidecar maps go with the last array using them: a request may still run)

    # ------------------------------------------------------------ postings
    def postings(self, fieldname: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(global docnums, term frequencies) of a term, deleted documents included."""
        key = (fieldname, term)
        hit = self._cache.get(key)
        if hit is not None and hit[1] is not None:
            return hit
        if self.mapped:
            result = self._gather(fieldname, term, frequencies=True)
        else:
            ids, tfs = [], []
            for blocks, base, _count in self._term_blocks(fieldname, term):
                i, w = blocks.decode()
                ids.append(i.astype(np.int32) + base)     # (uint16 + base would wrap)
                tfs.append(w)
            result = ((np.concatenate(ids), np.concatenate(tfs)) if ids
                      else (np.zeros(0, np.int32), np.zeros(0, np.float32)))
        self._cache.put(key, result)
        return result

    def _gather(self, fieldname: str, term: str, frequencies: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Every segment's mapped postings of a term copied into one array each (sized by
        the dictionary's df): one copy per segment and no temporary arrays, since this loop
        runs once per segment for every term a query decodes."""
        df, spans = self._lookup(fieldname, term)
        ids = np.empty(df, np.int32)
        tfs = np.empty(df, np.float32) if frequencies else None
        at = 0
        for (_, base), side, (start, end, _) in zip(self.leaves, self.sidecars, spans):
            if start >= 0:
                side.fill(start, end, base, ids[at:at + end - start], None if tfs is None else tfs[at:at + end - start])
                at += end - start
        return ids, tfs

    def doc_ids(self, fieldname: str, term: str) -> np.ndarray:
        """A term's global docnums (deleted documents included): :meth:`postings` without
        the frequencies, which narrowing candidates does not need."""
        key = (fieldname, term)
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0]
        if not self.mapped:
            return self.postings(fieldname, term)[0]
        ids, _ = self._gather(fieldname, term, frequencies=False)
        self._cache.put(key, (ids, None))
        return ids

    def term_freqs(self, fieldname: str, term: str, docs: np.ndarray) -> np.ndarray:
        """The term's frequency in each of ``docs`` (sorted global docnums; 0 where absent).
        For up to BISECT_DOCS documents with every segment's sidecar mapped, a bisect each in
        the mapped ids (nothing decoded or cached). Otherwise a short posting list is
        decoded once and kept; a long one is searched in each
        segment's sidecar or, without sidecars, for a few documents, only the Whoosh blocks
        that can hold them are decoded (found in the term's block directory, which is kept).
        Asked about many documents, a list is read whole (:meth:`_freqs_at`)."""
        if self.mapped and len(docs) <= BISECT_DOCS:     # a few: a bisect each, nothing decoded or cached
            return np.array(self.few_term_freqs(fieldname, term, docs.tolist()), dtype=np.float32)
        key = (fieldname, term)
        hit = self._cache.get(key)
        if hit is not None and hit[1] is not None:     # (not when only its ids are kept)
            return self._freqs_at(*hit, docs)
        df = self.doc_frequency(fieldname, term)
        # A short list is decoded (mapped: gathered from each segment) once and kept: one binary
        # search after, not one per segment. A long one mapped: a binary search in each segment's ids.
        if df < SPARSE_MIN_DF or (not self.mapped and len(docs) * SPARSE_RATIO >= df):
            return self._freqs_at(*self.postings(fieldname, term), docs)
        if self.mapped:     # a binary search in each segment's ids (no directory to keep)
            if self._spread(len(docs), df):    # ...unless asked about many: all of it, spread
                return self._freqs_at(*self._gather(fieldname, term, frequencies=True), docs)
            out = np.zeros(len(docs), dtype=np.float32)
            bounds = docs.searchsorted(self._bounds).tolist()
            spans = self._lookup(fieldname, term)[1]
            for i, (start, end, _) in enumerate(spans):
                lo, hi = bounds[i], bounds[i + 1]
                if start >= 0 and lo < hi:
                    out[lo:hi] = self.sidecars[i].freqs_of(start, end, docs[lo:hi] - self._bounds[i])
            return out
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

    def few_term_freqs(self, fieldname: str, term: str, docs: list[int]) -> list[int | float]:
        """:meth:`term_freqs` at a few ``docs`` (sorted global docnums, every segment's sidecar
        mapped) as Python numbers, a bisect each: a query asks ~20 terms about the few
        articles it matches, and numpy's set-up per call and per segment would cost more
        than the searches (scoring them goes without numpy too)."""
        spans = self._lookup(fieldname, term)[1]
        bases, sidecars = self._bases, self.sidecars
        out = []
        for d in docs:
            i = bisect.bisect_right(bases, d) - 1
            start, end, _ = spans[i]
            out.append(sidecars[i].freq_of(start, end, d - bases[i]) if start >= 0 else 0)
        return out

    def _freqs_at(self, ids: np.ndarray, tfs: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """``tfs`` at ``docs`` (sorted global docnums; 0 where ``ids`` lacks one). Many docs:
        spread over a per-article array and read back (cost per posting and per article of
        the index); few: a binary search each (cost per doc, ~10x a posting's)."""
        if not len(ids):
            return np.zeros(len(docs), dtype=np.float32)
        if self._spread(len(docs), len(ids)):
            dense = np.zeros(self.n, dtype=np.float32)
            dense[ids] = tfs
            return dense[docs]
        # Probes of the ids' type: searchsorted would otherwise copy every id (docnums fit int32)
        pos, hit = find_sorted(ids, docs.astype(ids.dtype, copy=False))
        return np.where(hit, tfs[pos], 0).astype(np.float32)

    def _spread(self, docs: int, postings: int) -> bool:
        """Whether frequencies at ``docs`` documents are read faster from a list of ``postings``
        spread over an array per article than by a binary search per document."""
        return docs * DENSE_RATIO > postings + self.n // 16

    def _term_blocks(self, fieldname: str, term: str) -> list[tuple[TermBlocks | SideList, int, int]]:
        """The term's posting list in each segment holding it (from the segment's sidecar,
        else its Whoosh blocks), with the segment's first global docnum and its document count."""
        tbytes = term.encode("utf-8")
        found = []
        spans = self._lookup(fieldname, term)[1]
        for (leaf, base), side, (start, end, _) in zip(self.leaves, self.sidecars, spans):
            if side is None:
                blocks = term_blocks(leaf, fieldname, tbytes)
            else:
                blocks = SideList(side, start, end) if start >= 0 else None
            if blocks is not None:
                found.append((blocks, base, leaf.doc_count_all()))
        return found

    def doc_frequency(self, fieldname: str, term: str) -> int:
        """Articles holding the term (deleted ones included), from the term dictionaries
        alone: no postings are decoded."""
        return self._lookup(fieldname, term)[0]

    def _lookup(self, fieldname: str, term: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
        """The term's document frequency and, per segment, where its postings lie in the
        sidecar and its term number there (``start, end, t``; all -1: not there, or no
        sidecar), remembered: a query asks both, often. Python ints throughout: a query looks
        up ~100 terms, most of them in every segment."""
        key = (fieldname, term)
        hit = self._dictionary.get(key)
        if hit is None:
            tbytes = term.encode("utf-8")
            df, spans = 0, []
            for (leaf, _), side in zip(self.leaves, self.sidecars):
                if side is None:
                    df += leaf.doc_frequency(fieldname, tbytes)
                    spans.append(_ABSENT)
                    continue
                found = side.span(fieldname, tbytes)
                if found is not None:
                    df += found[1] - found[0]
                spans.append(found or _ABSENT)
            hit = (df, tuple(spans))
            self._dictionary.put(key, hit)
        return hit

    def phrase_positions(self, text: str, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ``docs`` (sorted global docnums) and ``text``, a phrase without whitespace:
        whether the sidecars' bigram positions decide if their normalised text holds it, and
        where decided, whether it does. A segment decides when bigrams with positions cover
        the phrase (or when it lacks one of its bigrams)."""
        decided = np.zeros(len(docs), dtype=bool)
        holds = np.zeros(len(docs), dtype=bool)
        if len(text) < 2:
            return decided, holds
        grams = [text[i:i + 2] for i in range(len(text) - 1)]
        spans = {g: self._lookup("text_c", g)[1] for g in grams}    # per segment: start, end, term
        bounds = docs.searchsorted(self._bounds)
        for i, ((leaf, base), side) in enumerate(zip(self.leaves, self.sidecars)):
            lo, hi = bounds[i], bounds[i + 1]
            if side is None or lo == hi:
                continue
            terms = [spans[g][i][2] for g in grams]
            if min(terms) < 0:                  # a gram the segment lacks: none of it holds the phrase
                decided[lo:hi] = True
                continue
            cover = _cover([side.has_positions(t) for t in terms])
            if cover is None:
                continue
            local = docs[lo:hi] - base
            keys = None
            for o in sorted(cover, key=lambda o: spans[grams[o]][i][1] - spans[grams[o]][i][0]):   # rarest first
                found = side.phrase_keys(terms[o], o, local)
                keys = found if keys is None else _common(keys, found)
            decided[lo:hi] = True
            holds[lo:hi] = find_sorted(keys >> 32, local)[1]
        return decided, holds

    def mask(self, fieldname: str, term: str) -> np.ndarray:
        """Articles holding the term (a new array). Kept as bits, 64x smaller than the
        decoded postings: common grams recur in most queries."""
        key = (fieldname, term)
        bits = self._masks.get(key)
        if bits is None:
            m = np.zeros(self.n, dtype=bool)
            if self.mapped and self._cache.peek(key) is None:   # straight from the mapped ids: nothing decoded
                spans = self._lookup(fieldname, term)[1]
                for (leaf, base), side, (start, end, _) in zip(self.leaves, self.sidecars, spans):
                    if start >= 0:
                        m[base:base + leaf.doc_count_all()][side.ids[start:end]] = True
            else:
                m[self.doc_ids(fieldname, term)] = True
            self._masks.put(key, np.packbits(m))
            return m
        return np.unpackbits(bits, count=self.n).view(bool)

    def norm_bytes(self, docnum: int) -> bytes:
        """The article's normalised "title\\nbody", UTF-8 (a UTF-8 substring test equals a str one)."""
        if docnum in self._long_docs:      # (a set: most texts are short, and an LRU lookup locks)
            hit = self._long.get(("norm", docnum))
            if hit is not None:
                return hit
        base, count, col, _ = self._segment_columns(docnum)
        text = col[docnum - base]
        if len(text) >= LONG_TEXT_BYTES:    # decompressing it again would cost milliseconds
            self._long.put(("norm", docnum), text)
            self._long_docs.add(docnum)
        return text

    def holds(self, docnum: int, needle: str, encoded: bytes, body_only: bool = False,
              text: bytes | None = None) -> bool:
        """Whether the normalised text (its body, with ``body_only``) contains ``needle``
        (UTF-8: ``encoded``; ``text``: the normalised text, when the caller has it). A
        long text's pair table answers without reading the text."""
        table = self.pair_table(docnum)
        if table is not None:
            return table.contains(needle, table.body_start if body_only else 0)
        if text is None:
            text = self.norm_bytes(docnum)
        if not body_only:
            return encoded in text
        newline = text.find(b"\n")
        return newline >= 0 and text.find(encoded, newline + 1) >= 0

    def count_in_body(self, docnum: int, needle: str, encoded: bytes, text: bytes | None = None) -> int:
        """How often the normalised body holds ``needle``, without overlaps (UTF-8:
        ``encoded``; ``text``: the normalised text, when the caller has it). A long text's
        pair table counts without reading the text."""
        table = self.pair_table(docnum)
        if table is not None:
            return table.count(needle, table.body_start)
        if text is None:
            text = self.norm_bytes(docnum)
        newline = text.find(b"\n")
        return text.count(encoded, newline + 1) if newline >= 0 else 0

    def first_in_body(self, docnum: int, needles) -> int | None:
        """Where (characters into the normalised body) the first of ``needles`` occurs, or None."""
        table = self.pair_table(docnum)
        if table is not None:
            found = [p for p in (table.first(n, table.body_start) for n in needles if n) if p is not None]
            return min(found) - table.body_start if found else None
        text = self.norm_bytes(docnum)
        body_start = text.find(b"\n") + 1         # the normalised title never holds a newline
        found = [p for p in (text.find(n.encode("utf-8"), body_start) for n in needles if n) if p >= 0]
        return len(text[body_start:min(found)].decode("utf-8", "ignore")) if found else None

    def pair_table(self, docnum: int) -> PairPositions | None:
        """The pair table of a text known to be long (built on first use), else None."""
        if docnum not in self._long_docs or docnum in self._untabled:
            return None
        table = self._pairs.get(docnum)
        if table is None:
            table = PairPositions(self.norm_bytes(docnum))
            if table.nbytes > self._pairs_budget:   # rebuilt on every use otherwise: scan instead
                self._untabled.add(docnum)
                return None
            self._pairs.put(docnum, table)
        return table

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
        """The article's stored record (``schema.document``'s ``doc``)."""
        if docnum in self._long_stored:
            hit = self._long.get(("stored", docnum))
            if hit is not None:
                return hit
        base, _, _, col = self._segment_columns(docnum)
        doc = col[docnum - base] if col is not None else self.searcher.stored_fields(docnum)["doc"]
        if len(doc.get("body") or "") * 3 >= LONG_TEXT_BYTES:    # (inflating 5 MB: ~10 ms)
            self._long.put(("stored", docnum), doc)
            self._long_stored.add(docnum)
        return doc

    def _segment_columns(self, docnum: int) -> tuple:
        """The column readers of the segment holding ``docnum``, with its first docnum and size."""
        found = self._columns[bisect.bisect_right(self._bases, docnum) - 1] if self._columns else None
        if found is None or not 0 <= docnum - found[0] < found[1]:
            raise IndexError(docnum)
        return found

    def docnum_for_id(self, doc_id: str) -> int | None:
        ids, _ = self.postings("id", unicodedata.normalize("NFC", doc_id))   # ids are stored NFC
        live = [int(d) for d in ids if self.live[d]]
        return live[-1] if live else None


VERIFY_SAMPLE = 64      # articles read back from new segments before they are published


def _text_size(value) -> int:
    return len(value) if isinstance(value, bytes) else 3 * len(value.get("body") or "") + 1000


def verify(storage, schema, segments, ids) -> None:
    """Open new ``segments`` the way the service does and read a sample of ``ids`` back
    (their records and normalised text); raises :class:`UnreadableIndex` when that
    fails, so nothing a worker cannot open is ever made current."""
    step = max(1, len(ids) // VERIFY_SAMPLE)
    view = None
    try:
        view = IndexView(MultiReader([SegmentReader(storage, schema, s) for s in segments]), "verify",
                         cache_bytes=1 << 20)
        for (leaf, _), side in zip(view.leaves, view.sidecars):
            if side is None and reader_segment_path(leaf, SUFFIX) is not None:
                raise ValueError(f"segment {leaf.segment().segment_id()} has no posting sidecar")
            if side is not None:
                side.check()
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


def _cover(positioned: list[bool]) -> list[int] | None:
    """Offsets of bigrams with positions (``positioned[o]``) that together cover every
    character of the phrase (bigram ``o`` covers characters ``o`` and ``o + 1``), or None."""
    chosen, need = [], 0      # need: the first character not yet covered
    last = len(positioned)    # characters: last + 1
    while need <= last:
        if need < last and positioned[need]:
            o = need
        elif need > 0 and positioned[need - 1]:
            o = need - 1
        else:
            return None
        chosen.append(o)
        need = o + 2
    return chosen


def _common(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The values both sorted, duplicate-free arrays hold."""
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return a
    return a[find_sorted(b, a)[1]]
