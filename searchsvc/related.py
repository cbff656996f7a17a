"""More-like-this: articles sharing an article's key terms.

Key terms are the article's words weighted by tf-idf (title words count
double), idf from the lexicon's document frequencies. Candidates are scored
by BM25F over those terms (:mod:`scoring`), then preferred when in the same section and recent.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .schema import UNDATED
from .scoring import WORD_FIELDS, bm25

KEY_TERMS = 15
SAME_SECTION = 1.3          # score factor for the article's own section
RECENCY_DAYS = 365.0        # score halves for an article this much older than the newest


KEY_TEXT_CHARS = 20_000     # key terms come from the start of a long article (bounded cost)


def key_terms(title: str, body: str, analysis, df: dict[str, int], n_docs: int) -> list[str]:
    tf: Counter = Counter()
    for weight, text in ((2, title), (1, body[:KEY_TEXT_CHARS])):
        for t in analysis.query_terms(text):
            if len(t) >= 2 and not t.isdigit():
                tf[t] += weight
    scored = {t: n * math.log(1 + n_docs / (1 + df.get(t, 0))) for t, n in tf.items() if df.get(t, 0) > 1}
    return sorted(scored, key=lambda t: -scored[t])[:KEY_TERMS]


def related_docs(view, docnum: int, terms: list[str], limit: int) -> list[tuple[int, float]]:
    """(docnum, score) of the best ``limit`` other live articles."""
    total = np.zeros(view.n, dtype=np.float64)
    n_live = max(view.doc_count, 1)
    for t in terms:
        for f, weight in WORD_FIELDS:
            ids, tfs = view.postings(f, t)
            if len(ids):
                total[ids] += weight * bm25(tfs, view.lengths[f][ids], view.avg[f], n_live, len(ids))
    total[~view.live] = 0
    total[docnum] = 0
    candidates = np.flatnonzero(total)
    if not len(candidates):
        return []
    s = total[candidates]
    s = s * np.where(view.section_ord[candidates] == view.section_ord[docnum], SAME_SECTION, 1.0)
    dated = view.date[candidates] != UNDATED
    newest = view.date[candidates][dated].max() if dated.any() else 0
    age_days = np.where(dated, (newest - view.date[candidates]) / (60 * 24), RECENCY_DAYS * 2)
    s = s * (0.5 ** (age_days / RECENCY_DAYS) * 0.5 + 0.5)   # recency nudges, relevance decides
    order = np.lexsort((candidates, -s))[:limit]
    return [(int(candidates[i]), float(s[i])) for i in order]
