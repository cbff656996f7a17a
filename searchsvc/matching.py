"""Matching: which articles hold a parsed query, as grep would say on normalised text.

An article matches a word or a quoted phrase when its title or body contains it.
Candidates come from the character field (all of the text's bigrams, or its
one unigram), and are confirmed against the stored normalised text when the
grams alone cannot prove it. Articles whose jieba words include the word are
confirmed without reading anything. A query no article fully matches is
relaxed: most of its plain words must match.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field as dc_field

import numpy as np

from .analysis import Analysis, phrase_bigrams
from .query import Clause, ParsedQuery
from .scoring import TIER, phrase_tiers, unit_scores
from .view import SPARSE_MIN_DF, SPARSE_RATIO, IndexView

GRAM_DECODE_RATIO = 30  # decoding a posting ~0.3 µs, confirming a text ~10 µs (Plan._candidates)


class SearchTimeout(Exception):
    """A query ran over its time budget (and was stopped, freeing the worker thread)."""


class Plan:
    """One parsed query against one index view: match masks and scores."""

    def __init__(self, view: IndexView, analysis: Analysis, parsed: ParsedQuery, synonyms=None,
                 deadline: float = float("inf")):
        self.view = view
        self.deadline = deadline
        self.analysis = analysis
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
                if not (text in view.title_bytes(int(d)) if title_only else view.holds(int(d), unit.text, text)):
                    mask[d] = False
        if scope is None:
            unit.mask = mask
        return mask

    # ------------------------------------------------------------ scoring
    def scores(self, docs: np.ndarray) -> np.ndarray:
        """Scores of ``docs`` (see :mod:`scoring`); relaxed queries favour articles holding more words."""
        view = self.view
        total = np.zeros(view.n, dtype=np.float64)
        n_live = max(view.doc_count, 1)
        coverage = self._coverage
        units = coverage[1] if coverage else [u for g in self.groups for alt in g for u in alt]
        for u in dict.fromkeys(units):
            if not u.synonyms:
                total[docs] += unit_scores(view, u.text, u.field, u.phrase, n_live, docs)
            else:   # a word or any of its synonyms: the best of them counts
                total[docs] += np.maximum.reduce([unit_scores(view, t, u.field, u.phrase, n_live, docs)
                                                  for t in u.texts])
        s = total[docs]
        if coverage:   # relaxed: favour articles holding more of the words
            s = s * (coverage[0][docs] / max(1, len(coverage[1]))) ** 2
        if self._boost_full and len(docs):
            cand = self._candidates("text_c", phrase_bigrams(self.full))
            s = s + TIER * phrase_tiers(view, self.full, cand, docs, s, self.check_time)
        return s


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

