"""Safe HTML with ``<mark>``: highlighted titles and best-window snippets.

Matches are found in the *normalised* text (the same text the index matched
against) and mapped back to the original through the offset map recorded at
index time, so traditional script, full-width letters and case all highlight
correctly without segmenting anything per request. Everything outside the
marks is HTML-escaped.
"""

from __future__ import annotations

from html import escape

SNIPPET_CHARS = 140           # target window, within the 120-160 the UI wants
_SENTENCE_END = "。！？；!?;\n"
_ELLIPSIS = "…"


def find_spans(norm: str, needles) -> list[tuple[int, int]]:
    """Merged (start, end) spans of every occurrence of every needle in ``norm``.

    Overlapping and touching spans merge, so a phrase matched word by word
    becomes one mark.
    """
    spans = []
    for needle in needles:
        if not needle:
            continue
        start = norm.find(needle)
        while start != -1:
            spans.append((start, start + len(needle)))
            start = norm.find(needle, start + 1)
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _to_original(spans, offsets):
    if offsets is None:
        return spans
    return [(offsets[s], offsets[e - 1] + 1) for s, e in spans]


def render(text: str, spans, start: int = 0, end: int | None = None) -> str:
    """HTML of ``text[start:end]`` with spans (original offsets) in <mark>."""
    end = len(text) if end is None else end
    out, pos = [], start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        out.append(escape(text[pos:s], quote=False))
        out.append("<mark>" + escape(text[s:e], quote=False) + "</mark>")
        pos = e
    out.append(escape(text[pos:end], quote=False))
    return "".join(out)


def highlight(title: str, needles, normalizer, offsets=None) -> str:
    spans = _to_original(find_spans(normalizer(title), needles), offsets)
    return render(title, spans)


def snippet(body: str, needles, normalizer, offsets=None, width: int = SNIPPET_CHARS) -> str:
    """The ~``width``-character window with the most matches, cut at sentence
    punctuation where possible, ``…`` where text was left out."""
    spans = _to_original(find_spans(normalizer(body), needles), offsets)
    if not body:
        return ""
    if spans:
        start = _best_window(spans, width)
    else:
        start = 0
    start, end = _cut(body, start, width)
    html = render(body, spans, start, end).replace("\n", " ")
    return (_ELLIPSIS if start > 0 else "") + html + (_ELLIPSIS if end < len(body) else "")


def _best_window(spans, width) -> int:
    """Start offset of the window holding the most marks (then most marked text)."""
    best_i, best = 0, (0, 0)
    j, covered = 0, 0
    for i, (s, e) in enumerate(spans):
        if j <= i:                       # window restarts at span i
            j, covered = i + 1, e - s
        while j < len(spans) and spans[j][1] <= s + width:
            covered += spans[j][1] - spans[j][0]
            j += 1
        if (j - i, covered) > best:
            best_i, best = i, (j - i, covered)
        covered -= e - s
    return max(0, spans[best_i][0] - width // 5)   # a little context before the first mark


def _cut(text: str, start: int, width: int) -> tuple[int, int]:
    """Move start back to a sentence start (if close) and end to a sentence end."""
    if start > 0:
        lo = max(0, start - width // 4)
        k = max(text.rfind(p, lo, start) for p in _SENTENCE_END)
        if k != -1:
            start = k + 1
        while start < len(text) and text[start].isspace():
            start += 1
    end = min(len(text), start + width)
    if end < len(text):
        lo = start + width * 6 // 7
        k = max(text.rfind(p, lo, end) for p in _SENTENCE_END)
        if k != -1:
            end = k + 1
    return start, end
