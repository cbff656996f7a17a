"""Ranking: BM25, its field weights (BM25F), and where the query occurs contiguously.

:func:`bm25` is pure arithmetic on arrays, as in Whoosh's ``scoring.py`` and
tantivy's ``query/bm25.rs``, composed of :func:`idf`, :func:`length_norm` and
:func:`saturation`; :func:`unit_scores` applies them over the index's fields, each
field's length norms computed once per query (:class:`LengthNorms`);
:func:`whole_query` finds the query in titles and its multi-word clauses in bodies;
:class:`ScoreParts` combines them in one formula, which ``/search?explain=true``
shows per hit.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from .analysis import phrase_bigrams

K1 = 1.6                   # tuned on queries-dev (grid 1.2/1.6/2.0 x title 1.5/2.5)
B = 0.75
TITLE_BOOST = 1.5          # BM25F weight of a title occurrence vs a body one
WORD_FIELDS = (("title", TITLE_BOOST), ("body", 1.0))        # jieba words
GRAM_FIELDS = (("title_c", TITLE_BOOST), ("text_c", 1.0))    # character grams
GRAM_WEIGHT = 0.5          # char-gram BM25 standing in for a word jieba never produced
# An article whose title holds the whole query (contiguously, spaces aside) ranks before
# any that does not, like a match_phrase on the title that always wins: a known-item
# query typed from a title finds it first, and a title naming the topic is about it.
TIER = 1000.0
# Each clause of the query (what the user separated by spaces) of two or more words scores
# as one more term where it occurs contiguously (BM25 of its count), weighted by
# (words - 1) ** PHRASE_POWER: two adjacent words are often a compound any article on the
# topic uses in passing; many in a row are a quotation of that article.
PHRASE_POWER = 1.5
# A title that is the query itself adds EQUAL_TITLE, about one rare word's BM25: it wins
# among titles holding the query unless another is much more about it.
EQUAL_TITLE = 10.0
# Field lengths below this share of the average count as this share: BM25 must not
# favour a caption-only clip for being short.
LENGTH_FLOOR = 0.5
HOMOPHONE_WEIGHT = 0.8     # a homophone searched for a probable typo counts less than the text typed
PHRASE_SCAN_BYTES = 60_000  # text searched for a phrase across line breaks, per article
# A very common query: only the best-scored are looked at (titles are cheap to read from
# the head column; a text is decompressed, ~10 µs, or read cold from disk).
TITLE_MAX_DOCS = 2000
# As many matches or fewer: every title is read (~2 µs each), not the whole query's grams
# looked up in the index first (~40 for a title typed in full, ~10 µs each at 10^5 articles).
# Past it, the articles whose text holds the query's pairs, and those whose title has a space
# between two neighbouring characters of it ("习近平 讲话" has "平 " and " 讲", not 平讲):
# Plan._title_candidates.
TITLE_READ_ALL = 128
PHRASE_MAX_DOCS = 300
SCALAR_DOCS = 8     # this many scored articles or fewer: Python floats (numpy's set-up per call costs more)


def bm25(tf, length, avg: float, n: int, df: int, k1: float = K1, b: float = B):
    """BM25 of a term occurring ``tf`` times in a field ``length`` long (average ``avg``),
    held by ``df`` of ``n`` articles. Works on scalars and numpy arrays alike."""
    return saturation(tf, length_norm(length, avg, k1, b), idf(n, df), k1)


def idf(n: int, df: int) -> float:
    """BM25's inverse document frequency of a term held by ``df`` of ``n`` articles."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def length_norm(length, avg: float, k1: float = K1, b: float = B):
    """BM25's length normalisation of a field ``length`` long (average ``avg``)."""
    return k1 * (1 - b + b * length / (avg or 1.0))


def saturation(tf, norm, term_idf: float, k1: float = K1):
    """BM25 from a term's frequency, its field's :func:`length_norm` and the term's :func:`idf`."""
    return term_idf * tf * (k1 + 1) / (tf + norm)


def floored_lengths(view, fieldname: str, docs: np.ndarray) -> np.ndarray:
    """The field's lengths of ``docs`` for BM25, none below LENGTH_FLOOR of the average."""
    return np.maximum(view.lengths[fieldname][docs], LENGTH_FLOOR * view.avg[fieldname])


