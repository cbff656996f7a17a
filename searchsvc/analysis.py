"""Chinese text analysis: normalisation, jieba word tokens and character n-grams.

Reads like Whoosh's own ``analysis`` module: a tokenizer yields reusable
``Token`` objects and filters transform the stream, so chains compose with ``|``::

    words = JiebaTokenizer(segmenter) | SearchSubwordFilter(segmenter) | WordCharFilter()
    chars = CharNgramTokenizer(normalizer)

Every tokenizer normalises its input with the same :class:`Normalizer` (NFKC,
lowercase, traditional -> simplified) that queries go through, and reports
``startchar``/``endchar`` as offsets into the *original* text, so stored text
can be highlighted without segmenting it again.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import threading
import unicodedata
from pathlib import Path

import numpy as np
from whoosh.analysis import Filter, Token, Tokenizer

log = logging.getLogger(__name__)

# Bump when tokens change in a way that needs a rebuild (stored in the index meta).
ANALYSIS_VERSION = 1


class Normalizer:
    """NFKC, lowercase and character-level traditional->simplified conversion.

    Conversion is per character (a ``str.translate`` table), never per phrase:
    a context-dependent converter could turn the same characters into different
    text inside a query and inside an article, and a quoted phrase would then
    miss text that grep finds. Per-character conversion keeps "query is a
    substring of the article" true after normalisation.
    """

    def __init__(self):
        import opencc  # the reference converter (BYVoid/OpenCC), C++ core

        t2s = opencc.OpenCC("t2s")
        table = {}
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            m = unicodedata.normalize("NFKC", c).lower()
            if m != c:
                table[cp] = m
        # OpenCC on one character at a time uses its character table only.
        han = "".join(chr(cp) for r in _HAN_RANGES for cp in range(*r))
        converted = t2s.convert(han)
        if len(converted) == len(han):
            for src, dst in zip(han, converted):
                if src != dst:
                    table[ord(src)] = table.get(ord(dst), dst)
        else:  # pragma: no cover - depends on the OpenCC build
            for src in han:
                dst = t2s.convert(src)
                if dst != src:
                    table[ord(src)] = dst
        self.table = table
        self._expanding = re.compile(
            "[" + "".join(re.escape(chr(cp)) for cp, m in table.items() if len(m) != 1) + "]")

    def __call__(self, text: str) -> str:
        return text.translate(self.table)

    def with_offsets(self, text: str) -> tuple[str, "OffsetMap | None"]:
        """(normalised text, offsets): ``offsets[i]`` is the original index of ``norm[i]``.

        ``None`` stands for the identity map, the common case, when every
        character normalises to exactly one character.
        """
        norm = text.translate(self.table)
        edits, delta = [], 0
        for m in self._expanding.finditer(text):
            n = len(self.table[ord(m.group())])
            edits.append((m.start(), m.start() + delta, n))
            delta += n - 1
        return norm, (OffsetMap(edits) if edits else None)


class OffsetMap:
    """Normalised index -> original index, kept as the few characters whose normalisation
    is not exactly one character (``(original index, normalised start, length)``): a
    5 MB article with ellipses stores a short list, not a number per character."""

    __slots__ = ("edits", "_starts")

    def __init__(self, edits):
        self.edits = [tuple(e) for e in edits]
        self._starts = [e[1] for e in self.edits]

    def __getitem__(self, i: int) -> int:
        k = bisect.bisect_right(self._starts, i) - 1
        if k < 0:
            return i
        orig, start, length = self.edits[k]
        return orig if i < start + length else orig + 1 + (i - start - length)

    @classmethod
    def stored(cls, value) -> "OffsetMap | list[int] | None":
        """From what the index stores: an edit list (this version), a full list of
        indexes (indexes built before it; indexable just the same) or None."""
        if value and isinstance(value, dict):
            return cls(value["edits"])
        return value

    def to_stored(self) -> dict:
        return {"edits": [list(e) for e in self.edits]}


_HAN_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2A6E0))


class Segmenter:
    """One jieba tokenizer per process, with a user dictionary and a private cache.

    jieba keeps a global default tokenizer; we build our own so the dictionary
    cache lives in a writable per-user directory and the user dictionary is
    explicit configuration rather than process-wide state.
    """

    def __init__(self, userdict: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.userdict = Path(userdict) if userdict else None
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._jieba = jieba.Tokenizer()
        self._jieba.tmp_dir = str(self.cache_dir)
        self._lock = threading.Lock()
        self._ready = False

    def initialize(self) -> "Segmenter":
        """Load the dictionary now (gunicorn's master calls this before forking)."""
        with self._lock:
            if not self._ready:
                self._jieba.initialize()
                if self.userdict:
                    self._jieba.load_userdict(str(self.userdict))
                self._ready = True
        return self

    @property
    def freq(self) -> dict:
        self.initialize()
        return self._jieba.FREQ

    def tokenize(self, text: str):
        """(word, start, end) in jieba's accurate mode with HMM for unknown words."""
        self.initialize()
        return self._jieba.tokenize(text, mode="default", HMM=True)

    def userdict_digest(self) -> str | None:
        """sha256 of the user dictionary file, recorded in the index to detect changes."""
        if not self.userdict:
            return None
        return hashlib.sha256(self.userdict.read_bytes()).hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "searchsvc"


def is_word(text: str) -> bool:
    """A token worth indexing: it has a letter or a digit (drops punctuation, spaces)."""
    return any(ch.isalnum() for ch in text)


class JiebaTokenizer(Tokenizer):
    """jieba words of the normalised text, positions consecutive over all tokens.

    Offsets point into the original text. Whitespace and punctuation tokens are
    emitted too (``WordCharFilter`` drops them), so positions here count every
    jieba token; the filter renumbers.
    """

    def __init__(self, segmenter: Segmenter, normalizer: Normalizer):
        self.segmenter = segmenter
        self.normalizer = normalizer

    def __eq__(self, other):
        return self.__class__ is other.__class__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", normalized=False, **kwargs):
        """``normalized=True``: ``value`` already went through the normalizer
        (offsets are then into that text)."""
        norm, offsets = (value, None) if normalized else self.normalizer.with_offsets(value)
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, (word, start, end) in enumerate(self.segmenter.tokenize(norm), start_pos):
            t.text = word
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = word
            if positions:
                t.pos = pos
            if chars:
                t.startchar, t.endchar = _original_span(offsets, start, end, start_char)
            yield t


def _original_span(offsets, start, end, start_char=0):
    if offsets is None:
        return start_char + start, start_char + end
    return start_char + offsets[start], start_char + offsets[end - 1] + 1


class WordCharFilter(Filter):
    """Drops tokens without a letter or digit and renumbers positions consecutively."""

    def __call__(self, tokens):
        pos = None
        last_src = None
        for t in tokens:
            if not is_word(t.text):
                continue
            if t.positions:
                # Sub-words share their parent's position; keep them together.
                if t.pos != last_src:
                    last_src = t.pos
                    pos = 0 if pos is None else pos + 1
                t.pos = pos
            yield t


class SearchSubwordFilter(Filter):
    """After each long word, also emits its dictionary 2- and 3-grams (jieba's search mode).

    jieba's ``cut_for_search`` does the same, but as a flat list that breaks
    positions; here the sub-words share the parent word's position (like
    synonyms), so phrase positions stay consecutive while ``人民`` still finds
    ``中华人民共和国``.
    """

    def __init__(self, segmenter: Segmenter):
        self.segmenter = segmenter

    def __eq__(self, other):
        return self.__class__ is other.__class__

    def __call__(self, tokens):
        freq = self.segmenter.freq
        for t in tokens:
            yield t
            word = t.text
            n = len(word)
            if n <= 2 or t.mode == "query":
                continue
            text, start, end = word, getattr(t, "startchar", None), getattr(t, "endchar", None)
            exact = start is not None and end - start == n
            for size in (2, 3):
                if n <= size:
                    break
                for i in range(n - size + 1):
                    sub = text[i:i + size]
                    if freq.get(sub):
                        t.text = sub
                        if t.chars and exact:
                            t.startchar, t.endchar = start + i, start + i + size
                        yield t
            t.text = word
            if t.chars:
                t.startchar, t.endchar = start, end


class CharNgramTokenizer(Tokenizer):
    """Every character (unigram) and every pair of adjacent characters (bigram).

    Whitespace is skipped and breaks bigrams; punctuation is kept, because a
    quoted phrase must match exactly as grep would. Positions are not recorded
    by the index: phrase candidates are the articles holding all of a phrase's
    bigrams, then checked against the normalised text (see ``search``).
    """

    def __init__(self, normalizer: Normalizer, unigrams: bool = True):
        self.normalizer = normalizer
        self.unigrams = unigrams

    def __eq__(self, other):
        return self.__class__ is other.__class__ and self.unigrams == other.unigrams

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", **kwargs):
        norm = self.normalizer(value)
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, gram in enumerate(char_grams(norm, self.unigrams), start_pos):
            t.text = gram
            t.boost = 1.0
            t.stopped = False
            if positions:
                t.pos = pos
            yield t

    def grams(self, norm: str):
        """The grams of text that is already normalised."""
        return char_grams(norm, self.unigrams)

    def gram_counts(self, norm: str) -> list[tuple[str, int]]:
        """(gram, count) of :meth:`grams`, counted with numpy: the same counts as
        ``Counter(self.grams(norm))`` (a test pins it) at 1/8 of the time on long texts."""
        return count_char_grams(norm, self.unigrams)


def char_grams(norm: str, unigrams: bool = True):
    """Unigrams and bigrams of already-normalised text, in text order."""
    prev = ""
    for ch in norm:
        if ch.isspace():
            prev = ""
            continue
        if unigrams:
            yield ch
        if prev:
            yield prev + ch
        prev = ch


_WHITESPACE = np.array([cp for cp in range(0x3000 + 1) if chr(cp).isspace()], dtype=np.uint32)


def count_char_grams(norm: str, unigrams: bool = True) -> list[tuple[str, int]]:
    """(gram, count) of ``char_grams(norm, unigrams)``, vectorised over code points."""
    cps = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32)
    space = np.isin(cps, _WHITESPACE)
    out = []
    if unigrams:
        values, counts = np.unique(cps[~space], return_counts=True)
        out += zip(map(chr, values.tolist()), counts.tolist())
    if len(cps) > 1:
        pairs = (cps[:-1].astype(np.uint64) << 21) | cps[1:]
        values, counts = np.unique(pairs[~(space[:-1] | space[1:])], return_counts=True)
        out += ((chr(v >> 21) + chr(v & 0x1FFFFF), n) for v, n in zip(values.tolist(), counts.tolist()))
    return out


def phrase_bigrams(norm: str) -> list[str]:
    """The distinct grams a phrase needs: its bigrams, or its unigrams when shorter."""
    grams = [g for g in char_grams(norm, unigrams=False)]
    if not grams:
        grams = [g for g in char_grams(norm, unigrams=True)]
    return list(dict.fromkeys(grams))


class Analysis:
    """The analysis chains of one process, built once and shared."""

    def __init__(self, userdict=None, cache_dir=None):
        self.normalizer = Normalizer()
        self.segmenter = Segmenter(userdict, cache_dir)
        self.words = (JiebaTokenizer(self.segmenter, self.normalizer)
                      | SearchSubwordFilter(self.segmenter) | WordCharFilter())
        self.query_words = JiebaTokenizer(self.segmenter, self.normalizer) | WordCharFilter()
        self.chars = CharNgramTokenizer(self.normalizer)

    def initialize(self) -> "Analysis":
        self.segmenter.initialize()
        return self

    def query_terms(self, text: str) -> list[str]:
        """The words a query is made of, normalised and segmented like articles."""
        return [t.text for t in self.query_words(text, mode="query")]

