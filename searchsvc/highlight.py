"""Safe HTML with ``<mark>``: highlighted titles and best-window snippets.

Matches are found in the *normalised* text (the same text the index matched
against) and mapped back to the original through the normaliser's offset map,
so traditional script, full-width letters and case all highlight correctly
without segmenting anything per request. Everything outside the marks is
HTML-escaped. Work per text is bounded: at most MAX_MARKS marks, and a snippet
reads a window of the body, however long the article.
"""

from __future__ import annotations

import bisect
import re
from html import escape as _escape
from operator import itemgetter

SNIPPET_CHARS = 140           # target window, within the 120-160 the UI wants
_SENTENCE_END = "。！？；!?;\n"
_ELLIPSIS = "…"
MAX_MARKS = 500                 # marks per text: an article page for "的" marks the first 500
SNIPPET_SCAN_CHARS = 4_000      # a snippet looks at this much text from its first match on
HIGHLIGHT_PART_CHARS = 20_000   # text normalised at a time while marking a whole article
_END = itemgetter(1)


def find_spans(norm: str, needles, limit: int = MAX_MARKS) -> list[tuple[int, int]]:
    """Merged (start, end) spans of the occurrences of the needles in ``norm``, the
    first ``limit`` of each (work bounded whatever the text's length).

    Overlapping and touching spans merge, so a phrase matched word by word
    becomes one mark.
    """
    spans = []
    append = spans.append
    for needle in needles:
        if not needle:
            continue
        size = len(needle)
        start = norm.find(needle)
        found = 0
        while start != -1 and found < limit:
            append((start, start + size))
            found += 1
            start = norm.find(needle, start + 1)
    spans.sort()
    merged = []
    first = end = -1
    for s, e in spans:
        if s <= end:            # overlaps or touches the span being built
            if e > end:
                end = e
        else:
            if end >= 0:
                merged.append((first, end))
            first, end = s, e
    if end >= 0:
        merged.append((first, end))
    return merged[:limit]


def _to_original(spans, offsets):
    """Normalised spans as spans of the original text. Separate spans of the normal form may
    fall in one original character ("㈱" is "(株)"): those overlap there and are merged, or
    the character would be shown twice."""
    if offsets is None:
        return spans
    out: list[tuple[int, int]] = []
    for s, e in spans:
        s, e = offsets[s], offsets[e - 1] + 1
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def render(text: str, spans, start: int = 0, end: int | None = None) -> str:
    """HTML of ``text[start:end]`` with spans (original offsets) in <mark>."""
    end = len(text) if end is None else end
    start = max(start, 0)       # (a negative start would wrap the window checked below)
    window = text[start:end]
    # Almost no article holds "&", "<" or ">": then nothing is escaped (a call per piece
    # was half of the time a snippet took).
    esc = _escape if "&" in window or "<" in window or ">" in window else None
    out, pos = [], start
    # Span starts and ends never decrease (find_spans merges; offset maps are monotone): skip
    # those ending before the window by bisect, and stop at the first starting after it.
    for s, e in spans[bisect.bisect_right(spans, start, key=_END):]:
        if s >= end:
            break
        if s < start:
            s = start
        if e > end:
            e = end
        if s >= e:                  # (an empty window)
            continue
        if esc is None:
            out += (text[pos:s], "<mark>", text[s:e], "</mark>")
        else:
            out += (esc(text[pos:s], quote=False), "<mark>", esc(text[s:e], quote=False), "</mark>")
        pos = e
    out.append(text[pos:end] if esc is None else esc(text[pos:end], quote=False))
    return "".join(out)


def highlight(text: str, needles, normalizer, norm: str | None = None) -> str:
    """``text`` as HTML with its first MAX_MARKS matches of the needles (normalised)
    marked. Normalised a part at a time, up to the part holding the last mark: an
    article page for "的" reads the start of a 5 MB article, not all of it. ``norm``:
    the text's stored normal form, when the caller has it (a title); used for a text of
    one part (HIGHLIGHT_PART_CHARS at most)."""
    if len(text) <= HIGHLIGHT_PART_CHARS:     # (a title, most bodies: one part)
        part, offsets = normalizer.with_offsets(text, norm)
        return render(text, _to_original(find_spans(part, needles), offsets))
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text) and len(spans) < MAX_MARKS:
        # Parts end at a line break, where normalisation never looks across.
        end = text.find("\n", start + HIGHLIGHT_PART_CHARS) + 1 or len(text)
        part, offsets = normalizer.with_offsets(text[start:end])
        found = _to_original(find_spans(part, needles, MAX_MARKS - len(spans)), offsets)
        spans += [(s + start, e + start) for s, e in found]
        start = end
    return render(text, spans)


def snippet(body: str, needles, normalizer, width: int = SNIPPET_CHARS, near: int = 0,
            norm_body: str | None = None) -> str:
    """The ~``width``-character window with the most matches, cut at sentence
    punctuation where possible, ``…`` where text was left out.

    Only ``body[near - width : near + SNIPPET_SCAN_CHARS]`` is read (``near``: where the
    caller found the first match of a long body), so a 5 MB article costs what a short
    one does. ``norm_body``: the body normalised character for character (its offsets
    the identity), when the caller has it: nothing is normalised again."""
    if not body:
        return ""
    lo = max(0, near - width)
    region = body[lo:near + SNIPPET_SCAN_CHARS]
    if norm_body is not None and len(norm_body) == len(body):
        norm, offsets = norm_body[lo:near + SNIPPET_SCAN_CHARS], None
    else:
        norm, offsets = normalizer.with_offsets(region)
    spans = _to_original(find_spans(norm, needles), offsets)
    if lo:
        spans = [(s + lo, e + lo) for s, e in spans]
    start = _best_window(spans, width) if spans else lo
    start, end = _cut(body, start, width)
    html = render(body, spans, start, end).replace("\n", " ")
    return (_ELLIPSIS if start > 0 else "") + html + (_ELLIPSIS if end < len(body) else "")


def _best_window(spans, width) -> int:
    """Start offset of the window holding the most marks (then most marked text)."""
    best_i, best_n, best_covered = 0, 0, 0
    j, covered, n = 0, 0, len(spans)
    for i, (s, e) in enumerate(spans):
        if j <= i:                       # window restarts at span i
            j, covered = i + 1, e - s
        limit = s + width
        while j < n:
            sj, ej = spans[j]
            if ej > limit:
                break
            covered += ej - sj
            j += 1
        if j - i > best_n or (j - i == best_n and covered > best_covered):
            best_i, best_n, best_covered = i, j - i, covered
        covered -= e - s
    return max(0, spans[best_i][0] - width // 5)   # a little context before the first mark


def _cut(text: str, start: int, width: int) -> tuple[int, int]:
    """Move start back to a sentence start (if close) and end to a sentence end."""
    if start > 0:
        k = _last_stop(text, max(0, start - width // 4), start)
        if k != -1:
            start = k + 1
        while start < len(text) and text[start].isspace():
            start += 1
    end = min(len(text), start + width)
    if end < len(text):
        k = _last_stop(text, start + width * 6 // 7, end)
        if k != -1:
            end = k + 1
    return start, end


_LAST_STOP = re.compile("(?s:.*)[" + re.escape(_SENTENCE_END) + "]")    # greedy: backs off from the end


def _last_stop(text: str, lo: int, hi: int) -> int:
    """The last index in ``lo:hi`` of sentence punctuation, or -1 (a window of a few dozen
    characters, looked at from its end by ``re``: a Python loop took 4x as long)."""
    m = _LAST_STOP.match(text, lo, min(hi, len(text)))
    return m.end() - 1 if m else -1
