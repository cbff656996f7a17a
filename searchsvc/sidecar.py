"""The derived posting store: beside each Whoosh segment, its postings as flat arrays.

Whoosh keeps a term's postings as blocks of 128, each a zlib-compressed pickle of
Python numbers, so reading a common gram at ×10 means thousands of ``pickle.loads``.
A sidecar file ``<segment>.ssp`` holds the same postings as arrays numpy maps
read-only without decoding: every gunicorn worker shares one copy in the page cache.

Whoosh stays the record (segments, TOC, term dictionary, stored fields, deletions,
locking); a sidecar is derived from a segment and never trusted blindly:

- it is written beside a segment when the segment is written (``Recorder``), or
  built from the segment's own posting lists when missing or stale (:func:`ensure`);
- its header names the segment, its document count and the format ``VERSION``, and
  every array carries a CRC-32 that :func:`ensure` and :meth:`Sidecar.check` verify;
- a term is found through Whoosh's own term dictionary (the posting list's offset in
  the segment's postings file), so a sidecar holds no second dictionary;
- a reader that finds none, or one that does not match, reads Whoosh's blocks instead.

Its name shares the segment's prefix, so Whoosh deletes it with the segment.

Layout: ``MAGIC``, a little-endian u32 header length, the JSON header, then each
array 64-byte aligned: ``offsets`` (each term's posting-list offset, ascending),
``starts`` (where each term's postings begin in ``ids``; one more than terms; both
uint32 unless a segment's postings need int64),
``ids`` (segment docnums, uint16 when the segment has at most 65,536 documents),
``tfs`` (uint8 frequencies; ``OVERFLOW`` marks one in ``over_at``/``over_tf``) and
``len:<field>`` (float32 field lengths as Whoosh decodes them).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import zlib
from array import array

import numpy as np
from whoosh.reading import SegmentReader

from .postings import TermBlocks
from .whoosh_adapter import field_lengths, posting_extents, reader_segment_path, segment_path

MAGIC = b"SSPOST\r\n"
VERSION = 1
SUFFIX = ".ssp"
OVERFLOW = 255          # a frequency that is not a whole number below 255 is kept aside
ALIGN = 64
LENGTH_FIELDS = ("title", "body", "title_c", "text_c")
_HEADER = struct.Struct("<I")

log = logging.getLogger("searchsvc")


class Recorder:
    """Collects a segment's posting lists as ``whoosh_adapter.PostingListWriter``
    writes them (``add``), then writes the sidecar (``write``)."""

    def __init__(self):
        self.offsets = array("q")
        self.starts = array("q", [0])
        self.ids = array("I")
        self.weights = array("f")

    def add(self, offset: int, postings: list) -> None:
        """One term's ``(docnum, weight, value)`` postings, at ``offset`` in the postings file."""
        self.offsets.append(offset)
        self.ids.extend([p[0] for p in postings])
        self.weights.extend([p[1] for p in postings])
        self.starts.append(len(self.ids))

    def write(self, storage, schema, segment) -> None:
        """Write the sidecar of ``segment``, just finished (before any TOC lists it)."""
        path = segment_path(storage, segment, SUFFIX)
        if path is None:    # a storage without files (RamStorage): readers use Whoosh's blocks
            return
        leaf = SegmentReader(storage, schema, segment)
        try:
            lengths = _lengths(leaf)
        finally:
            leaf.close()
        _write(path, segment.segment_id(), segment.doc_count_all(), np.frombuffer(self.offsets, np.int64),
               np.frombuffer(self.starts, np.int64), np.frombuffer(self.ids, np.uint32),
               np.frombuffer(self.weights, np.float32), lengths)


def _lengths(leaf) -> dict[str, np.ndarray]:
    count = leaf.doc_count_all()
    out = {}
    for f in LENGTH_FIELDS:
        if f in leaf.schema:
            lengths = field_lengths(leaf, f, count)
            out[f] = np.zeros(count, np.float32) if lengths is None else lengths
    return out


