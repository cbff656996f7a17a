"""jieba's prefix dictionary in ~6 MB instead of ~53: the one module that knows jieba's internals.

jieba keeps its dictionary as ``Tokenizer.FREQ``, a dict of ~500,000 str -> int: every word
with its frequency and every prefix of a word at 0 (``get_DAG`` walks prefixes until one
is missing). As Python objects that is ~53 MiB, which the serve master loads and every
worker forked from it counts in its RSS. :class:`FrozenFreq` holds the same mapping as a
marisa trie of the keys (~1.3 MB) and an array of their frequencies (~2 MB), written once
to the cache directory (:func:`load_or_build`). A trie lookup costs ~0.5 µs against a
dict's ~0.1, so :class:`CompactTokenizer` builds jieba's DAG with one prefix walk per
position instead of a lookup per prefix, and scores its route with the frequencies that
walk found: a query is segmented about as fast as by jieba's dict, an article ~1.15x slower,
into the same tokens (tests/test_jieba_adapter.py compares them with jieba's own). The
serving processes use it; bulk indexing, where jieba's speed is the rebuild's, keeps the dict.

What we rely on (jieba 0.42, pinned): ``Tokenizer.FREQ`` is prefix-closed and read with
``get``/``in``/``[]``; ``Tokenizer.total``; ``initialized``; ``get_DAG(sentence)`` returns
``{start: [end, ...]}`` of the dictionary words (frequency > 0) starting there, or
``[start]``, and the cut hands it straight to ``calc(sentence, DAG, route)``, whose sums we
repeat; ``add_word`` is the only writer (``load_userdict``, ``del_word``,
``suggest_freq(tune=True)`` go through it).
"""

from __future__ import annotations

import array
import bisect
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jieba
import marisa_trie

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"searchsvc-jieba-freq\n"

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
        typecode = "I" if max(values, default=0) < 1 << 32 and min(values, default=0) >= 0 else "q"
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
        raise TypeError("the compact jieba dictionary is read-only: add words to the user "
                        "dictionary (--userdict) and restart")

    def dag(self, sentence: str) -> "DAG":
        """jieba's ``get_DAG``: for each position the last index of every dictionary word
        (frequency > 0) starting there, else the position itself; with their frequencies
        (1 for the position itself, as ``calc`` counts a character that is no word)."""
        prefixes, freqs, longest = self._trie.iter_prefixes_with_ids, self._freqs, self.longest
        dag = DAG()
        dag.freqs = found = {}
        stops = [m.start() for m in _UNSTORABLE.finditer(sentence)]   # no word goes past one
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

    # ------------------------------------------------------------ the cache file
    def to_bytes(self, total: int) -> bytes:
        trie = self._trie.tobytes()
        head = {"format": FORMAT, "total": total, "keys": len(self._trie), "longest": self.longest,
                "typecode": self._freqs.typecode, "trie_bytes": len(trie),
                "sha256": hashlib.sha256(trie + self._freqs.tobytes()).hexdigest()}
        return MAGIC + json.dumps(head).encode() + b"\n" + trie + self._freqs.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple["FrozenFreq", int]:
        """The mapping and jieba's ``total``; ValueError unless the bytes are whole and ours."""
        if not data.startswith(MAGIC):
            raise ValueError("not a searchsvc jieba dictionary")
        end = data.index(b"\n", len(MAGIC))
        head = json.loads(data[len(MAGIC):end])
        if head.get("format") != FORMAT:
            raise ValueError(f"format {head.get('format')}, expected {FORMAT}")
        body = data[end + 1:]
        if hashlib.sha256(body).hexdigest() != head["sha256"]:
            raise ValueError("checksum mismatch")
        trie = marisa_trie.Trie().frombytes(body[:head["trie_bytes"]])
        freqs = array.array(head["typecode"], body[head["trie_bytes"]:])
        if len(trie) != head["keys"]:
            raise ValueError(f"{len(trie)} keys, header says {head['keys']}")
        return cls(trie, freqs, head["longest"]), head["total"]


class DAG(dict):
    """jieba's DAG (position -> word ends) and, in ``freqs``, the words' frequencies."""

    __slots__ = ("freqs",)


class CompactTokenizer(jieba.Tokenizer):
    """A ``jieba.Tokenizer`` over a :class:`FrozenFreq`: the same tokens, a fixed dictionary."""

    def __init__(self, freq: FrozenFreq, total: int):
        super().__init__()
        self.FREQ, self.total, self.initialized = freq, total, True

    def initialize(self, dictionary=None):
        if dictionary:
            raise TypeError("the compact jieba dictionary cannot be swapped; build another")

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
        self.FREQ[word] = freq          # raises: read-only


def dictionary_digest(userdict: Path | None) -> str:
    """What a compact dictionary is built from: jieba's version and dictionary, the user
    dictionary, this module's format."""
    h = hashlib.sha256(f"{FORMAT} {jieba.__version__}\n".encode())
    with jieba.Tokenizer().get_dict_file() as f:
        h.update(f.read())
    h.update(b"\0" + (userdict.read_bytes() if userdict else b""))
    return h.hexdigest()


def load_or_build(cache_dir: Path, userdict: Path | None, load_plain) -> CompactTokenizer:
    """The compact tokenizer for this dictionary, from ``cache_dir`` or built from the plain
    tokenizer ``load_plain()`` returns (then written there for the next process). A cache
    file that is damaged or from another dictionary is rebuilt, never used."""
    path = Path(cache_dir) / f"jieba-{dictionary_digest(userdict)[:24]}.freq"
    try:
        return CompactTokenizer(*FrozenFreq.from_bytes(path.read_bytes()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        log.warning("rebuilding the compact jieba dictionary %s: %s", path, e)
    plain = load_plain()
    freq = FrozenFreq.from_dict(plain.FREQ)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(freq.to_bytes(plain.total))
        os.replace(tmp, path)
    except OSError as e:                # a read-only or full cache: build it again next time
        log.warning("cannot keep the compact jieba dictionary in %s: %s", path.parent, e)
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return CompactTokenizer(freq, plain.total)