class LengthNorms(dict):
    """Each field's :func:`length_norm` of the scored ``docs``, computed on first use: once
    per query, not once per term (a query scores ~20 terms in two fields each)."""

    def __init__(self, view, docs: np.ndarray):
        super().__init__()
        self.view, self.docs = view, docs
        self._lists: dict[str, list[float]] = {}

    def __missing__(self, fieldname: str) -> np.ndarray:
        norm = self[fieldname] = length_norm(floored_lengths(self.view, fieldname, self.docs),
                                             self.view.avg[fieldname])
        return norm

    def lists(self, fieldname: str) -> list[float]:
        """The field's norms as Python floats (kept)."""
        found = self._lists.get(fieldname)
        if found is None:
            found = self._lists[fieldname] = self[fieldname].tolist()
        return found


def field_bm25(view, fieldname: str, term: str, docs: np.ndarray, n_live: int, df: int,
               norms: LengthNorms) -> np.ndarray:
    """BM25 of ``term`` in one field for each of ``docs`` (sorted global docnums; ``norms``: theirs)."""
    return saturation(view.term_freqs(fieldname, term, docs), norms[fieldname], idf(n_live, df))


def unit_terms(view, text: str, field: str | None, phrase: bool) -> list[tuple[str, str, int, float]]:
    """``(field, term, df, weight)`` of the terms scoring one word or phrase: the word in
    each field holding it, else (phrases, words jieba never produced) its char grams, which
    share the word's weight. ``field="title"``: the title only."""
    out = []
    if not phrase:
        for f, weight in WORD_FIELDS[:1] if field == "title" else WORD_FIELDS:
            df = view.doc_frequency(f, text)
            if df:
                out.append((f, text, df, weight))
    if not out:
        grams = phrase_bigrams(text)
        for f, weight in GRAM_FIELDS[:1] if field == "title" else GRAM_FIELDS:
            for g in grams:
                df = view.doc_frequency(f, g)
                if df:
                    out.append((f, g, df, GRAM_WEIGHT * weight / len(grams)))
    return out


def unit_scores(view, text: str, field: str | None, phrase: bool, n_live: int, docs: np.ndarray,
                norms: LengthNorms | None = None) -> np.ndarray:
    """BM25F of one word or phrase (:func:`unit_terms`) for each of ``docs``. ``norms``: the
    docs' :class:`LengthNorms`, when the caller scores other words of them."""
    norms = LengthNorms(view, docs) if norms is None else norms
    terms = unit_terms(view, text, field, phrase)
    if view.mapped and len(docs) <= SCALAR_DOCS:
        return np.array(_few_scores(view, terms, n_live, docs.tolist(), norms), dtype=np.float64)
    total = np.zeros(len(docs), dtype=np.float64)
    for f, term, df, weight in terms:
        total += weight * field_bm25(view, f, term, docs, n_live, df, norms)
    return total


_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    """``x`` rounded to float32 (struct: a third of ``np.float32``'s cost)."""
    return _F32.unpack(_F32.pack(x))[0]


def _few_scores(view, terms, n_live: int, docs: list[int], norms: LengthNorms) -> list[float]:
    """:func:`unit_scores` of a few ``docs`` in Python floats, without numpy's set-up per
    call (~1 µs, a dozen calls per term). The same arithmetic in the same order, so the
    same scores to the bit: frequencies and length norms are float32, so NumPy computes
    :func:`saturation` and its weighting in float32 (a Python float operand is cast to
    float32), each step rounded here alike (rounding a double result of two float32 values
    to float32 gives float32's own result for + - * /)."""
    total = [0.0] * len(docs)
    k1 = _f32(K1 + 1)
    for f, term, df, weight in terms:
        term_idf, weight = _f32(idf(n_live, df)), _f32(weight)
        for j, (tf, norm) in enumerate(zip(view.few_term_freqs(f, term, docs), norms.lists(f))):
            total[j] += _f32(weight * _f32(_f32(_f32(term_idf * tf) * k1) / _f32(tf + norm)))
    return total


