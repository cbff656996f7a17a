"""Matching: which articles hold a parsed query, as grep would say on normalised text.

An article matches a word or a quoted phrase when its title or body contains it.
Candidates come from the character field (all of the text's bigrams, or its
one unigram), and are confirmed against the stored normalised text when the
grams alone cannot prove it. Articles whose jieba words include the word are
confirmed without reading anything. A query no article fully matches is
relaxed: most of its plain words must match.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field as dc_field

import numpy as np

from .analysis import Analysis, phrase_bigrams
from .postings import find_sorted
from .query import Clause, ParsedQuery
from . import scoring
from .scoring import HOMOPHONE_WEIGHT, LengthNorms, ScoreParts, idf, saturation, unit_scores, whole_query
from .typos import Fix, apply
from .view import SPARSE_MIN_DF, SPARSE_RATIO, IndexView

GRAM_DECODE_RATIO = 30  # decoding a posting ~0.3 µs, confirming a text ~10 µs (Plan._candidates)
POSITIONS_MIN_CANDIDATES = 8   # fewer texts are read (~10 µs each) faster than positions are gathered
WORD_MASK_SHARE = 64    # candidates over 1/64 of the index: a word's proof from its (cached) mask, whose
                        # cost is per article of the index, not per candidate (Plan.unit_mask)


class SearchTimeout(Exception):
    """A query ran over its time budget (and was stopped, freeing the worker thread)."""


class Plan:
    """One parsed query against one index view: match masks and scores."""

    def __init__(self, view: IndexView, analysis: Analysis, parsed: ParsedQuery, synonyms=None,
                 deadline: float = float("inf"), typos: dict[Clause, list[Fix]] | None = None):
        self.view = view
        self.deadline = deadline
        self.analysis = analysis
        self.synonyms = synonyms or {}
        self.typos = typos or {}     # plain clauses' probable typos, searched with their homophones
        self.expansions: dict[str, list[str]] = {}
        norm = analysis.normalizer
        # Each positive group: list of alternatives; each alternative: list of units.
        self.groups = [[self._units(c) for c in g] for g in parsed.groups]
        self.excluded = [self._units(c) for c in parsed.excluded]
        self.needles = list(dict.fromkeys(t for g in self.groups for alt in g for u in alt for t in u.texts))
        plain = [c for c in parsed.positive_clauses() if not c.phrase]
        self._positive = parsed.positive_clauses()
        self._compact = {c: "".join(norm(c.text).split()) for c in self._positive}   # normalised, no spaces
        # The whole query as typed, for the contiguous-phrase boost: its clauses normalised apart,
        # as a title's words are (a letter cased by its context, Σ at a word's end, stays the title's).
        self.full = "".join(self._compact[c] for c in self._positive) if parsed.groups else ""
        self._boost_full = len(plain) == len(self._positive) and len(self.full) >= 2
        # ...and as it was probably meant (its typos replaced; see read_typos), ranked a little below.
        self._phrase_list: list[tuple[str, int, float, int]] | None = None   # see _phrases
        self.full_fixed = ""
        self._fixed: dict[Clause, str] = {}
        self._texts: dict[tuple[str, str | None], Unit] = {}
        self._gram_sets: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}   # see _candidates
        # Each clause of two or more words, scored as a phrase where its words are adjacent
        # (the user's spaces separate what need not be); not title: clauses (the title part scores those).
        self._plain = [c for c in plain if c.field is None] if self._boost_full else []
        self._coverage = None   # (match counts, units) once the query was relaxed

    def _units(self, clause: Clause) -> list["Unit"]:
        norm = self.analysis.normalizer(clause.text)
        if clause.phrase:
            return [Unit(norm, clause.field, phrase=True)] if norm.strip() else []
        whole = "".join(norm.split())
        fixes = self.typos.get(clause)
        if fixes:   # each probable typo one unit (its text or a homophone), the rest segmented
            pieces, pos = [], 0
            for f in fixes:
                pieces += [(whole[pos:f.start], None), (f.text, f)]
                pos = f.end
            pieces.append((whole[pos:], None))
            units = []
            for text, fix in pieces:
                if fix is not None:
                    units.append(Unit(fix.text, clause.field, homophones=fix.homophones))
                elif text:
                    units += self._word_units(self.analysis.query_terms(text), clause.field)
            return list({u.text: u for u in units}.values())
        words = list(dict.fromkeys(self.analysis.query_terms(clause.text)))
        if len(words) > 1 and whole in self.synonyms:    # the clause as a whole has synonyms
            words = [whole]
        return self._word_units(words, clause.field)

    def _word_units(self, words: list[str], field: str | None) -> list["Unit"]:
        units = []
        for w in dict.fromkeys(words):
            alts = self.synonyms.get(w, ())
            if alts:
                self.expansions[w] = list(alts)
            units.append(Unit(w, field, synonyms=alts))
        return units

    def release(self) -> "Plan":
        """Drop the match masks (scoring needs none of them), so that a cached plan, kept to
        explain scores later, holds little memory (see :attr:`nbytes`)."""
        units = [u for g in self.groups for alt in g for u in alt] + [u for us in self.excluded for u in us]
        for u in units + (self._coverage[1] if self._coverage else []):     # relaxing splits words anew
            u.mask = u.grams = None
        self._texts.clear()
        self._gram_sets.clear()     # full-size masks: a cached plan must not keep them (nbytes)
        return self

    @property
    def nbytes(self) -> int:
        """Memory a released plan holds: a relaxed query's match counts."""
        return self._coverage[0].nbytes if self._coverage else 0

    def with_deadline(self, deadline: float) -> "Plan":
        """This plan (sharing its cached masks) under a new time budget."""
        plan = copy.copy(self)
        plan.deadline = deadline
        plan._gram_sets = {}       # its own: what it finds must not stay with a released (cached) plan
        return plan

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
            units = [u for g in groups for u in g[0]]
            gram_masks = {}      # (units compare by identity)
            narrowed = scope is not None
            # Words of one text searched in the whole text: the grams of all of them at once,
            # rarest first, each next one looked up for the articles left (not per word, each
            # word's rarest gram's articles in full). Every gram is applied (a word of one gram
            # is proven by its candidates), which costs per candidate only with sidecars.
            joint = [u for u in units if len(u.texts) == 1 and u.field != "title" and u.grams is None]
            if len(joint) > 1 and view.mapped:
                grams = list(dict.fromkeys(g for u in joint for g in phrase_bigrams(u.text)))
                common = self._find_candidates("text_c", grams, result if narrowed else None, exhaustive=True)
                result &= common
                narrowed = True
                gram_masks.update((u, common) for u in joint)
            for u in units:
                if u not in gram_masks:
                    # Unfiltered, the first unit's grams are found in the whole index: kept for
                    # the plan (scoring asks again) and no all-true scope to look every posting up in.
                    gram_masks[u] = self.gram_mask(u, scope=result if narrowed else None)
                    result &= gram_masks[u]
                    narrowed = True
            for u in units:   # (the scope only narrowed since: its grams need not be found again)
                result &= self.unit_mask(u, scope=result, scoped_grams=gram_masks[u])
                self.check_time()
        else:
            for g in groups:
                result &= self._group_mask(g)
                self.check_time()
        if groups and not (result & view.live).any():    # (boolean indexing, result[live], took 10x)
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
        words = [v for u in words for v in (self._split(u) if not (self.unit_mask(u) & live).any() else [u])]
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
        if len(unit.texts) > 1:
            mask = np.logical_or.reduce([self.gram_mask(Unit(t, unit.field), scope) for t in unit.texts])
        else:
            gram_field = "title_c" if unit.field == "title" else "text_c"
            mask = self._candidates(gram_field, phrase_bigrams(unit.text), scope)
        if scope is None:
            unit.grams = mask
        return mask

    def _candidates(self, gram_field: str, grams: list[str], scope: np.ndarray | None = None) -> np.ndarray:
        """:meth:`_find_candidates`, kept for the plan when there is no scope (read only): the
        whole query is often one of its words, or its one clause, and asked for again."""
        if scope is not None:
            return self._find_candidates(gram_field, grams, scope)
        key = (gram_field, tuple(grams))
        mask = self._gram_sets.get(key)
        if mask is None:
            mask = self._gram_sets[key] = self._find_candidates(gram_field, grams)
        return mask

    def _title_candidates(self, full: str, docs: np.ndarray) -> np.ndarray:
        """A mask over the index, of which ``docs``' entries (sorted docnums) say whose title
        may hold ``full`` (normalised, without whitespace) once the title's whitespace is
        removed: those whose text holds the query's pairs (a title holding it unbroken does),
        and those whose title has whitespace between two neighbouring characters of it (a
        title holding it across a space has "购 " and " 进", not the pair 购进)."""
        view, held = self.view, self._candidates("text_c", phrase_bigrams(full))
        left = ~held[docs]                  # of docs, those not candidates yet
        extra, has = np.zeros(len(docs), dtype=bool), {}
        for before, after in dict.fromkeys(zip(full, full[1:])):
            if not left.any():
                break
            grams = (before + " ", " " + after)
            if not all(view.doc_frequency("title_c", g) for g in grams):
                continue
            for g in grams:
                if g not in has:            # whether each of docs has the gram in its title
                    ids = view.doc_ids("title_c", g)
                    has[g] = find_sorted(ids, docs.astype(ids.dtype, copy=False))[1]
            both = left & has[grams[0]] & has[grams[1]]
            extra |= both
            left &= ~both
        if not extra.any():
            return held
        mask = held.copy()
        mask[docs[extra]] = True
        return mask

    def _find_candidates(self, gram_field: str, grams: list[str], scope: np.ndarray | None = None,
                         exhaustive: bool = False) -> np.ndarray:
        """Articles (inside ``scope``) holding the grams, rarest first. A gram whose posting
        list is much longer than the candidates left is looked up for those candidates
        only (skipping through its blocks); once two grams are applied, one over
        GRAM_DECODE_RATIO times longer is left out: reading the few candidates' texts,
        which confirm every match anyway, costs less. ``exhaustive``: none is left out (the
        candidates are exactly the articles holding every gram)."""
        view = self.view
        ranked = sorted(grams, key=lambda g: view.doc_frequency(gram_field, g))
        if view.mapped and ranked:
            return self._mapped_candidates(gram_field, ranked, scope, exhaustive)
        mask = np.ones(view.n, dtype=bool) if scope is None else scope.copy()
        left = view.n if scope is None else int(np.count_nonzero(mask))
        for i, g in enumerate(ranked):
            df = view.doc_frequency(gram_field, g)
            if left == 0:
                break
            if i >= 2 and df > GRAM_DECODE_RATIO * left and not exhaustive:
                break
            if df > SPARSE_RATIO * left and df >= SPARSE_MIN_DF:
                docs = mask.nonzero()[0]
                mask[docs[view.term_freqs(gram_field, g, docs) == 0]] = False
            else:
                mask &= view.mask(gram_field, g)
            left = int(np.count_nonzero(mask))
        return mask

    def _mapped_candidates(self, gram_field: str, ranked: list[str], scope: np.ndarray | None,
                           exhaustive: bool = False) -> np.ndarray:
        """:meth:`_find_candidates` over sidecars: the rarest gram's articles as a sorted array,
        narrowed by each next gram's binary searches, whose cost is per candidate (a mask
        costs per article of the index: 10x more at 10x the archive); masks only while
        the candidates are a large share of the index."""
        view = self.view
        docs = view.doc_ids(gram_field, ranked[0])
        if scope is not None:
            docs = docs[scope[docs]]
        for i, g in enumerate(ranked[1:], 1):
            if not len(docs):
                break
            df = view.doc_frequency(gram_field, g)
            if i >= 2 and df > GRAM_DECODE_RATIO * len(docs) and not exhaustive:
                break
            if len(docs) * WORD_MASK_SHARE > view.n:
                docs = docs[view.mask(gram_field, g)[docs]]
            else:
                docs = docs[view.term_freqs(gram_field, g, docs) > 0]
        mask = np.zeros(view.n, dtype=bool)
        mask[docs] = True
        return mask

    def unit_mask(self, unit: "Unit", scope: np.ndarray | None = None,
                  scoped_grams: np.ndarray | None = None) -> np.ndarray:
        """Articles whose (title or) text contains the unit's text (or a synonym), exactly.
        With ``scope``, exact only inside it (texts outside are not read). ``scoped_grams``,
        when the caller has it: inside ``scope``, the articles that may hold the unit (its
        :meth:`gram_mask`, or the grams of several words found together); for a unit of one
        gram, exactly those holding that gram, since nothing else proves such a unit."""
        if unit.mask is not None:
            return unit.mask
        if len(unit.texts) > 1:
            mask = np.logical_or.reduce([self.text_mask(t, unit.field, scope) for t in unit.texts])
            if scope is None:
                unit.mask = mask
            return mask
        view = self.view
        if scoped_grams is not None and scope is not None:
            mask = scoped_grams & scope
        else:
            mask = self.gram_mask(unit, scope).copy()
        grams = phrase_bigrams(unit.text)
        # One char or one bigram is proven by its posting, unless it holds whitespace (a
        # gram's space stands for any whitespace run, the phrase for itself).
        exact_by_grams = len(grams) == 1 and grams[0] == unit.text and not any(c.isspace() for c in unit.text)
        if not exact_by_grams:
            title_only = unit.field == "title"
            candidates = (mask & view.live if scope is None else mask & view.live & scope).nonzero()[0]
            if not any(c.isspace() for c in unit.text):   # a jieba word is a substring: proof
                word_fields = ("title",) if unit.field == "title" else ("title", "body")
                if len(candidates) * WORD_MASK_SHARE > view.n:     # many: the word's masks, not lookups
                    words = np.zeros(view.n, dtype=bool)
                    for f in word_fields:
                        if view.doc_frequency(f, unit.text):
                            words |= view.mask(f, unit.text)
                    proven = words[candidates]
                else:
                    proven = np.zeros(len(candidates), dtype=bool)
                    for f in word_fields:
                        proven |= view.term_freqs(f, unit.text, candidates) > 0
                candidates = candidates[~proven]
                if not title_only and len(candidates) >= POSITIONS_MIN_CANDIDATES:   # bigram positions decide
                    decided, holds = view.phrase_positions(unit.text, candidates)
                    mask[candidates[decided & ~holds]] = False
                    candidates = candidates[~decided]
            text = unit.text.encode("utf-8")
            candidates = candidates[~view.heads_contain(candidates, text, title_only)]   # nothing decompressed
            for n, d in enumerate(candidates):
                if n % 256 == 255:
                    self.check_time()
                if not (text in view.title_bytes(int(d)) if title_only else view.holds(int(d), unit.text, text)):
                    mask[d] = False
        if scope is None:
            unit.mask = mask
        return mask

    def text_mask(self, text: str, field: str | None, scope: np.ndarray | None = None) -> np.ndarray:
        """:meth:`unit_mask` of one of a unit's texts (kept: readings of typos ask again)."""
        if scope is not None:
            return self.unit_mask(Unit(text, field), scope)
        unit = self._texts.get((text, field))
        if unit is None:
            unit = self._texts[(text, field)] = Unit(text, field)
        return self.unit_mask(unit)

    # ------------------------------------------------------------ typos
    def typed_mask(self) -> np.ndarray:
        """Articles holding every probable typo as typed (what the literal text finds)."""
        mask = np.ones(self.view.n, dtype=bool)
        for units in (alt for g in self.groups for alt in g):
            for u in units:
                if u.homophones:
                    mask &= self.text_mask(u.text, u.field)
        return mask

    def read_typos(self, found: np.ndarray) -> dict[Clause, str]:
        """Each typo'd clause as probably meant: every typo read as the text typed or the
        homophone most of the ``found`` articles hold. The whole query so read is ranked
        a little below the query as typed (see :meth:`scores`)."""
        out = {}
        for c, fixes in self.typos.items():
            chosen = [max((f.text, *f.homophones),
                          key=lambda h: int(np.count_nonzero(found & self.text_mask(h, c.field))))
                      for f in fixes]
            out[c] = apply(self._compact[c], [Fix(f.start, f.end, f.text, (h,)) for f, h in zip(fixes, chosen)])
        self.full_fixed = "".join(out.get(c, self._compact[c]) for c in self._positive)
        self._fixed = out
        self._phrase_list = None     # its clauses as read change
        return out

    # ------------------------------------------------------------ scoring
    def scores(self, docs: np.ndarray) -> np.ndarray:
        """Scores of ``docs`` (see :class:`scoring.ScoreParts`)."""
        return self.score_parts(docs).total(len(docs))

    def score_parts(self, docs: np.ndarray) -> ScoreParts:
        """The parts of the scores of ``docs``: BM25F of each word, and for a relaxed query
        the share of its words each article holds; for a query of plain words, whether the
        title holds all of it and how often each multi-word clause occurs contiguously."""
        view = self.view
        n_live = max(view.doc_count, 1)
        coverage = self._coverage
        units = list(dict.fromkeys(coverage[1] if coverage else [u for g in self.groups for alt in g for u in alt]))
        words = {}
        norms = LengthNorms(view, docs)
        for u in units:
            # a word or any of its synonyms (or, a little lower, its homophones): the best counts
            each = ([unit_scores(view, t, u.field, u.phrase, n_live, docs, norms) for t in (u.text, *u.synonyms)]
                    + [HOMOPHONE_WEIGHT * unit_scores(view, t, u.field, u.phrase, n_live, docs, norms)
                       for t in u.homophones])
            key = ("title:" if u.field == "title" else "") + (f'"{u.text}"' if u.phrase else u.text)
            words[key] = words.get(key, 0) + np.maximum.reduce(each)
        parts = ScoreParts(words)
        if coverage:
            parts.coverage = coverage[0][docs] / max(1, len(coverage[1]))
        if self._boost_full and len(docs):
            # The query as typed, and as probably meant (typos replaced), weighted HOMOPHONE_WEIGHT.
            readings = [(self.full, 1.0)] + ([(self.full_fixed, HOMOPHONE_WEIGHT)]
                                             if self.full_fixed and self.full_fixed != self.full else [])
            phrases = self._phrases()
            s = parts.total(len(docs))
            titles = [None if len(docs) <= scoring.TITLE_READ_ALL else self._title_candidates(f, docs)
                      for f, _ in readings]
            clauses = [self._candidates("text_c", phrase_bigrams(p)) for p, _, _, _ in phrases]
            in_title, counts = whole_query(view, [f for f, _ in readings], titles, [p for p, _, _, _ in phrases],
                                           clauses, docs, s, self.check_time)
            parts.title = np.maximum.reduce([w * (t >= 1) for t, (_, w) in zip(in_title, readings)])
            parts.equal_title = np.maximum.reduce([w * (t == 2) for t, (_, w) in zip(in_title, readings)])
            if phrases:
                best: dict[int, np.ndarray] = {}    # per clause: the better of its readings
                for (_, k, w, clause), c, m in zip(phrases, counts, clauses):
                    # df: the articles whose grams can hold the clause, whatever the filters (an
                    # upper bound, as a word's df counts every article, not the matches).
                    df = max(1, int(np.count_nonzero(m & view.live)))
                    score = w * (k - 1) ** scoring.PHRASE_POWER * saturation(c, norms["body"], idf(n_live, df))
                    best[clause] = np.maximum(best[clause], score) if clause in best else score
                parts.phrase = sum(best.values())
        return parts

    def _phrases(self) -> list[tuple[str, int, float, int]]:
        """(text, words, weight, clause number) of each clause of two or more words, as typed
        and, weighted HOMOPHONE_WEIGHT, as probably meant. Segmented once per reading of the
        typos (explaining scores again reuses it)."""
        if self._phrase_list is None:
            out = {}
            for n, c in enumerate(self._plain):
                for text, weight in ((self._compact[c], 1.0), (self._fixed.get(c), HOMOPHONE_WEIGHT)):
                    if text and text not in out:
                        k = len(set(self.analysis.query_terms(text)))
                        if k >= 2:
                            out[text] = (text, k, weight, n)
            self._phrase_list = list(out.values())
        return self._phrase_list


@dataclass(eq=False)
class Unit:
    """A word or phrase that must occur (normalised text)."""
    text: str
    field: str | None = None
    phrase: bool = False
    synonyms: tuple[str, ...] = ()
    homophones: tuple[str, ...] = ()     # what a probable typo may have meant (ranked lower)
    mask: np.ndarray | None = dc_field(default=None, repr=False)     # exact matches
    grams: np.ndarray | None = dc_field(default=None, repr=False)    # candidates by grams

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.text, *self.synonyms, *self.homophones)

