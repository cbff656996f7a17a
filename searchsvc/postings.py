"""Whoosh W3 posting lists read straight into numpy arrays.

Whoosh's matcher walks a posting list through Python calls per block (seek,
``read_int``, ``pickle.load`` of the block header) and, in ``skip_to``, per
posting. Search here wants arrays: all of a term's postings, or its frequencies
in a few candidate documents. A :class:`TermBlocks` reads the term's whole
extent in one ``pread``, parses the block headers with ``pickle`` in C, and
decodes only the blocks asked for, as Whoosh 2.7.4's ``W3PostingsWriter``
wrote them: a big-endian signed length (negative on the last block), the
pickled header ``(count, last id, max weight, compression, min length, max
length)``, then the (zlib-compressed) pickle of ``(delta-coded ids, weights,
values)``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC

from .whoosh_adapter import posting_extent

_LENGTH = struct.Struct("!i")
EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32))


class TermBlocks:
    """The block directory of one term in one segment: where each block's data
    lies and the last document in it, enough to decode only the blocks that can
    hold given documents."""

    __slots__ = ("file", "offset", "maxids", "starts", "ends", "compressed", "_data")

    def __init__(self, file, offset: int, length: int):
        data = file.get(offset, length)
        if data[:4] != WHOOSH3_HEADER_MAGIC:
            raise ValueError(f"not a W3 posting list at {offset}")
        stream, load, unpack = io.BytesIO(data), pickle.load, _LENGTH.unpack_from
        rows = []
        pos = 4
        while pos < length:
            (n,) = unpack(data, pos)
            stream.seek(pos + 4)
            _count, maxid, _maxweight, comp, _minlen, _maxlen = load(stream)
            pos += 4 + abs(n)
            rows.append((maxid, stream.tell(), pos, comp))
            if n < 0:
                break
        self.file, self.offset = file, offset
        table = np.array(rows, dtype=np.int64).reshape(-1, 4)    # one array: most terms have one block
        self.maxids, self.starts, self.ends, self.compressed = table.T
        self._data: bytes | None = data     # kept until the first decode, then dropped

    @property
    def nbytes(self) -> int:
        return 32 * len(self.maxids) + 300

    def decode(self, blocks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, weights) of the given blocks (ascending indexes; all by default)."""
        if blocks is None:
            blocks = np.arange(len(self.maxids))
        if not len(blocks):
            return EMPTY
        data, base = self._data, 0
        self._data = None
        if data is None:     # one read spanning the blocks asked for
            base = int(self.starts[blocks[0]])
            data = self.file.get(self.offset + base, int(self.ends[blocks[-1]]) - base)
        deltas, weights, firsts = [], [], []
        loads, decompress = pickle.loads, zlib.decompress
        for s, e, c in zip((self.starts[blocks] - base).tolist(), (self.ends[blocks] - base).tolist(),
                           self.compressed[blocks].tolist()):
            raw = data[s:e]
            ids, w, _values = loads(decompress(raw) if c else raw)
            firsts.append(len(deltas))
            deltas.extend(ids)
            if w is None:
                weights.extend([1.0] * len(ids))
            elif isinstance(w, float):
                weights.extend([w] * len(ids))
            else:
                weights.extend(w)
        # Each block's ids are delta-coded from 0: one cumulative sum over all of them
        # once every block's first id is made relative to the previous block's last.
        arr = np.array(deltas, dtype=np.int64)
        arr[firsts[1:]] -= self.maxids[blocks[:-1]]
        return np.cumsum(arr), np.array(weights, dtype=np.float32)

    def weights_of(self, docs: np.ndarray) -> np.ndarray:
        """The term's weight in each of ``docs`` (sorted segment docnums; 0 where absent)."""
        out = np.zeros(len(docs), dtype=np.float32)
        which = np.searchsorted(self.maxids, docs)       # block i holds ids up to maxids[i]
        which = np.unique(which[which < len(self.maxids)])
        ids, weights = self.decode(which)
        pos, hit = find_sorted(ids, docs)
        out[hit] = weights[pos[hit]]
        return out


def find_sorted(values: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``probes``, where it is in the sorted ``values`` and whether it is there
    (one binary search each): how every posting list is asked about documents."""
    if not len(values):
        return np.zeros(len(probes), dtype=np.intp), np.zeros(len(probes), dtype=bool)
    pos = values.searchsorted(probes)      # (the methods: np.searchsorted's wrapper costs as much)
    np.minimum(pos, len(values) - 1, out=pos)
    return pos, values[pos] == probes


def term_blocks(leaf, fieldname: str, tbytes: bytes) -> TermBlocks | None:
    """The term's posting list in one segment (deleted documents included), or None."""
    extent = posting_extent(leaf, fieldname, tbytes)
    return None if extent is None else TermBlocks(*extent)