def _best(idx: np.ndarray, s: np.ndarray, limit: int) -> np.ndarray:
    """The ``limit`` of ``idx`` scored highest in ``s`` (all of them if fewer)."""
    return idx[np.argsort(-s[idx])[:limit]] if len(idx) > limit else idx


def whole_query(view, fulls: list[str], full_candidates: list, phrases: list[str], phrase_candidates: list,
                docs: np.ndarray, s: np.ndarray, check_time) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Where the query occurs contiguously in each of ``docs`` (scored ``s``): for each of
    ``fulls`` (the whole query, normalised, without whitespace, as typed or as read), 1 if
    the title holds it and 2 if it is the title; for each of ``phrases``, how often it
    occurs (title occurrences weighted like the title). The ``*_candidates`` masks say
    which articles can hold them (None for a full: every title is read); only
    the best-scored of many are read (TITLE_MAX_DOCS titles from the uncompressed head
    column, PHRASE_MAX_DOCS texts). ``check_time`` is called now and then."""
    in_titles = []
    for full, candidates in zip(fulls, full_candidates):
        in_title = np.zeros(len(docs))
        held = np.arange(len(docs)) if candidates is None else candidates[docs].nonzero()[0]
        for n, i in enumerate(_best(held, s, TITLE_MAX_DOCS)):
            if n % 256 == 255:
                check_time()
            compact = "".join(view.title_bytes(int(docs[i])).decode("utf-8").split())
            in_title[i] = (compact == full) + (full in compact)
        in_titles.append(in_title)
    # The texts worth reading: those that can reach the first pages.
    s = s + sum(TIER * (t > 0) + EQUAL_TITLE * (t > 1) for t in in_titles)
    counts = []
    for phrase, candidates in zip(phrases, phrase_candidates):
        needle, count = phrase.encode("utf-8"), np.zeros(len(docs))
        for n, i in enumerate(_best(candidates[docs].nonzero()[0], s, PHRASE_MAX_DOCS)):
            if n % 64 == 63:
                check_time()
            d = int(docs[i])
            text = view.norm_bytes(d)
            newline = text.find(b"\n")     # not partition(): it would copy a long body
            compact_title = "".join(text[:newline if newline >= 0 else len(text)].decode("utf-8").split())
            count[i] = view.count_in_body(d, phrase, needle, text) + TITLE_BOOST * compact_title.count(phrase)
            if not count[i] and newline >= 0:   # broken by a line or space; looked for near the start only (cost)
                start = text[newline + 1:newline + 1 + PHRASE_SCAN_BYTES].decode("utf-8", "ignore")
                count[i] = phrase in "".join(start.split())
        counts.append(count)
    return in_titles, counts


@dataclass
class ScoreParts:
    """The parts of each article's score, as arrays over the scored articles:

    ``score = TIER * title + EQUAL_TITLE * equal_title + sum(words) * coverage ** 2 + phrase``
    """
    words: dict[str, np.ndarray]          # BM25F of each query word (the best of its synonyms)
    coverage: np.ndarray | None = None     # relaxed query: share of its words each article holds
    title: np.ndarray | None = None        # 1: the title holds the whole query (HOMOPHONE_WEIGHT: as read)
    equal_title: np.ndarray | None = None  # 1: the title is the query (HOMOPHONE_WEIGHT: as read)
    phrase: np.ndarray | None = None       # the multi-word clauses, each as a term (see PHRASE_POWER)

    def total(self, n: int) -> np.ndarray:
        s = np.zeros(n)
        for w in self.words.values():
            s += w
        if self.coverage is not None:
            s *= self.coverage ** 2
        if self.phrase is not None:
            s += self.phrase
        if self.title is not None:
            s += TIER * self.title + EQUAL_TITLE * self.equal_title
        return s

    def explain(self, i: int, total: float) -> dict:
        """One article's parts, for ``/search?explain=true``."""
        out = {"score": round(total, 4),
               "formula": "title_boost × title + equal_title_boost × equal_title + Σ words × coverage² + phrase",
               "words": {w: round(float(v[i]), 6) for w, v in self.words.items()}}
        for name in ("coverage", "title", "equal_title", "phrase"):
            v = getattr(self, name)
            if v is not None:
                out[name] = round(float(v[i]), 6)
        out["title_boost"], out["equal_title_boost"] = TIER, EQUAL_TITLE
        return out
