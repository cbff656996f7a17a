"""The derived posting store: beside each Whoosh segment, its postings as flat arrays.

Whoosh keeps a term's postings as blocks of 128, each a zlib-compressed pickle of
Python numbers, so reading a common gram at ×10 means thousands of ``pickle.loads``.
A sidecar file ``<segment>.ssp`` holds the same postings as arrays numpy maps
read-only without decoding: every gunicorn worker shares one copy in the page cache.

Whoosh stays the record (segments, TOC, term dictionary, stored fields, deletions,
locking); a sidecar is derived from a segment and never trusted blindly:

- it is written beside a segment when the segment is written (``Recorder``), or
  built from the segment's own posting lists when missing or stale (:func:`ensure`);
- its header names the segment, its document count and the format ``VERSION``, which
  readers check with the file's size; every array carries a CRC-32, checked by
  :func:`ensure` (``serve`` runs it before forking) and by a writer before it publishes;
- a term is found by a dictionary of its own (a CRC-32 of it, binary-searched within
  the bucket of its top bits, then the term's bytes compared), not through Whoosh's (a
  few reads and ~20 µs of Python per segment, and an archive of 10^6 articles has
  dozens of segments);
- a reader that finds none, or one that does not match, reads Whoosh's blocks instead.

Its name shares the segment's prefix, so Whoosh deletes it with the segment.

Layout: ``MAGIC``, a little-endian u32 header length, the JSON header (which names
the fields), then each array 64-byte aligned: ``starts`` (where each term's postings
begin in ``ids``, in the order of the terms' hashes, see below; one more than terms; uint32 unless a
segment's postings need int64),
``ids`` (segment docnums, uint16 when the segment has at most 65,536 documents),
``tfs`` (uint8 frequencies; ``OVERFLOW`` marks one in ``over_at``/``over_tf``) and
``len:<field>`` (float32 field lengths as Whoosh decodes them); the positions of the
common bigrams of ``text_c`` (those held by at least 1/``POSITION_SHARE`` of the
segment's documents): ``pos_term`` (their term numbers, ascending), ``pos_at`` (where
each one's positions begin in ``pos``) and ``pos`` (gram positions in the normalised
text, as ``analysis.bigram_codes`` counts them: by posting, then ascending; a posting has
as many as its frequency), so a phrase of common grams is confirmed by intersecting
arrays instead of reading thousands of texts; the dictionary:
``dict_hash`` (the sorted CRC-32s of each term's key: its field's number, one byte, and
its bytes; the terms are numbered in this order), ``terms`` (the keys) and ``term_at``
(where each begins).
"""

from __future__ import annotations

import bisect
import contextlib
import glob
import json
import logging
import mmap
import os
import struct
import zlib
from array import array

import numpy as np
from whoosh.reading import SegmentReader

from .analysis import bigram_code, bigram_codes
from .postings import TermBlocks, find_sorted
from .whoosh_adapter import Counted, field_lengths, posting_extents, reader_segment_path, segment_path

