"""jieba's prefix dictionary in ~3.5 MB instead of ~53: the one module that knows jieba's internals.

jieba keeps its dictionary as ``Tokenizer.FREQ``, a dict of ~500,000 str -> int: every word
with its frequency and every prefix of a word at 0 (``get_DAG`` walks prefixes until one
is missing). As Python objects that is ~53 MiB, which the serve master loads and every
worker forked from it counts in its RSS. :class:`FrozenFreq` holds the same mapping as a
marisa trie of the keys (~1.3 MB) and an array of their frequencies (~2 MB), written once
to the cache directory (:func:`load_or_build`). A trie lookup costs ~0.5 µs against a
dict's ~0.1, so :class:`CompactTokenizer` builds jieba's DAG with one prefix walk per
position instead of a lookup per prefix, and scores its route with the frequencies that
walk found: a query is segmented about as fast as by jieba's dict, an article ~1.15x slower,
into the same tokens (tests/test_jieba_adapter.py compares them with jieba's own). Serving
uses it (``serve``, its first build of a missing index and the API's writes included);
``searchsvc index``, where jieba's speed is the rebuild's, keeps jieba's dict.

What we rely on (jieba 0.42, pinned): ``Tokenizer.FREQ`` is prefix-closed and read with
``get``/``in``/``[]``; ``Tokenizer.total``; ``initialized``; ``get_DAG(sentence)`` returns
``{start: [end, ...]}`` of the dictionary words (frequency > 0) starting there, or
``[start]``, and the cut hands it straight to ``calc(sentence, DAG, route)``, whose sums we
repeat; ``add_word`` is the only writer (``load_userdict``, ``del_word``,
``suggest_freq(tune=True)`` go through it), and a word it is given at frequency 0 also goes
into the process-wide ``finalseg.Force_Split_Words`` (``add_force_split``), which we replay;
``load_userdict`` reads lines with ``re_userdict``.
"""

from __future__ import annotations

import array
import bisect
import hashlib
import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import jieba
import marisa_trie
from jieba import finalseg

from .analysis import write_whole

log = logging.getLogger(__name__)

FORMAT = 2
MAGIC = b"searchsvc-jieba-freq %d\n" % FORMAT

# marisa encodes keys as UTF-8 C strings: a lone surrogate cannot be encoded and a NUL
# ends the key early (1.4.1: ``get("a\x00b")`` answers for "a"). No dictionary word holds either.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class FrozenFreq(Mapping):
    """A read-only ``Tokenizer.FREQ``: word or word prefix -> frequency (0 for a prefix)."""

    __slots__ = ("_trie", "_freqs", "longest")

    def __init__(self, trie: marisa_trie.Trie, freqs: array.array, longest: int):
        if len(trie) != len(freqs):
            raise ValueError(f"{len(trie)} keys but {len(freqs)} frequencies")
        self._trie, self._freqs, self.longest = trie, freqs, longest

    @classmethod
    def from_dict(cls, freq: Mapping[str, int]) -> "FrozenFreq":
        keys = [k for k in freq if not _UNSTORABLE.search(k)]
        if len(keys) != len(freq):
            log.warning("%d dictionary words hold a NUL or a lone surrogate; left out",
                        len(freq) - len(keys))
        trie = marisa_trie.Trie(keys)
        values = [0] * len(trie)
        for k in keys:
            values[trie[k]] = freq[k]
        low, high = min(values, default=0), max(values, default=0)
        if low < -1 << 63 or high >= 1 << 63:       # (a user dictionary's number; jieba takes any)
            raise ValueError(f"a frequency out of 64 bits: {high if high >= 1 << 63 else low}")
        typecode = "I" if low >= 0 and high < 1 << 32 else "q"
        return cls(trie, array.array(typecode, values), max(map(len, keys), default=0))

    def _id(self, key) -> int | None:
        if not isinstance(key, str) or "\x00" in key:
            return None
        try:
            return self._trie.get(key)
        except UnicodeEncodeError:          # a lone surrogate: not a word
            return None

    def get(self, key, default=None):
        i = self._id(key)
        return default if i is None else self._freqs[i]

    def __getitem__(self, key) -> int:
        i = self._id(key)
        if i is None:
            raise KeyError(key)
        return self._freqs[i]

    def __contains__(self, key) -> bool:
        return self._id(key) is not None

    def __iter__(self):
        return iter(self._trie.keys())

    def __len__(self) -> int:
        return len(self._trie)

    def __setitem__(self, key, value):
        raise TypeError("the compact jieba dictionary is read-only")

    def dag(self, sentence: str) -> "DAG":
        """jieba's ``get_DAG``: for each position the last index of every dictionary word
        (frequency > 0) starting there, else the position itself; with their frequencies
        (1 for the position itself, as ``calc`` counts a character that is no word)."""
        prefixes, freqs, longest = self._trie.iter_prefixes_with_ids, self._freqs, self.longest
        dag = DAG()
        dag.freqs = found = {}
        # No word goes past a NUL or a lone surrogate. jieba's cut never hands its DAG one
        # (only runs of CJK, Latin, digits and +#&._%-); get_DAG itself takes any text.
        stops = [m.start() for m in _UNSTORABLE.finditer(sentence)]
        for k in range(len(sentence)):
            window = sentence[k:k + longest]
            if stops:
                j = bisect.bisect_left(stops, k)
                if j < len(stops):
                    window = window[:stops[j] - k]
            ends, counts, last = [], [], k - 1
            for word, i in prefixes(window):
                f = freqs[i]
                if f:
                    ends.append(last + len(word))
                    counts.append(f)
            if ends:
                dag[k] = ends
                found[k] = counts
            else:
                dag[k] = [k]
                found[k] = (1,)
        return dag


