"""Did-you-mean: corrections worth offering for a query that found little.

Three kinds of slip are common in a Chinese search box: a homophone picked
from the pinyin input method's list (残急人 for 残疾人), spaces typed between
characters, and pinyin typed without switching the input method. Candidates
are checked against the index by the caller; only one that finds much more
is offered (never applied).
"""

from __future__ import annotations

from . import pinyin
from .lexicon import Lexicon

MAX_WINDOW = 4
DOMINANCE = 10      # the homophone must be this many times more frequent


def candidates(norm: str, lexicon: Lexicon) -> list[str]:
    """Possible corrections of a normalised query, best guess first."""
    out = []
    compact = "".join(norm.split())
    if pinyin.looks_like_pinyin(norm):
        best = lexicon.homophone_of_key(compact.lower())
        if best:
            out.append(best)
    fixed = _homophones(compact, lexicon)
    if fixed != compact:
        out.append(fixed)
    if compact != norm and any(pinyin.is_han(c) for c in compact):
        out.append(compact)
    return [c for c in dict.fromkeys(out) if c != norm]


def _homophones(text: str, lexicon: Lexicon) -> str:
    """Replace runs of Han characters that are rare spellings of a frequent word."""
    out, i = [], 0
    while i < len(text):
        for size in range(MAX_WINDOW, 1, -1):
            piece = text[i:i + size]
            if len(piece) < size or not all(pinyin.is_han(c) for c in piece):
                continue
            known = lexicon.df.get(piece, 0)
            best = lexicon.homophone(piece)
            if best and best[1] >= DOMINANCE * (known + 1):
                out.append(best[0])
                i += size
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
