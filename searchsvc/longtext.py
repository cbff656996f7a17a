"""Where every pair of adjacent characters of one very long text occurs, so that a
substring test on it is an intersection of sorted position arrays, not a scan.

A 5 MB article is a candidate for most queries; ``bytes.find`` over it costs
1–2 ms per word that occurs late or not at all, on every query. Its pair table
is built once per index version and worker (~0.1 s for 5 MB; 4 bytes a
character plus 12 per distinct pair) and answers in microseconds. Positions
count code points of the normalised ``title\\nbody``; a needle is found where
each of its pairs occurs at the right distance from the first, which is
exactly where it occurs as a substring (whitespace included: nothing is
collapsed here, unlike the index's grams).
"""

from __future__ import annotations

import numpy as np

_SHIFT = 21     # bits of a code point (max 0x10FFFF)
_POS_BITS = 64 - 2 * _SHIFT


class PairPositions:
    """The pair table of one normalised text (UTF-8 ``text``)."""

    def __init__(self, text: bytes):
        cps = np.frombuffer(text.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
        self.size = len(cps)
        newline = np.flatnonzero(cps == 10)
        self.body_start = int(newline[0]) + 1 if len(newline) else self.size   # the title holds no newline
        self.last = int(cps[-1]) if len(cps) else -1
        keys = (cps[:-1].astype(np.uint64) << np.uint64(_SHIFT)) | cps[1:]
        n = len(keys)
        if n < 1 << _POS_BITS:     # (pair, position) in one uint64: one plain sort, 10x a stable argsort
            packed = np.sort((keys << np.uint64(_POS_BITS)) | np.arange(n, dtype=np.uint64))
            ranked = packed >> np.uint64(_POS_BITS)
            positions = packed & np.uint64((1 << _POS_BITS) - 1)
        else:
            positions = np.argsort(keys, kind="stable")     # positions of one pair stay ascending
            ranked = keys[positions]
        first = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]]) if n else np.zeros(0, np.int64)
        self.keys = ranked[first]
        self.starts = np.r_[first, n].astype(np.int32)
        self.positions = positions.astype(np.int32)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.starts.nbytes + self.positions.nbytes + 200

    def _pair(self, a: int, b: int) -> np.ndarray:
        key = np.uint64((a << _SHIFT) | b)
        i = int(np.searchsorted(self.keys, key))
        if i == len(self.keys) or int(self.keys[i]) != key:
            return self.positions[:0]
        return self.positions[self.starts[i]:self.starts[i + 1]]

    def starts_of(self, needle: str) -> np.ndarray:
        """Every position where ``needle`` starts (ascending; for one character, in no order)."""
        cps = [ord(c) for c in needle]
        if not cps:
            return np.arange(self.size + 1, dtype=np.int32)
        if len(cps) == 1:       # the pairs it begins, and the text's last character
            c = cps[0]
            lo, hi = np.searchsorted(self.keys, np.array([c << _SHIFT, (c + 1) << _SHIFT], dtype=np.uint64))
            found = self.positions[self.starts[lo]:self.starts[hi]]
            return np.r_[found, self.size - 1].astype(np.int32) if self.last == c else found
        pairs = [(self._pair(a, b), k) for k, (a, b) in enumerate(zip(cps, cps[1:]))]
        pairs.sort(key=lambda p: len(p[0]))
        rarest, k0 = pairs[0]
        found = rarest - k0
        for positions, k in pairs[1:]:
            if not len(found):
                break
            at = found + k
            i = np.minimum(np.searchsorted(positions, at), max(len(positions) - 1, 0))
            found = found[positions[i] == at] if len(positions) else found[:0]
        return found

    def count(self, needle: str, start: int = 0) -> int:
        """How often ``needle`` occurs at or after ``start``, without overlaps (as
        ``bytes.count`` counts: each match starts after the previous one ends)."""
        found = self.starts_of(needle)
        found = found[found >= start]      # ascending for needles of two or more characters
        n = len(needle)
        if n < 2 or not any(needle[i:] == needle[:n - i] for i in range(1, n)):
            return len(found)          # a needle that cannot overlap itself
        count, end = 0, -1
        for p in found.tolist():
            if p >= end:
                count, end = count + 1, p + n
        return count

    def first(self, needle: str, start: int = 0) -> int | None:
        """The first position at or after ``start`` where ``needle`` occurs, or None."""
        found = self.starts_of(needle)
        if len(needle) >= 2:    # ascending
            i = int(np.searchsorted(found, start))
            return int(found[i]) if i < len(found) else None
        found = found[found >= start]
        return int(found.min()) if len(found) else None

    def contains(self, needle: str, start: int = 0) -> bool:
        return self.first(needle, start) is not None