class DAG(dict):
    """jieba's DAG (position -> word ends) and, in ``freqs``, the words' frequencies."""

    __slots__ = ("freqs",)


class CompactTokenizer(jieba.Tokenizer):
    """A ``jieba.Tokenizer`` over a :class:`FrozenFreq`: the same tokens, a fixed dictionary."""

    def __init__(self, freq: FrozenFreq, total: int, force_split: tuple[str, ...] = ()):
        super().__init__()
        self.FREQ, self.total, self.initialized = freq, total, True
        for word in force_split:        # what jieba's add_word(word, 0) did when it was built
            finalseg.add_force_split(word)

    def initialize(self, dictionary=None):
        if dictionary:
            raise TypeError("the compact jieba dictionary cannot be swapped; build another")

    def set_dictionary(self, dictionary_path):
        self.initialize(dictionary_path)

    def get_DAG(self, sentence):
        return self.FREQ.dag(sentence)

    def calc(self, sentence, DAG, route):
        """jieba's ``calc`` (the most probable route) with the frequencies the DAG found:
        the same sums in the same order, without a trie lookup per word."""
        freqs = getattr(DAG, "freqs", None)
        if freqs is None:
            return super().calc(sentence, DAG, route)
        ln = math.log
        route[len(sentence)] = (0, 0)
        logtotal = ln(self.total)
        for idx in range(len(sentence) - 1, -1, -1):
            route[idx] = max((ln(f) - logtotal + route[x + 1][0], x) for x, f in zip(DAG[idx], freqs[idx]))

    def add_word(self, word, freq=None, tag=None):
        raise TypeError("the compact jieba dictionary is read-only: add words to the user "
                        "dictionary (--userdict) and restart")


def dictionary_digest(userdict: Path | None) -> str:
    """What a compact dictionary is built from: jieba's version and dictionary, the user
    dictionary, this module's format."""
    h = hashlib.sha256(f"{FORMAT} {jieba.__version__}\n".encode())
    with jieba.Tokenizer().get_dict_file() as f:
        h.update(f.read())
    h.update(b"\0" + (userdict.read_bytes() if userdict else b""))
    return h.hexdigest()


def force_split_words(userdict: Path | None) -> tuple[str, ...]:
    """The user dictionary's words of frequency 0 (jieba's way to always cut a word into
    characters), read as ``Tokenizer.load_userdict`` reads them."""
    if not userdict:
        return ()
    words = []
    with open(userdict, "rb") as f:
        for raw in f:
            line = raw.strip().decode("utf-8").lstrip("\ufeff")
            if line:
                word, freq, _tag = jieba.re_userdict.match(line).groups()
                if freq is not None and int(freq.strip()) == 0:
                    words.append(word)
    return tuple(words)


def encode(freq: FrozenFreq, total: int, force_split: tuple[str, ...]) -> bytes:
    """The cache file: a magic line, the sha256 of all that follows it, a JSON header, the
    trie's bytes and the frequencies'."""
    trie, freqs = freq._trie.tobytes(), freq._freqs.tobytes()
    head = {"total": total, "keys": len(freq), "longest": freq.longest, "typecode": freq._freqs.typecode,
            "byteorder": sys.byteorder, "trie_bytes": len(trie), "force_split": list(force_split)}
    rest = json.dumps(head, ensure_ascii=False).encode() + b"\n" + trie + freqs
    return MAGIC + hashlib.sha256(rest).hexdigest().encode() + b"\n" + rest


def decode(data: bytes) -> tuple[FrozenFreq, int, tuple[str, ...]]:
    """What :func:`encode` wrote; ValueError unless the bytes are whole, ours and of this machine."""
    if not data.startswith(MAGIC):
        raise ValueError("not a searchsvc jieba dictionary of this format")
    digest, _, rest = data[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(rest).hexdigest().encode() != digest:
        raise ValueError("checksum mismatch")
    head_line, _, body = rest.partition(b"\n")
    head = json.loads(head_line)
    if head["byteorder"] != sys.byteorder:
        raise ValueError(f"written on a {head['byteorder']}-endian machine")
    cut = head["trie_bytes"]
    trie = marisa_trie.Trie().frombytes(body[:cut])
    freq = FrozenFreq(trie, array.array(head["typecode"], body[cut:]), head["longest"])
    if len(trie) != head["keys"]:
        raise ValueError(f"{len(trie)} keys, header says {head['keys']}")
    return freq, head["total"], tuple(head["force_split"])


def load_or_build(cache_dir: Path, userdict: Path | None, load_plain) -> jieba.Tokenizer:
    """The compact tokenizer for this dictionary, from ``cache_dir`` or built from the plain
    tokenizer ``load_plain()`` returns (then written there for the next process). A cache
    file that is damaged or from another dictionary is rebuilt, never used; a dictionary
    that cannot be compacted (a frequency past 64 bits) is served plain."""
    path = Path(cache_dir) / f"jieba-{dictionary_digest(userdict)[:24]}.freq"
    try:
        return CompactTokenizer(*decode(path.read_bytes()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        log.warning("rebuilding the compact jieba dictionary %s: %s", path, e)
    plain = load_plain()
    try:
        freq = FrozenFreq.from_dict(plain.FREQ)
    except ValueError as e:
        log.warning("jieba's dictionary stays uncompacted: %s", e)
        return plain
    force_split = force_split_words(userdict)
    try:
        write_whole(path, encode(freq, plain.total, force_split))
    except OSError as e:                # a read-only or full cache: build it again next time
        log.warning("cannot keep the compact jieba dictionary in %s: %s", path.parent, e)
    return CompactTokenizer(freq, plain.total, force_split)
