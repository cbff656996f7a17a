"""As-you-type completions: popular queries, frequent words, article titles.

Typed Chinese, full pinyin (``dangjian``) and pinyin initials (``djw``) all
complete; lookups are prefix searches over sorted keys built with the
:class:`~searchsvc.lexicon.Lexicon`, so a keystroke costs well under a millisecond.
"""

from __future__ import annotations

from functools import lru_cache

from . import pinyin
from .lexicon import Lexicon


@lru_cache(maxsize=4096)
def _query_keys(text: str) -> tuple[str, ...]:
    """A popular query's keys, computed once (the same few hundred come on every keystroke)."""
    return (text, *pinyin.keys(text), *pinyin.keys(text, initials=True))


def suggest(q: str, limit: int, lexicon: Lexicon, popular: list[tuple[str, int]], normalize) -> list[dict]:
    norm = normalize(q).strip().lower()
    if not norm:
        return []
    key = "".join(norm.split()) if pinyin.looks_like_pinyin(norm) else norm
    found: dict[str, str] = {}

    def add(text: str, kind: str) -> None:
        if len(found) < limit and text not in found:
            found[text] = kind

    for text, _count in popular:
        if any(k.startswith(key) for k in _query_keys(normalize(text).lower())):
            add(text, "query")
    for entry in lexicon.terms.lookup(key, limit):
        add(entry.text, "term")
    for entry in lexicon.titles.lookup(key, limit):
        add(entry.text, "title")
    if any(pinyin.is_han(c) for c in norm):
        for entry in lexicon.titles_containing(norm, limit):
            add(entry.text, "title")
    return [{"text": t, "kind": k} for t, k in found.items()]