assert array("I").itemsize == 4, "the recorder reads its docnums back as uint32"
MAGIC = b"SSPOST\r\n"
VERSION = 3
POSITION_SHARE = 32     # a bigram held by 1/32 of a segment's documents keeps its positions (~3 % of the index)
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
        self.keys: list[bytes] = []
        self.fields: dict[str, int] = {}      # field -> its number in keys, in order of appearance
        self.sizes: list[int] = []            # postings per term
        self.ids = array("I")                 # every list's docnums and weights, one after the
        self.weights = array("f")             # other (8 bytes a posting: a rebuild's peak memory)

    def add(self, field: str, tbytes: bytes, postings) -> None:
        """One term's postings, ``(docnum, weight, value)`` or ``whoosh_adapter.Counted``
        (terms come in Whoosh's order)."""
        self.keys.append(self._prefix(field) + tbytes)
        self.sizes.append(len(postings))
        if isinstance(postings, Counted):
            self.ids.extend(postings.ids)
            self.weights.extend(postings.freqs)
        else:
            self.ids.extend(p[0] for p in postings)
            self.weights.extend(p[1] for p in postings)

    def add_arrays(self, field: str, arrays) -> None:
        """A field's posting lists at once (a ``whoosh_adapter.PostingArrays``)."""
        prefix = self._prefix(field)
        self.keys.extend(prefix + tbytes for tbytes in arrays.terms)
        self.sizes.extend(np.diff(arrays.bounds).tolist())
        self.ids.frombytes(arrays.ids.astype(np.uint32).tobytes())
        self.weights.frombytes(arrays.freqs.astype(np.float32).tobytes())

    def _prefix(self, field: str) -> bytes:
        """A term key's first byte: its field's number (in order of appearance)."""
        return bytes((self.fields.setdefault(field, len(self.fields)),))

    def write(self, storage, schema, segment) -> None:
        """Write the sidecar of ``segment``, just finished (before any TOC lists it)."""
        path = segment_path(storage, segment, SUFFIX)
        if path is None:    # a storage without a folder (RamStorage): readers use Whoosh's blocks
            return
        starts = np.zeros(len(self.sizes) + 1, np.int64)
        np.cumsum(np.asarray(self.sizes, np.int64), out=starts[1:])
        ids, weights = np.frombuffer(self.ids, np.uint32), np.frombuffer(self.weights, np.float32)
        leaf = SegmentReader(storage, schema, segment)
        try:
            _write_for(path, leaf, list(self.fields), self.keys, starts, ids, weights)
        finally:
            leaf.close()


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
    without, or whose sidecar is stale or damaged). False when its storage has no files."""
    path = reader_segment_path(leaf, SUFFIX)
    if path is None:
        return False
    keys, decoded, fields = [], [], {}
    for field in leaf.schema.names():
        if leaf.schema[field].indexed:
            for tbytes, postfile, offset, length in posting_extents(leaf, field):
                keys.append(bytes((fields.setdefault(field, len(fields)),)) + tbytes)
                decoded.append(TermBlocks(postfile, offset, length).decode())
    starts = np.zeros(len(decoded) + 1, np.int64)
    np.cumsum([len(i) for i, _ in decoded], out=starts[1:])
    _write_for(path, leaf, list(fields), keys, starts,
               _joined([i for i, _ in decoded], np.uint32), _joined([w for _, w in decoded], np.float32))
    return True


def _fit(largest: int):
    """The narrower of uint32 and int64 that holds ``largest`` (4 bytes a term saved)."""
    return np.uint32 if largest < 1 << 32 else np.int64


def _joined(arrays: list, dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


def _positions(leaf, fields: list[str], keys: list[bytes], starts, ids, weights) -> dict[str, np.ndarray] | None:
    """The ``pos_*`` arrays: where the segment's common ``text_c`` bigrams occur, found in
    its normalised texts and checked against their postings (any difference, and the
    segment gets no positions: its phrases are confirmed by reading, as before)."""
    count = leaf.doc_count_all()
    terms, codes = [], []
    if "text_c" in fields and leaf.has_column("norm"):
        number = fields.index("text_c")
        for t in np.flatnonzero(np.diff(starts) >= max(1, count // POSITION_SHARE)).tolist():
            if keys[t][0] == number:
                gram = keys[t][1:].decode("utf-8")
                if len(gram) == 2 and " " not in gram:     # phrases with whitespace are read, not positioned
                    terms.append(t)
                    codes.append(bigram_code(gram))
    if not terms:
        return None
    codes = np.array(codes, np.uint64)
    order = np.argsort(codes)
    known = codes[order]
    found, docs, where = [], [], []
    column = leaf.column_reader("norm")
    for d in range(count):
        pairs = bigram_codes(column[d].decode("utf-8"))
        k = np.minimum(known.searchsorted(pairs), len(known) - 1)
        at = np.flatnonzero(known[k] == pairs)
        found.append(order[k[at]].astype(np.int32))     # (int32: a rebuild's peak memory)
        where.append(at.astype(np.int32))
        docs.append(np.full(len(at), d, np.int32))
    term = np.concatenate(found)
    by_term = np.argsort(term, kind="stable")       # texts were read in docnum order, positions ascending
    term, doc, pos = term[by_term], np.concatenate(docs)[by_term], np.concatenate(where)[by_term]
    # Every (term, document) the texts give must be a posting with that frequency.
    expect = np.concatenate([j * count + ids[starts[t]:starts[t + 1]].astype(np.int64) for j, t in enumerate(terms)])
    expect_n = np.concatenate([weights[starts[t]:starts[t + 1]] for t in terms])
    got, got_n = np.unique(term.astype(np.int64) * count + doc, return_counts=True)
    if not (np.array_equal(got, expect) and np.array_equal(got_n, expect_n)):
        log.warning("segment %s: bigram positions differ from its postings; none kept",
                    leaf.segment().segment_id())
        return None
    pos_at = np.zeros(len(terms) + 1, np.int64)
    np.cumsum(np.bincount(term, minlength=len(terms)), out=pos_at[1:])
    return {"pos_term": np.array(terms, np.uint32), "pos_at": pos_at.astype(_fit(pos_at[-1])),
            "pos": pos.astype(np.uint16 if not len(pos) or pos.max() < 1 << 16 else np.uint32)}


def _by_hash(keys: list[bytes], starts, ids, weights):
    """The terms (``keys``) and their postings in the order of the keys' CRC-32s, the
    dictionary's (a hash found is the term's number: no table from one to the other), and
    the sorted hashes."""
    hashes = np.fromiter(map(zlib.crc32, keys), np.uint32, count=len(keys))
    order = np.argsort(hashes, kind="stable")
    lens = np.diff(starts)[order]
    new_starts = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(lens, out=new_starts[1:])
    total = int(new_starts[-1])
    index = np.int32 if total < 1 << 31 else np.int64      # (a rebuild's peak memory: 4 bytes an index, not 8)
    at = np.repeat((starts[:-1][order] - new_starts[:-1]).astype(index), lens)
    at += np.arange(total, dtype=index)
    return [keys[t] for t in order.tolist()], new_starts, ids[at], weights[at], hashes[order]


def _write_for(path: str, leaf, fields: list[str], keys: list[bytes], starts, ids, weights) -> None:
    """The sidecar of the segment ``leaf`` reads, from its postings (see :func:`_write`)."""
    _write(path, leaf.segment().segment_id(), leaf.doc_count_all(), fields, keys, starts, ids, weights,
           _lengths(leaf), lambda *postings: _positions(leaf, fields, *postings))


def _write(path: str, segment_id: str, doccount: int, fields: list[str], keys: list[bytes], starts, ids, weights,
           lengths, positions=None) -> None:
    """``keys``: each term as its field's number (in ``fields``) and its bytes, in the order
    of the postings (``starts``); ``positions``: called with the terms and postings in the
    dictionary's order, gives the ``pos_*`` arrays or None (none by default)."""
    keys, starts, ids, weights, hashes = _by_hash(keys, np.asarray(starts, np.int64), ids, weights)
    found = positions(keys, starts, ids, weights) if positions is not None else None
    if found is None:
        found = {"pos_term": np.zeros(0, np.uint32), "pos_at": np.zeros(1, np.uint32), "pos": np.zeros(0, np.uint16)}
    whole = (weights == np.round(weights)) & (weights >= 0) & (weights < OVERFLOW)
    tfs = np.where(whole, weights, OVERFLOW).astype(np.uint8)
    over_at = np.flatnonzero(~whole).astype(np.int64)
    term_at = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=term_at[1:])
    arrays = {
        "dict_hash": hashes,
        "terms": np.frombuffer(b"".join(keys), np.uint8),
        "term_at": term_at.astype(_fit(term_at[-1])),
        "starts": starts.astype(_fit(starts[-1])),
        "ids": ids.astype(np.uint16 if doccount <= 1 << 16 else np.uint32),
        "tfs": tfs,
        "over_at": over_at,
        "over_tf": weights[over_at].astype(np.float32),
        **{f"len:{f}": v.astype(np.float32) for f, v in lengths.items()},
        **found,
    }
    table, at = {}, 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        arrays[name] = arr
        table[name] = {"dtype": arr.dtype.str, "count": len(arr), "offset": at, "crc32": zlib.crc32(arr)}
        at += -(-arr.nbytes // ALIGN) * ALIGN
    header = json.dumps({"version": VERSION, "segment": segment_id, "doccount": doccount, "fields": fields,
                         "bytes": at, "arrays": table}).encode()
    start = -(-(len(MAGIC) + _HEADER.size + len(header)) // ALIGN) * ALIGN
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + _HEADER.pack(len(header)) + header)
            for name, arr in arrays.items():
                f.seek(start + table[name]["offset"])
                f.write(arr.view(np.uint8))    # (no copy: a rebuild's peak memory)
            f.truncate(start + at)
            f.flush()
            os.fsync(f.fileno())     # a crash must not leave a right-sized file of zeros under the real name
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


HASHES_PER_BUCKET = 16   # Sidecar.find: hashes per bucket of its directory, at most this on average (8-16)


def _hash_buckets(hashes: np.ndarray) -> tuple[int, memoryview]:
    """A directory of sorted CRC-32s: ``(shift, starts)``, where the hashes whose top bits
    are ``b`` (``h >> shift == b``) lie at ``starts[b]:starts[b + 1]``. A term's binary
    search then reads a few neighbouring hashes instead of ~20 spread over megabytes,
    most of them cache misses when a query looks up a term no recent query asked for
    (finding those took ~7 % of a query's time, at ×1 and ×10). Built when a sidecar is
    opened: ~0.3 ms per 100,000 terms and 4 bytes per 8-16 of them (~2 ms and 256 KB for a
    ×10 segment's 690,000). The master of ``serve`` opens the first view's before forking,
    so its workers share those; a view opened after a write builds its own in each worker."""
    bits = min(24, (len(hashes) // HASHES_PER_BUCKET).bit_length())
    shift = 32 - bits
    starts = np.empty((1 << bits) + 1, np.uint32)
    starts[:-1] = np.searchsorted(hashes, (np.arange(1 << bits, dtype=np.uint64) << shift).astype(hashes.dtype))
    starts[-1] = len(hashes)
    return shift, memoryview(starts)


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
        self.starts = self.arrays["starts"]
        self.ids, self.tfs = self.arrays["ids"], self.arrays["tfs"]
        self.over_at, self.over_tf = self.arrays["over_at"], self.arrays["over_tf"]
        self.field_numbers = {f: i for i, f in enumerate(meta["fields"])}
        self.dict_hash = self.arrays["dict_hash"]
        self.terms, self.term_at = self.arrays["terms"], self.arrays["term_at"]
        self.pos_term, self.pos_at, self.pos = self.arrays["pos_term"], self.arrays["pos_at"], self.arrays["pos"]
        self._views = (memoryview(self.dict_hash), memoryview(self.term_at), memoryview(self.terms))
        self._shift, self._buckets = _hash_buckets(self.dict_hash)
        self._starts_view = memoryview(self.starts)     # (indexing it gives Python ints, no numpy scalars)
        self._over_view = memoryview(self.over_at)
        self._ids_view, self._tfs_view = memoryview(self.ids), memoryview(self.tfs)

    def check(self) -> None:
        """Raise ValueError unless every array matches its CRC-32 (reads the whole file)."""
        for name, arr in self.arrays.items():
            if zlib.crc32(arr) != self.table[name]["crc32"]:
                raise ValueError(f"{name}: checksum mismatch")

    def lengths(self, field: str) -> np.ndarray | None:
        return self.arrays.get(f"len:{field}")

    def lookup(self, field: str, tbytes: bytes) -> tuple[int, int] | None:
        """Where a term's postings lie (``start``, ``end``), or None when the segment does
        not hold it."""
        found = self.span(field, tbytes)
        return None if found is None else found[:2]

    def span(self, field: str, tbytes: bytes) -> tuple[int, int, int] | None:
        """Where a term's postings lie and its number (``start``, ``end``, ``t``), or None."""
        t = self.find(field, tbytes)
        return None if t is None else (self._starts_view[t], self._starts_view[t + 1], t)

    def find(self, field: str, tbytes: bytes) -> int | None:
        """A term's number, or None when the segment does not hold it: a hash looked up by
        binary search, then the term's bytes compared."""
        number = self.field_numbers.get(field)
        if number is None:
            return None
        key = bytes((number,)) + tbytes
        h = zlib.crc32(key)
        # bisect over memoryviews: Python ints throughout (half the time of numpy scalars),
        # within the hashes sharing h's top bits
        hashes, term_at, terms = self._views
        b = h >> self._shift
        i, end = self._buckets[b], self._buckets[b + 1]
        i = bisect.bisect_left(hashes, h, i, end)
        while i < end and hashes[i] == h:
            if terms[term_at[i]:term_at[i + 1]] == key:
                return i
            i += 1
        return None

    def has_positions(self, t: int) -> bool:
        j = int(self.pos_term.searchsorted(t))
        return j < len(self.pos_term) and int(self.pos_term[j]) == t

    def phrase_keys(self, t: int, offset: int, docs: np.ndarray) -> np.ndarray:
        """Where term ``t`` (one with positions) occurs in ``docs`` (sorted segment docnums),
        shifted back by ``offset``: sorted ``docnum << 32 | position - offset``. The keys of a
        phrase's grams, each shifted by its offset in the phrase, meet where it occurs."""
        j = int(self.pos_term.searchsorted(t))
        start, end = int(self.starts[t]), int(self.starts[t + 1])
        ids, tfs = self.postings(start, end)
        tfs = tfs.astype(np.int64)
        k, hit = find_sorted(ids, docs.astype(ids.dtype))
        chosen = k[hit]                             # the postings of docs
        lens = tfs[chosen]
        firsts = np.cumsum(tfs)[chosen] - lens      # where each one's positions begin
        total = int(lens.sum())
        at = np.repeat(firsts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        pos = self.pos[int(self.pos_at[j]):int(self.pos_at[j + 1])][at].astype(np.int64)
        doc = np.repeat(ids[chosen].astype(np.int64), lens)
        ok = pos >= offset
        return (doc[ok] << 32) | (pos[ok] - offset)

    def postings(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(segment docnums, frequencies as float32) of postings ``start:end``."""
        tfs = self.tfs[start:end].astype(np.float32)
        self._fix_overflow(tfs, start, end, None)
        return self.ids[start:end], tfs

    def fill(self, start: int, end: int, base: int, ids: np.ndarray, tfs: np.ndarray | None = None) -> None:
        """Postings ``start:end`` into ``ids`` (int32, as global docnums: plus ``base``) and,
        if given, their frequencies into ``tfs`` (float32), both of length ``end - start``."""
        np.add(self.ids[start:end], np.int32(base), out=ids, casting="unsafe")   # (global docnums fit int32)
        if tfs is not None:
            tfs[:] = self.tfs[start:end]
            self._fix_overflow(tfs, start, end, None)

    def freqs_of(self, start: int, end: int, docs: np.ndarray) -> np.ndarray:
        """The term's frequency in each of ``docs`` (sorted segment docnums; 0 where absent),
        by binary search in the mapped ids: nothing else is read."""
        ids = self.ids[start:end]
        out = np.zeros(len(docs), dtype=np.float32)
        if not len(ids) or not len(docs):
            return out
        pos, hit = find_sorted(ids, docs.astype(ids.dtype))   # (segment docnums fit; the other way would copy the ids)
        where = pos[hit]
        vals = self.tfs[start + where].astype(np.float32)
        self._fix_overflow(vals, start, end, where)
        out[hit] = vals
        return out

    def freq_of(self, start: int, end: int, doc: int) -> int | float:
        """The term's frequency in one document (a segment docnum; 0 if absent): :meth:`freqs_of`
        for a few documents, by bisect over memoryviews (Python ints; each numpy call of the
        vectorised search costs about what ten of these do)."""
        i = bisect.bisect_left(self._ids_view, doc, start, end)
        if i == end or self._ids_view[i] != doc:
            return 0
        tf = self._tfs_view[i]
        if tf != OVERFLOW:
            return tf
        k = bisect.bisect_left(self._over_view, i)    # (every OVERFLOW posting is listed there)
        return float(self.over_tf[k])

    def _fix_overflow(self, tfs: np.ndarray, start: int, end: int, where: np.ndarray | None) -> None:
        """Put the kept-aside frequencies of the postings ``start + where`` (``None``: all
        of ``start:end``) into ``tfs``."""
        over = self._over_view
        if not over:
            return
        lo = bisect.bisect_left(over, start)     # binary searches first (Python ints): most terms have none
        hi = bisect.bisect_left(over, end, lo)
        if lo == hi:
            return
        at = self.over_at[lo:hi] - start           # overflowing postings of this term
        if where is None:
            tfs[at] = self.over_tf[lo:hi]
            return
        k = where.searchsorted(at)                  # ...among those asked for
        k_ok = k < len(where)
        k, at, vals = k[k_ok], at[k_ok], self.over_tf[lo:hi][k_ok]
        found = where[k] == at
        tfs[k[found]] = vals[found]


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
    damaged; returns how many were built. Never raises: a segment whose sidecar cannot
    be built (a read-only index, a damaged segment) is read through Whoosh's blocks."""
    built = 0
    for leaf in leaves:
        if not leaf.doc_count_all():
            continue
        segment = leaf.segment().segment_id()
        try:
            path = reader_segment_path(leaf, SUFFIX)
            if path is None:
                continue
            for tmp in glob.glob(glob.escape(path) + ".*.tmp"):     # a killed writer's leftover
                os.unlink(tmp)
            if os.path.exists(path):
                try:
                    Sidecar(path, segment, leaf.doc_count_all()).check()
                    continue
                except (OSError, ValueError, KeyError) as e:
                    log.warning("sidecar of %s not usable (%s): rebuilding it", segment, e)
            built += build(leaf)
        except Exception as e:      # derived data: never a reason not to serve
            log.warning("no sidecar for %s (%s: %s): reading Whoosh's posting blocks", segment,
                        type(e).__name__, e)
    return built