def build(leaf) -> bool:
    """Write the sidecar of a segment from its own posting lists (one that was written
    without, or whose sidecar is stale). False when its storage has no files."""
    path = reader_segment_path(leaf, SUFFIX)
    if path is None:
        return False
    offsets, ids, weights = [], [], []
    for field in leaf.schema.names():
        if not leaf.schema[field].indexed:
            continue
        for _tbytes, postfile, offset, length in posting_extents(leaf, field):
            i, w = TermBlocks(postfile, offset, length).decode()
            offsets.append(offset)
            ids.append(i)
            weights.append(w)
    starts = np.zeros(len(ids) + 1, np.int64)
    np.cumsum([len(i) for i in ids], out=starts[1:])
    _write(path, leaf.segment().segment_id(), leaf.doc_count_all(), np.array(offsets, np.int64), starts,
           _joined(ids, np.uint32), _joined(weights, np.float32), _lengths(leaf))
    return True


def _fit(largest: int):
    """The narrower of uint32 and int64 that holds ``largest`` (4 bytes a term saved)."""
    return np.uint32 if largest < 1 << 32 else np.int64


def _joined(arrays: list, dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


def _write(path: str, segment_id: str, doccount: int, offsets, starts, ids, weights, lengths) -> None:
    order = np.argsort(offsets, kind="stable")     # fields are written in order: already sorted
    if not np.array_equal(order, np.arange(len(order))):
        raise ValueError("posting lists out of order")
    whole = (weights == np.round(weights)) & (weights >= 0) & (weights < OVERFLOW)
    tfs = np.where(whole, weights, OVERFLOW).astype(np.uint8)
    over_at = np.flatnonzero(~whole).astype(np.int64)
    arrays = {
        "offsets": offsets.astype(_fit(offsets[-1] if len(offsets) else 0)),
        "starts": starts.astype(_fit(starts[-1])),
        "ids": ids.astype(np.uint16 if doccount <= 1 << 16 else np.uint32),
        "tfs": tfs,
        "over_at": over_at,
        "over_tf": weights[over_at].astype(np.float32),
        **{f"len:{f}": v.astype(np.float32) for f, v in lengths.items()},
    }
    table, at = {}, 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        arrays[name] = arr
        table[name] = {"dtype": arr.dtype.str, "count": len(arr), "offset": at, "crc32": zlib.crc32(arr)}
        at += -(-arr.nbytes // ALIGN) * ALIGN
    header = json.dumps({"version": VERSION, "segment": segment_id, "doccount": doccount,
                         "bytes": at, "arrays": table}).encode()
    start = -(-(len(MAGIC) + _HEADER.size + len(header)) // ALIGN) * ALIGN
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + _HEADER.pack(len(header)) + header)
        for name, arr in arrays.items():
            f.seek(start + table[name]["offset"])
            f.write(arr.tobytes())
        f.truncate(start + at)
        f.flush()
        os.fsync(f.fileno())     # a crash must not leave a right-sized file of zeros under the real name
    os.replace(tmp, path)


class Sidecar:
    """One segment's sidecar, mapped read-only."""

    def __init__(self, path: str, segment_id: str, doccount: int):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        head = self._map[:len(MAGIC) + _HEADER.size]
        if head[:len(MAGIC)] != MAGIC:
            raise ValueError("not a sidecar")
        (n,) = _HEADER.unpack_from(head, len(MAGIC))
        meta = json.loads(self._map[len(MAGIC) + _HEADER.size:len(MAGIC) + _HEADER.size + n])
        if meta["version"] != VERSION:
            raise ValueError(f"format {meta['version']}, not {VERSION}")
        if meta["segment"] != segment_id or meta["doccount"] != doccount:
            raise ValueError(f"made for {meta['segment']} ({meta['doccount']} documents)")
        start = -(-(len(MAGIC) + _HEADER.size + n) // ALIGN) * ALIGN
        if len(self._map) != start + meta["bytes"]:
            raise ValueError(f"{len(self._map)} bytes, not {start + meta['bytes']}")
        self.table = meta["arrays"]
        self.arrays = {name: np.frombuffer(self._map, np.dtype(t["dtype"]), t["count"], start + t["offset"])
                       for name, t in self.table.items()}
        self.offsets, self.starts = self.arrays["offsets"], self.arrays["starts"]
        self.ids, self.tfs = self.arrays["ids"], self.arrays["tfs"]
        self.over_at, self.over_tf = self.arrays["over_at"], self.arrays["over_tf"]

    def check(self) -> None:
        """Raise ValueError unless every array matches its CRC-32 (reads the whole file)."""
        for name, arr in self.arrays.items():
            if zlib.crc32(arr) != self.table[name]["crc32"]:
                raise ValueError(f"{name}: checksum mismatch")

    def lengths(self, field: str) -> np.ndarray | None:
        return self.arrays.get(f"len:{field}")

    def span(self, offset: int) -> tuple[int, int] | None:
        """Where the postings of the term whose Whoosh list is at ``offset`` lie, or None."""
        i = int(np.searchsorted(self.offsets, offset))
        if i == len(self.offsets) or self.offsets[i] != offset:
            return None
        return int(self.starts[i]), int(self.starts[i + 1])

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(segment docnums, frequencies as float32) of postings ``start:end``."""
        tfs = self.tfs[start:end].astype(np.float32)
        self._fix_overflow(tfs, start, end, np.arange(end - start))
        return self.ids[start:end], tfs

    def freqs_of(self, start: int, end: int, docs: np.ndarray) -> np.ndarray:
        """The term's frequency in each of ``docs`` (sorted segment docnums; 0 where absent),
        by binary search in the mapped ids: nothing else is read."""
        ids = self.ids[start:end]
        out = np.zeros(len(docs), dtype=np.float32)
        if not len(ids) or not len(docs):
            return out
        pos = np.minimum(np.searchsorted(ids, docs), len(ids) - 1)
        hit = ids[pos] == docs
        where = pos[hit]
        vals = self.tfs[start + where].astype(np.float32)
        self._fix_overflow(vals, start, end, where)
        out[hit] = vals
        return out

    def _fix_overflow(self, tfs: np.ndarray, start: int, end: int, where: np.ndarray) -> None:
        if not len(self.over_at):
            return
        lo, hi = np.searchsorted(self.over_at, [start, end])
        if lo == hi:
            return
        at = self.over_at[lo:hi] - start           # overflowing postings of this term
        k = np.searchsorted(where, at)              # ...among those asked for
        k_ok = k < len(where)
        k, at, vals = k[k_ok], at[k_ok], self.over_tf[lo:hi][k_ok]
        found = where[k] == at
        tfs[k[found]] = vals[found]

    def close(self) -> None:
        self.arrays = {}
        self.offsets = self.starts = self.ids = self.tfs = self.over_at = self.over_tf = None
        try:
            self._map.close()
        except BufferError:     # an array still refers to it: the map closes when that goes
            pass


class SideList:
    """One term's postings in one segment's sidecar, with the interface of
    ``postings.TermBlocks`` (what :class:`view.IndexView` reads either from)."""

    __slots__ = ("side", "start", "end")
    nbytes = 100

    def __init__(self, side: Sidecar, start: int, end: int):
        self.side, self.start, self.end = side, start, end

    def decode(self) -> tuple[np.ndarray, np.ndarray]:
        return self.side.postings(self.start, self.end)

    def weights_of(self, docs: np.ndarray) -> np.ndarray:
        return self.side.freqs_of(self.start, self.end, docs)


def open_for(leaf) -> Sidecar | None:
    """The valid-looking sidecar of a segment (header and size checked, not the CRCs), or
    None when it is missing or does not match (readers then use Whoosh's blocks)."""
    if not leaf.doc_count_all():    # an empty index's EmptyReader: nothing to read
        return None
    path = reader_segment_path(leaf, SUFFIX)
    if path is None or not os.path.exists(path):
        return None
    try:
        return Sidecar(path, leaf.segment().segment_id(), leaf.doc_count_all())
    except (OSError, ValueError, KeyError) as e:
        log.warning("sidecar %s not used (%s): reading Whoosh's posting blocks", path, e)
        return None


def ensure(leaves) -> int:
    """Check each segment's sidecar in full (CRCs) and build those missing, stale or
    damaged. Returns how many were built. A read-only index is left as it is."""
    built = 0
    for leaf in leaves:
        if not leaf.doc_count_all():
            continue
        side = open_for(leaf)
        try:
            if side is not None:
                side.check()
                continue
        except ValueError as e:
            log.warning("sidecar of %s damaged (%s): rebuilding it", leaf.segment().segment_id(), e)
        finally:
            if side is not None:
                side.close()
        try:
            built += build(leaf)
        except OSError as e:
            log.warning("no sidecar for %s (%s): reading Whoosh's posting blocks", leaf.segment().segment_id(), e)
    return built
