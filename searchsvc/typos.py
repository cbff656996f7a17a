"""Pinyin-typo tolerance: which stretches of a query are probably the wrong character
picked from the input method's list, and the words the index holds that sound the same.

A visitor typing pinyin gets 过际联播快讯 for 国际联播快讯: a stretch that occurs in few
articles (here none) where a word with the same toneless pinyin occurs in many. Only
stretches made of whole query tokens are looked at, one of them at least a single
character or a word jieba does not know (what a wrong character leaves behind):
a boundary between two known words (经济|实力) is never "corrected" into a word
across it. The caller searches the homophones beside the literal text
(:class:`~searchsvc.matching.Plan` ``homophones``) and decides whether it helped.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import pinyin
from .lexicon import Lexicon

MIN_WINDOW, MAX_WINDOW = 2, 4
DOMINANCE = 10          # a homophone must occur in this many times more articles than the stretch
MAX_HOMOPHONES = 5      # homophones searched per stretch, most frequent first


@dataclass(frozen=True)
class Fix:
    """Characters ``start:end`` of a clause's normalised text (``text``) and the
    homophones searched beside it, most frequent first."""
    start: int
    end: int
    text: str
    homophones: tuple[str, ...]
    evidence: float = 0.0     # how much more frequent the best homophone is than the stretch


def find(text: str, tokens: list[tuple[str, int, int]], lexicon: Lexicon, known, df) -> list[Fix]:
    """Probable typos in ``text`` (one normalised word of the query, no whitespace).

    ``tokens`` are its jieba tokens ``(word, start, end)``; ``known(word)`` says whether
    a token is a dictionary word; ``df(stretch)`` counts (at most) the articles holding
    a stretch. Overlapping stretches: the longest is kept.
    """
    # A word jieba does not know may hold the typo anywhere (演奖集): its characters count alone.
    tokens = [t for w, a, b in tokens
              for t in ([(w, a, b)] if len(w) == 1 or known(w) else [(w[k], a + k, a + k + 1) for k in range(len(w))])]
    # Each token's traits once, not once per window holding it (a query has ~30 windows); the
    # tokens cover the text without gaps, so a window's characters are its tokens'.
    han = [all(pinyin.is_han(c) for c in w) for w, _, _ in tokens]
    solid = [len(w) > 1 and known(w) for w, _, _ in tokens]     # a known word: nothing mistyped in it
    found: list[Fix] = []
    for i in range(len(tokens)):
        if not han[i]:
            continue
        for j in range(i + 1, min(len(tokens), i + MAX_WINDOW) + 1):     # tokens i..j-1
            if not han[j - 1]:
                break                             # every longer window holds it too
            start, end = tokens[i][1], tokens[j - 1][2]
            if end - start > MAX_WINDOW:
                break
            if end - start < MIN_WINDOW or all(solid[i:j]):
                continue
            fix = _homophones(text[start:end], start, end, lexicon, df)
            if fix:
                found.append(fix)
    # The longest stretches first (以旧换新 over 电视以 in 电视以酒换新), then the best evidenced.
    out: list[Fix] = []
    for fix in sorted(found, key=lambda f: (f.start - f.end, -f.evidence, f.start)):
        if all(fix.end <= o.start or fix.start >= o.end for o in out):
            out.append(fix)
    return sorted(out, key=lambda f: f.start)


def _homophones(piece: str, start: int, end: int, lexicon: Lexicon, df) -> Fix | None:
    found = lexicon.homophones_of(piece)
    if not found:
        return None
    typed = df(piece)
    floor = DOMINANCE * typed if typed else 1     # found nowhere: any word the vocabulary holds
    words = [w for w, n in found if n >= floor][:MAX_HOMOPHONES]
    return Fix(start, end, piece, tuple(words), found[0][1] / (typed + 1)) if words else None


def apply(text: str, fixes: list[Fix]) -> str:
    """``text`` with each fixed stretch replaced by its most frequent homophone."""
    out, pos = [], 0
    for f in fixes:
        out += [text[pos:f.start], f.homophones[0]]
        pos = f.end
    return "".join(out) + text[pos:]
