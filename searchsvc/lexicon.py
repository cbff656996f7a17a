"""The vocabulary of one index version: words with document frequencies, titles,
and their pinyin, for completion (:mod:`suggest`) and corrections (:mod:`spelling`).

Built from the term dictionaries and the normalised-text column, never from
stored articles: about 4 s on the shared corpus, so workers build it in the
background and keep using the previous one meanwhile (see ``Engine.lexicon``).
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import pinyin
from .whoosh_adapter import term_doc_frequencies

MIN_TERM_DF = 3        # a word must occur in this many articles to be suggested
HOMOPHONE_MIN_DF = 5   # ...and in this many to be offered as a correction
PINYIN_KEY_CHARS = 10  # pinyin keys cover a title's first characters


@dataclass(slots=True)
class Entry:
    text: str          # normalised
    kind: str          # "term" or "title"
    weight: float


class SortedKeys(Sequence):
    """Sorted keys as UTF-8 in one bytes object: ``bisect`` works on it as on a list, but
    300,000 keys take a few MB instead of ~20 MB of ``str`` objects (each worker's RSS).
    UTF-8 byte order is code point order, so the order is that of the ``str`` keys."""

    def __init__(self, keys: list[bytes]):
        self.blob = b"".join(keys)
        self.ends = array("I" if len(self.blob) < 1 << 32 else "q", itertools.accumulate(len(k) for k in keys))

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> bytes:
        return self.blob[self.ends[i - 1] if i else 0:self.ends[i]]


class PrefixIndex:
    """Entries under sorted keys (text, full pinyin, pinyin initials): prefix lookup, best weight first."""

    def __init__(self, entries: list[Entry], key_fn):
        # Parallel arrays, not (key, entry, factor) tuples: fewer short-lived objects to
        # fragment the heap that workers inherit.
        keys, idx, weights = [], array("i"), array("d")
        for i, e in enumerate(entries):
            for k, f in key_fn(e):
                keys.append(k.encode("utf-8"))
                idx.append(i)
                weights.append(e.weight * f)   # a rare reading must not outrank the usual spelling
        order = np.argsort(np.array(keys, dtype=object), kind="stable")
        # The entries as columns, not Entry objects (88 bytes each with a float weight,
        # against 24 here): an Entry is made for each of the few a lookup returns.
        self._texts = [e.text for e in entries]
        self._kinds = [e.kind for e in entries]     # (one str object each kind: the literals)
        self._weights = array("d", (e.weight for e in entries))
        self.keys = SortedKeys([keys[i] for i in order])
        self.idx = np.frombuffer(idx, dtype=np.int32)[order]
        self.weights = np.frombuffer(weights, dtype=np.float64)[order]

    def __len__(self) -> int:
        return len(self._texts)

    def entry(self, i: int) -> Entry:
        return Entry(self._texts[i], self._kinds[i], self._weights[i])

    @property
    def entries(self) -> list[Entry]:
        """Every entry, in the order given (made on each call)."""
        return [self.entry(i) for i in range(len(self))]

    def lookup(self, prefix: str, limit: int) -> list[Entry]:
        key = prefix.encode("utf-8")
        lo = bisect.bisect_left(self.keys, key)
        hi = bisect.bisect_left(self.keys, key + b"\xff", lo)     # 0xff never occurs in UTF-8
        if lo >= hi:
            return []
        idx, weights = self.idx[lo:hi], self.weights[lo:hi]
        want = min(len(idx), limit * 4)          # keys repeat per entry: dedupe below
        top = np.argpartition(-weights, want - 1)[:want] if len(idx) > want else np.arange(len(idx))
        top = top[np.argsort(-weights[top], kind="stable")]
        out = []
        for i in dict.fromkeys(int(idx[t]) for t in top):
            out.append(self.entry(i))
            if len(out) == limit:
                break
        return out


def _entry_keys(e: Entry) -> list[tuple[str, float]]:
    """(key, weight factor): the text, then the pinyin of its start (usual readings
    first), then initials. Nobody types the pinyin of a whole title; keys stay short."""
    out = [(e.text, 1.0)]
    head = e.text[:PINYIN_KEY_CHARS]
    for initials in (False, True):
        for n, k in enumerate(pinyin.keys(head, initials)):
            out.append((k, 1.0 if n == 0 else 1e-3))
    return out


class Lexicon:
    def __init__(self, view):
        self.df: dict[str, int] = {}
        for leaf, _ in view.leaves:
            for field in ("title", "body"):
                for tbytes, df in term_doc_frequencies(leaf, field):
                    word = tbytes.decode("utf-8")
                    self.df[word] = self.df.get(word, 0) + df
        terms = [Entry(w, "term", float(n)) for w, n in self.df.items()
                 if n >= MIN_TERM_DF and len(w) >= 2 and not w.isdigit()]
        self.terms = PrefixIndex(terms, _entry_keys)
        titles: dict[str, int] = {}
        for d in np.flatnonzero(view.live):
            title = view.title_bytes(int(d)).decode("utf-8")
            if title and (title not in titles or view.date[d] > view.date[titles[title]]):
                titles[title] = int(d)
        entries = [Entry(t, "title", float(view.date[d])) for t, d in titles.items()]
        self.titles = PrefixIndex(entries, _entry_keys)
        self._title_text = "\n".join(e.text for e in entries)
        self._title_starts = np.cumsum([0] + [len(e.text) + 1 for e in entries])[:-1]
        # pinyin key -> words (their frequencies are in ``df``)
        homophones: dict[str, list[str]] = {}
        self.by_usual_pinyin: dict[str, str] = {}
        for w, n in self.df.items():
            if n >= HOMOPHONE_MIN_DF and 2 <= len(w) <= 4 and all(pinyin.is_han(c) for c in w):
                spellings = pinyin.keys(w)
                for k in spellings:
                    homophones.setdefault(k, []).append(w)
                best = self.by_usual_pinyin.get(spellings[0])
                if best is None or n > self.df[best]:
                    self.by_usual_pinyin[spellings[0]] = w
        # Tuples: most keys have one word, and a list of one takes ~40 bytes more
        self.homophones: dict[str, tuple[str, ...]] = {k: tuple(ws) for k, ws in homophones.items()}

    def titles_containing(self, text: str, limit: int) -> list[Entry]:
        """Titles with ``text`` anywhere, newest first (Chinese is rarely typed from a title's start)."""
        found, pos = [], self._title_text.find(text)
        while pos != -1 and len(found) < limit * 20:
            found.append(self.titles.entry(int(np.searchsorted(self._title_starts, pos, "right")) - 1))
            pos = self._title_text.find(text, pos + 1)
        found.sort(key=lambda e: -e.weight)
        return list({e.text: e for e in found}.values())[:limit]

    def homophone_of_key(self, key: str) -> str | None:
        """The most frequent word usually spelled ``key`` in pinyin (pinyin typed as a query)."""
        return self.by_usual_pinyin.get(key)

    def homophones_of(self, text: str) -> list[tuple[str, int]]:
        """Words (under any of their readings) spelled like ``text`` read the usual way,
        other than ``text``, with their frequencies, most frequent first. A wrong character
        picked from the input method's list is mostly one offered for its usual reading."""
        found = {w: self.df[w] for w in self.homophones.get(pinyin.keys(text)[0], ()) if w != text}
        return sorted(found.items(), key=lambda wn: -wn[1])

    def homophone(self, text: str) -> tuple[str, int] | None:
        """The most frequent word spelled like ``text`` in pinyin, other than ``text``."""
        best = None
        for k in pinyin.keys(text):
            for w in self.homophones.get(k, ()):
                n = self.df[w]
                if w != text and (best is None or n > best[1]):
                    best = (w, n)
        return best
