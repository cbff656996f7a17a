"""Chinese text analysis: normalisation, jieba word tokens and character n-grams.

Reads like Whoosh's own ``analysis`` module: a tokenizer yields reusable
``Token`` objects and filters transform the stream, so chains compose with ``|``::

    words = JiebaTokenizer(segmenter) | SearchSubwordFilter(segmenter) | WordCharFilter()
    chars = CharNgramTokenizer(normalizer)

Every tokenizer normalises its input with the same :class:`Normalizer` (NFKC,
lowercase, traditional -> simplified) that queries go through. Tokens carry no
positions or offsets: the index stores term frequencies only, and highlighting
maps matches back through the normaliser's offsets (:class:`OffsetMap`).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from whoosh.analysis import Filter, Token, Tokenizer

log = logging.getLogger(__name__)

# Bump when tokens change in a way that needs a rebuild (stored in the index meta).
ANALYSIS_VERSION = 2   # 2: whitespace bigrams in the char grams
MEMO_QUERY_CHARS = 64   # texts up to this long (queries) are segmented once (Analysis.query_terms,
                        # Segmenter.tokenize);
MEMO_QUERIES = 2048     # ...the last this many kept (words: up to ~5 KB each, ~10 MB a process)
MEMO_TOKENS = 512       # ...and their tokens, for a query's typo search (up to ~10 KB each, ~5 MB)


class Normalizer:
    """NFKC, lowercase and character-level traditional->simplified conversion:
    ``t2s_per_char(unicodedata.normalize("NFKC", text).lower())``, the text grep is run on.

    Traditional -> simplified is per character, never per phrase: a context-dependent
    converter could turn the same characters into different text inside a query and
    inside an article, and a quoted phrase would then miss text that grep finds.

    Most text normalises character by character, and then one ``str.translate`` table
    does all three steps and yields the offset map highlighting needs. Text holding a
    character whose normal form depends on its neighbours (combining marks, characters
    that compose with the one before, a capital sigma, whose lowercase depends on
    whether a word ends there) takes the exact whole-string path instead.

    Its tables take ~0.8 s to compute; with a ``cache_dir`` they are kept there for the next process.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.t2s, table, contextual = _normal_forms(Path(cache_dir) if cache_dir else None)
        self.table = table
        self._contextual_cps = contextual
        self._contextual = CharSet(contextual)
        self._expanding = CharSet(cp for cp, m in table.items() if len(m) != 1)
        # Where a segment of text that normalises on its own starts: any non-contextual character.
        self._segment_starts = re.compile("[^" + self._contextual.pattern.pattern[1:])
        self._mapped = CharSet(table)
        self._by_char = {chr(cp): m for cp, m in table.items()}

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the normal forms (Unicode's and OpenCC's versions decide them). An index
        records it: its character grams and stored normal forms were made with them, and
        queries normalised otherwise would not find what grep finds."""
        forms = [unicodedata.unidata_version, sorted(self.table.items()), sorted(self.t2s.items()),
                 sorted(self._contextual_cps)]
        return hashlib.sha256(json.dumps(forms, ensure_ascii=False).encode("utf-8")).hexdigest()

    def __call__(self, text: str) -> str:
        astral = has_astral(text)      # (once for both character sets)
        if self._contextual.search(text, astral):
            return unicodedata.normalize("NFKC", text).lower().translate(self.t2s)
        return self._translate(text, astral)

    def _translate(self, text: str, astral: bool | None = None) -> str:
        """``text.translate(self.table)``, 2.5x faster on Chinese text: ``str.translate``
        looks every character up in the table, the regex only the ~10 % it changes
        (full-width punctuation, traditional characters)."""
        return self._mapped.sub(self._replacement, text, astral)

    def _replacement(self, m: re.Match) -> str:
        return self._by_char[m.group()]

    def with_offsets(self, text: str, norm: str | None = None) -> tuple[str, "OffsetMap | None"]:
        """(normalised text, offsets): ``offsets[i]`` is the original index of ``norm[i]``.

        ``None`` stands for the identity map, the common case, when every
        character normalises to exactly one character. ``norm``: the text's normal
        form (``self(text)``) when the caller has it stored, used as given unless its length
        does not fit the map (it is trusted as the index trusts its stored forms: tables that
        changed since the index was built would need a rebuild). Text holding contextual
        characters is always normalised whole.
        """
        astral = has_astral(text)      # (once for the three character sets)
        if self._contextual.search(text, astral):
            return self._with_offsets_in_context(text)
        edits, delta = [], 0
        for m in self._expanding.finditer(text, astral):
            n = len(self.table[ord(m.group())])
            edits.append((m.start(), m.start() + delta, n, 1))
            delta += n - 1
        if norm is None or len(norm) != len(text) + delta:      # (a stored form must fit the map)
            norm = self._translate(text, astral)
        return norm, (OffsetMap(edits) if edits else None)

    def _with_offsets_in_context(self, text: str) -> tuple[str, "OffsetMap | None"]:
        """The exact normal form, mapped segment by segment: a segment is a character that
        normalises alone followed by the contextual ones after it (NFKC never reaches across
        a segment's start), and each maps to the start of its segment."""
        norm = self(text)
        starts = [0] + [m.start() for m in self._segment_starts.finditer(text) if m.start()]
        edits, pos = [], 0
        for a, b in zip(starts, starts[1:] + [len(text)]):
            n = len(unicodedata.normalize("NFKC", text[a:b]).lower())
            if n != 1 or b - a != 1:
                edits.append((a, pos, n, b - a))
            pos += n
        if pos != len(norm):     # cannot happen by the segmentation above; never mis-highlight
            return norm, OffsetMap([(0, 0, len(norm), len(text))])
        return norm, (OffsetMap(edits) if edits else None)


def _normal_forms(cache_dir: Path | None) -> tuple[dict[int, str], dict[int, str], set[int]]:
    """The :class:`Normalizer`'s tables: traditional -> simplified per character, each
    character's normal form where it differs, and the contextual characters. Computing
    them takes ~0.8 s (every assigned code point); a file in ``cache_dir`` named by what they
    depend on (this module, Unicode's and OpenCC's versions) keeps them for the next process."""
    import opencc  # the reference converter (BYVoid/OpenCC), C++ core

    path = None
    if cache_dir is not None:
        try:
            key = hashlib.sha256(Path(__file__).read_bytes())
            key.update(f"{unicodedata.unidata_version} {getattr(opencc, '__version__', '')}".encode())
            path = cache_dir / f"normal-forms-{key.hexdigest()[:16]}.json"
            data = json.loads(path.read_text("utf-8"))
            return ({int(cp): m for cp, m in data["t2s"].items()}, {int(cp): m for cp, m in data["table"].items()},
                    set(data["contextual"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass     # none yet, or unreadable: computed again below
    t2s, table, contextual = _computed_normal_forms(opencc)
    if path is not None:
        with contextlib.suppress(OSError):      # (a read-only or full cache: computed again next time)
            write_whole(path, json.dumps({"t2s": t2s, "table": table, "contextual": sorted(contextual)}).encode())
    return t2s, table, contextual


def _computed_normal_forms(opencc) -> tuple[dict[int, str], dict[int, str], set[int]]:
    """:func:`_normal_forms` from OpenCC and ``unicodedata``, for every assigned code point."""
    # One character per line: OpenCC's phrase table never sees two characters together.
    han = [chr(cp) for r in _HAN_RANGES for cp in range(*r)]
    converted = opencc.OpenCC("t2s").convert("\n".join(han)).split("\n")
    if len(converted) != len(han):  # pragma: no cover - depends on the OpenCC build
        raise RuntimeError("OpenCC changed the number of lines while converting characters")
    t2s = {ord(src): dst for src, dst in zip(han, converted) if dst != src}
    table, contextual = {}, set()
    assigned = [chr(cp) for cp in range(0x110000)
                if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"]
    # Characters that interact with the one before them: combining marks, and the
    # second of a canonical composition pair (Hangul jamo included).
    joining = _composable_seconds() | {ord(c) for c in assigned if unicodedata.combining(c)}
    for c in assigned:
        nfkc = unicodedata.normalize("NFKC", c)
        m = nfkc.lower().translate(t2s)
        if m != c:
            table[ord(c)] = m
        nfkd = unicodedata.normalize("NFKD", c)
        if ord(c) in joining or "\u03a3" in nfkc or (nfkd != c and any(ord(x) in joining for x in nfkd)):
            contextual.add(ord(c))
    return t2s, table, contextual


class CharSet:
    """A set of characters to look for in text, fast: ``re`` matches a class of BMP
    characters through a bitmap (~7 ns a character) but walks a class holding astral
    ones range by range (~300 ns), so those are looked for only in text that has any."""

    def __init__(self, cps):
        cps = sorted(cps)
        self.pattern = _char_class(cps)                       # all of them (text with astral characters)
        self._bmp = _char_class(cp for cp in cps if cp < 0x10000)
        self._has_astral = any(cp >= 0x10000 for cp in cps)

    def _for(self, text: str, astral: bool | None) -> re.Pattern:
        if not self._has_astral:
            return self._bmp
        if astral is None:
            astral = has_astral(text)
        return self.pattern if astral else self._bmp

    # ``astral``: :func:`has_astral` of the text, when the caller asks several sets about it
    def search(self, text: str, astral: bool | None = None):
        return self._for(text, astral).search(text)

    def finditer(self, text: str, astral: bool | None = None):
        return self._for(text, astral).finditer(text)

    def sub(self, replacement, text: str, astral: bool | None = None) -> str:
        return self._for(text, astral).sub(replacement, text)


def has_astral(text: str) -> bool:
    """Whether ``text`` holds a character above U+FFFF (UTF-16 takes 4 bytes for one).
    (The str's storage width would answer in O(1), but ``sys.getsizeof`` also counts a
    cached UTF-8 copy, which orjson and others leave on a string: not a sound test.)"""
    return not text.isascii() and len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def _char_class(cps) -> re.Pattern:
    return re.compile("[" + "".join(re.escape(chr(cp)) for cp in cps) + "]")


def _composable_seconds() -> set[int]:
    """Characters that canonically compose with the character before them (the second of
    a canonical decomposition pair, and Hangul medial and final jamo)."""
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x30000):       # no canonical decomposition lies above the SIP
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            parts = d.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    return seconds


_HAN_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2A6E0))


class OffsetMap:
    """Normalised index -> original index, kept as the few places where normalisation is
    not one character for one (``(original start, normalised start, normalised length,
    original length)``): a 5 MB article with ellipses stores a short list, not a number
    per character."""

    __slots__ = ("edits", "_starts")

    def __init__(self, edits):
        self.edits = [tuple(e) for e in edits]
        self._starts = [e[1] for e in self.edits]

    def __getitem__(self, i: int) -> int:
        k = bisect.bisect_right(self._starts, i) - 1
        if k < 0:
            return i
        orig, start, length, orig_length = self.edits[k]
        return orig if i < start + length else orig + orig_length + (i - start - length)

    @classmethod
    def stored(cls, value) -> "OffsetMap | list[int] | None":
        """From what the index stores: an edit list (this version), a full list of
        indexes (indexes built before it; indexable just the same) or None."""
        if value and isinstance(value, dict):
            return cls(value["edits"])
        return value

    def to_stored(self) -> dict:
        return {"edits": [list(e) for e in self.edits]}




class Segmenter:
    """One jieba tokenizer per process, with a user dictionary and a private cache.

    jieba keeps a global default tokenizer; we build our own so the dictionary
    cache lives in a writable per-user directory and the user dictionary is
    explicit configuration rather than process-wide state. ``compact`` keeps the
    dictionary as a trie (:mod:`.jieba_adapter`: the same tokens, ~3.5 MB instead of
    ~53, articles segmented ~1.15x slower): what serving uses; ``searchsvc index`` keeps jieba's dict.
    """

    def __init__(self, userdict: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 compact: bool = False):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.userdict = Path(userdict) if userdict else None
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.compact = compact
        self._jieba = jieba.Tokenizer()
        self._jieba.tmp_dir = str(self.cache_dir)
        self._lock = threading.Lock()
        self._ready = False
        self._short_tokens = functools.lru_cache(maxsize=MEMO_TOKENS)(self._tokens)

    def initialize(self) -> "Segmenter":
        """Load the dictionary now (gunicorn's master calls this before forking)."""
        with self._lock:
            if not self._ready:
                if self.compact:
                    from .jieba_adapter import load_or_build
                    self._jieba = load_or_build(self.cache_dir, self.userdict, self._load_plain)
                else:
                    self._load_plain()
                self._ready = True
        return self

    def _load_plain(self):
        self._jieba.initialize()
        if self.userdict:
            self._jieba.load_userdict(str(self.userdict))
        return self._jieba

    @property
    def freq(self) -> Mapping[str, int]:
        """jieba's dictionary: word or word prefix -> frequency (0 for a prefix)."""
        self.initialize()
        return self._jieba.FREQ

    def tokenize(self, text: str):
        """(word, start, end) in jieba's accurate mode with HMM for unknown words. The
        tokens of the last MEMO_TOKENS short texts are kept: a query's words and its typo
        search (on the same normalised text) ask for the same tokens."""
        self.initialize()
        if len(text) <= MEMO_QUERY_CHARS:
            return self._short_tokens(text)
        return self._jieba.tokenize(text, mode="default", HMM=True)

    def _tokens(self, text: str) -> tuple[tuple[str, int, int], ...]:
        return tuple(self._jieba.tokenize(text, mode="default", HMM=True))

    def cut(self, text: str):
        """The words of :meth:`tokenize`, without their offsets."""
        self.initialize()
        return self._jieba.cut(text, HMM=True)

    def userdict_digest(self) -> str | None:
        """sha256 of the user dictionary file, recorded in the index to detect changes."""
        if not self.userdict:
            return None
        return hashlib.sha256(self.userdict.read_bytes()).hexdigest()


def default_cache_dir() -> Path:
    """``~/.cache/searchsvc`` (Config.from_env honours ``XDG_CACHE_HOME``)."""
    return Path.home() / ".cache" / "searchsvc"


def write_whole(path: Path, data: bytes) -> None:
    """Write a file of the cache directory whole: a temporary file beside it, renamed over it,
    so a process reading it at the same time sees the old file or the new, never part of one.
    OSError (a read-only or full cache) once the temporary file is gone."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# A character for which str.isalnum() holds (\w is isalnum() or "_"; a test pins it): one
# regex search per token instead of a Python loop over its characters.
_ALNUM = re.compile(r"[^\W_]")


def is_word(text: str) -> bool:
    """A token worth indexing: it has a letter or a digit (drops punctuation, spaces)."""
    return _ALNUM.search(text) is not None


class JiebaTokenizer(Tokenizer):
    """jieba words of the normalised text, whitespace and punctuation tokens
    included (``WordCharFilter`` drops them)."""

    def __init__(self, segmenter: Segmenter, normalizer: Normalizer):
        self.segmenter = segmenter
        self.normalizer = normalizer

    def __eq__(self, other):
        return self.__class__ is other.__class__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", normalized=False, **kwargs):
        """``normalized=True``: ``value`` already went through the normalizer.
        (Whoosh's tokenizer arguments are accepted; positions and offsets are not recorded.)"""
        norm = value if normalized else self.normalizer(value)
        t = Token(removestops=removestops, mode=mode, **kwargs)
        for word, _start, _end in self.segmenter.tokenize(norm):
            t.text = word
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = word
            yield t

    def texts(self, norm: str):
        """The tokens' texts of already normalised ``norm`` (see :func:`token_texts`)."""
        return self.segmenter.cut(norm)


class WordCharFilter(Filter):
    """Drops tokens without a letter or digit."""

    def __call__(self, tokens):
        search = _ALNUM.search
        return (t for t in tokens if search(t.text))

    def texts(self, words):
        search = _ALNUM.search
        return (w for w in words if search(w))


class SearchSubwordFilter(Filter):
    """After each long word, also emits its dictionary 2- and 3-grams (jieba's search mode).

    jieba's ``cut_for_search`` does the same; here each sub-word follows its
    parent, so ``人民`` finds ``中华人民共和国`` by its words (query words are not split).
    """

    def __init__(self, segmenter: Segmenter):
        self.segmenter = segmenter

    def __eq__(self, other):
        return self.__class__ is other.__class__

    def __call__(self, tokens):
        freq = self.segmenter.freq
        for t in tokens:
            yield t
            if len(t.text) > 2:
                # (the token is reused: its text stays the last sub-word until the tokenizer sets the next)
                for t.text in _subwords(t.text, freq):
                    yield t

    def texts(self, words):
        freq = self.segmenter.freq
        for word in words:
            yield word
            if len(word) > 2:
                yield from _subwords(word, freq)


def _subwords(word: str, freq: Mapping[str, int]):
    """The dictionary 2- and 3-grams of a word longer than 2 characters."""
    n = len(word)
    for size in (2, 3):
        if n <= size:
            break
        for i in range(n - size + 1):
            sub = word[i:i + size]
            if freq.get(sub):
                yield sub


def token_texts(chain, norm: str):
    """``t.text for t in chain(norm, normalized=True)`` without Whoosh's Token objects:
    each piece's ``texts`` method over plain strings, one after the other. Indexing
    takes this path: the Token plumbing was ~7 % of the word chain's time, a quarter of
    what the chain adds to jieba's own cut."""
    first, *rest = chain.items
    texts = first.texts(norm)
    for piece in rest:
        texts = piece.texts(texts)
    return texts


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

    def gram_keys(self, norm: str) -> tuple[np.ndarray, np.ndarray]:
        """The grams of text that is already normalised and their counts, as arrays (see
        :func:`gram_keys`; ``gram_texts`` gives them as text: the same counts as
        ``Counter(char_grams(norm))``, which a test pins)."""
        return gram_keys(norm, self.unigrams)


def char_grams(norm: str, unigrams: bool = True):
    """Unigrams and bigrams of already-normalised text, in text order.

    A run of whitespace counts as one space in bigrams ("的\n是" -> 的, "的 ", " 是", 是)
    and is no unigram: a quoted phrase with a space then has rare grams to look up,
    not just its characters (``-"的 是"`` would otherwise read every text)."""
    prev = ""
    for ch in norm:
        if ch.isspace():
            if prev and prev != " ":
                yield prev + " "
            prev = " "
            continue
        if unigrams:
            yield ch
        if prev:
            yield prev + ch
        prev = ch
    

_WHITESPACE = np.array([cp for cp in range(0x3000 + 1) if chr(cp).isspace()], dtype=np.uint32)
# Whether a code point is whitespace, as a table (10x faster than np.isin): every one past
# U+3000 maps to its last entry, False.
_IS_SPACE = np.zeros(0x3002, dtype=bool)
_IS_SPACE[_WHITESPACE] = True
SPACE = 0x20


# A gram as one number whose order is its UTF-8 bytes' order (UTF-8 keeps code point order
# and no character's bytes begin another's): first << 22 | (second + 1), 0 for a unigram.
GRAM_SHIFT = 22
_SECOND = (1 << GRAM_SHIFT) - 1


def gram_keys(norm: str, unigrams: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The distinct grams of ``char_grams(norm, unigrams)`` as keys (uint64, ascending;
    ``gram_texts`` gives them back) and their counts (uint32)."""
    cps, space = _code_points(norm)
    parts = []
    if unigrams:
        parts.append(cps[~space].astype(np.uint64) << GRAM_SHIFT)
    symbols = _symbols(cps, space)
    if len(symbols) >= 2:
        parts.append((symbols[:-1].astype(np.uint64) << GRAM_SHIFT) | (symbols[1:] + 1))
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint32)
    keys, counts = np.unique(np.concatenate(parts) if len(parts) > 1 else parts[0], return_counts=True)
    return keys, counts.astype(np.uint32)


def gram_texts(keys: np.ndarray) -> list[str]:
    """The grams of ``gram_keys``' keys."""
    return [chr(a) + chr(b - 1) if b else chr(a)
            for a, b in zip((keys >> GRAM_SHIFT).tolist(), (keys & _SECOND).tolist())]


def gram_terms(keys: np.ndarray) -> list[bytes]:
    """The grams of ``gram_keys``' keys as index terms (UTF-8)."""
    return [gram.encode("utf-8") for gram in gram_texts(keys)]


def bigram_codes(norm: str) -> np.ndarray:
    """The bigrams of ``char_grams(norm)`` in text order, each as ``bigram_code``: the
    i-th is at gram position i (what the sidecar's positions count)."""
    symbols = _symbols(*_code_points(norm))
    if len(symbols) < 2:
        return np.zeros(0, np.uint64)
    return (symbols[:-1].astype(np.uint64) << 21) | symbols[1:]


def bigram_code(gram: str) -> int:
    """A two-character gram as one number (``first << 21 | second``)."""
    return (ord(gram[0]) << 21) | ord(gram[1])


def _code_points(norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The text's code points, and which of them are whitespace."""
    cps = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32)
    return cps, _IS_SPACE[np.minimum(cps, 0x3001)]


def _symbols(cps: np.ndarray, space: np.ndarray) -> np.ndarray:
    """The code points bigrams are made of: whitespace runs collapse to one space, as in char_grams."""
    keep = ~space
    keep[1:] |= space[1:] & ~space[:-1]
    keep[:1] |= space[:1]
    return np.where(space, SPACE, cps)[keep]


def phrase_bigrams(norm: str) -> list[str]:
    """The distinct grams a phrase needs: its bigrams, or its unigrams when shorter."""
    grams = [g for g in char_grams(norm, unigrams=False)]
    if not grams:
        grams = [g for g in char_grams(norm, unigrams=True)]
    return list(dict.fromkeys(grams))


class Analysis:
    """The analysis chains of one process, built once and shared (:meth:`shared`)."""

    @classmethod
    @functools.lru_cache(maxsize=8)
    def shared(cls, userdict=None, cache_dir=None, *, compact: bool = False) -> "Analysis":
        """The process's chains for this dictionary: every command and engine of a
        process (tests run many) loads the tables and jieba's dictionary once.
        ``compact``: jieba's dictionary as a trie (:class:`Segmenter`), for serving."""
        return cls(userdict, cache_dir, compact=compact).initialize()

    def __init__(self, userdict=None, cache_dir=None, *, compact: bool = False):
        self.segmenter = Segmenter(userdict, cache_dir, compact)
        self.normalizer = Normalizer(self.segmenter.cache_dir)
        self.words = (JiebaTokenizer(self.segmenter, self.normalizer)
                      | SearchSubwordFilter(self.segmenter) | WordCharFilter())
        self.query_words = JiebaTokenizer(self.segmenter, self.normalizer) | WordCharFilter()
        self.chars = CharNgramTokenizer(self.normalizer)
        self._short_terms = functools.lru_cache(maxsize=MEMO_QUERIES)(self._segment_query)

    def initialize(self) -> "Analysis":
        self.segmenter.initialize()
        return self

    def index_meta(self) -> dict[str, str | None]:
        """What an index built by these chains records beside its terms, to tell when it no
        longer matches them (:meth:`IndexStore.rebuild_reasons`)."""
        return {"userdict_sha256": self.segmenter.userdict_digest(), "normal_forms_sha256": self.normalizer.digest}

    def query_terms(self, text: str) -> list[str]:
        """The words a query is made of, normalised and segmented like articles. A short
        text is segmented once per process: a query's plan, its phrase scoring and its
        typo search ask for the same words (the dictionary does not change once loaded)."""
        if len(text) <= MEMO_QUERY_CHARS:
            return list(self._short_terms(text))
        return list(self._segment_query(text))

    def _segment_query(self, text: str) -> tuple[str, ...]:
        return tuple(t.text for t in self.query_words(text))

