"""Ranking: BM25, its field weights (BM25F), and the contiguous-query tiers.

:func:`bm25` is pure arithmetic on arrays, as in Whoosh's ``scoring.py`` and
tantivy's ``query/bm25.rs``; :func:`unit_scores` applies it over the index's
fields, :func:`phrase_tiers` ranks articles holding the whole query first.
"""

from __future__ import annotations

import math

import numpy as np

from .analysis import phrase_bigrams

K1 = 1.6                   # tuned on queries-dev (grid 1.2/1.6/2.0 x title 1.5/2.5)
B = 0.75
TITLE_BOOST = 1.5          # BM25F weight of a title occurrence vs a body one
WORD_FIELDS = (("title", TITLE_BOOST), ("body", 1.0))        # jieba words
GRAM_FIELDS = (("title_c", TITLE_BOOST), ("text_c", 1.0))    # character grams
GRAM_WEIGHT = 0.5          # char-gram BM25 standing in for a word jieba never produced
# Articles holding the whole query contiguously rank before those holding only its
# words (like a match_phrase boost that always wins): tier 3 = the title is the
# query, 2 = the title contains it, 1 = the body does. Scores are tier * TIER + BM25F.
TIER = 1000.0
TIER_SCAN_BYTES = 60_000   # text searched for the query across line breaks (tier 1), per article
TIER_MAX_DOCS = 2000       # a very common query: only the best-scored can reach a page


def bm25(tf, length, avg: float, n: int, df: int, k1: float = K1, b: float = B):
    """BM25 of a term occurring ``tf`` times in a field ``length`` long (average ``avg``),
    held by ``df`` of ``n`` articles. Works on scalars and numpy arrays alike."""
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    norm = k1 * (1 - b + b * length / (avg or 1.0))
    return idf * tf * (k1 + 1) / (tf + norm)


def field_bm25(view, fieldname: str, term: str, docs: np.ndarray, n_live: int, df: int) -> np.ndarray:
    """BM25 of ``term`` in one field for each of ``docs`` (sorted global docnums)."""
    return bm25(view.term_freqs(fieldname, term, docs), view.lengths[fieldname][docs], view.avg[fieldname],
                n_live, df)


def unit_scores(view, text: str, field: str | None, phrase: bool, n_live: int, docs: np.ndarray) -> np.ndarray:
    """BM25F of one word or phrase for each of ``docs``; ``field="title"`` scores the title only."""
    total = np.zeros(len(docs), dtype=np.float64)
    word_hit = False
    if not phrase:
        for f, weight in WORD_FIELDS[:1] if field == "title" else WORD_FIELDS:
            df = view.doc_frequency(f, text)
            if df:
                word_hit = True
                total += weight * field_bm25(view, f, text, docs, n_live, df)
    if not word_hit:   # phrases and words jieba never produced: char grams
        grams = phrase_bigrams(text)
        for f, weight in GRAM_FIELDS[:1] if field == "title" else GRAM_FIELDS:
            for g in grams:
                df = view.doc_frequency(f, g)
                if df:
                    total += (GRAM_WEIGHT * weight / len(grams)) * field_bm25(view, f, g, docs, n_live, df)
    return total


def phrase_tiers(view, full: str, candidates: np.ndarray, docs: np.ndarray, s: np.ndarray,
                 check_time) -> np.ndarray:
    """0-3 per article of ``docs`` (scored ``s``): where the whole query ``full``
    (normalised, without whitespace) occurs contiguously (see TIER). ``candidates``
    masks the articles that can hold it; ``check_time`` is called now and then."""
    tier = np.zeros(len(docs))
    idx = np.flatnonzero(candidates[docs])
    if len(idx) > TIER_MAX_DOCS:
        idx = idx[np.argsort(-s[idx])[:TIER_MAX_DOCS]]
    full_bytes = full.encode("utf-8")
    for n, i in enumerate(idx):
        if n % 256 == 255:
            check_time()
        d = int(docs[i])
        text = view.norm_bytes(d)
        newline = text.find(b"\n")     # not partition(): it would copy a long body
        compact_title = "".join(text[:newline if newline >= 0 else len(text)].decode("utf-8").split())
        if full in compact_title:
            tier[i] = 3 if compact_title == full else 2
        elif view.holds(d, full, full_bytes, body_only=True, text=text):
            tier[i] = 1
        else:   # the query broken by a line or space; looked for near the start only (cost)
            start = text[newline + 1:newline + 1 + TIER_SCAN_BYTES] if newline >= 0 else b""
            tier[i] = 1 if full in "".join(start.decode("utf-8", "ignore").split()) else 0
    return tier
