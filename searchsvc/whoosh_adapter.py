"""The one door to Whoosh 2.7.4's private internals: the read side, and the
posting-list encoder of the write side.

Search wants arrays, and Whoosh's public reader API yields one value per Python
call (a length, a term, a column cell). These functions read the same data the
way Whoosh's own codec (``whoosh/codec/whoosh3.py``) stores it, a segment
(``leaf``, a ``SegmentReader``) at a time, and return arrays or bytes, like the
narrow interface of ``whoosh/codec/base.py``. ``tests/test_whoosh_adapter.py``
is their contract: each output equals what the public API returns.

Private names relied on (a Whoosh upgrade must keep them or this module must change):

- ``whoosh.codec.whoosh3._lenfield``, ``LENGTHS_COLUMN``: the per-field length column
- ``SegmentReader._perdoc`` and ``W3PerDocReader._cached_reader``: that column's reader
- ``whoosh.util.numeric.byte_to_length``: the length byte's decoding (public, undocumented)
- ``SegmentReader._terms`` (a ``W3TermsReader``), its ``items_from`` and ``_postfile``:
  the raw term dictionary and the postings file
- ``W3TermInfo.extent``: where a term's posting list lies (and its ``from_bytes`` bug,
  a 1-tuple length)
- ``FixedBytesColumn.Reader._dbfile``, ``_basepos``, ``_count``: where a fixed-width
  column's rows lie in the segment's column file, and how many were written

Write side (:class:`PostingListWriter`, its contract ``tests/test_whoosh_adapter.py`` too):

- ``W3FieldWriter._tindex`` (an ``OrderedHashWriter``: ``dbfile``, ``index``, ``buckets``,
  ``hashtype``, ``lastkey``), ``_postfile``, ``_fieldid``: where term rows and postings go
- the W3 block layout of ``W3PostingsWriter._write_block`` and ``W3TermInfo.to_bytes``,
  the row layout of ``HashWriter.add`` (``filetables._lengths``, ``md5_hash``)

Left elsewhere: ``schema.Lz4BytesColumn`` (``Writer._compress``, ``Reader._decompress``;
its class path is pickled into every index's TOC, so it cannot move), the write side
orchestration in ``indexing.py`` (``SegmentWriter``'s segment
methods) and ``TOC._latest_generation`` in ``store.py``.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from hashlib import md5

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, WHOOSH3_HEADER_MAGIC, W3TermInfo, _lenfield
from whoosh.filedb import filetables
from whoosh.reading import TermNotFound
from whoosh.system import pack_int, pack_long, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

_LENGTH_TABLE = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)


def field_lengths(leaf, fieldname: str, count: int) -> np.ndarray | None:
    """Each document's length in ``fieldname`` (as Whoosh stores it: one byte, rounded),
    or None when no document of the segment has a term in the field."""
    col = leaf._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if col is None:
        return None
    return _LENGTH_TABLE[np.fromiter(col, dtype=np.uint8, count=count)]


def column_bytes(leaf, name: str, count: int, width: int) -> bytes:
    """A fixed-width column of one segment as one bytes object (one read, not one per
    document), NUL-padded to ``count`` rows."""
    reader = leaf.column_reader(name, translate=False)
    stored = reader._dbfile.get(reader._basepos, reader._count * width)
    return stored + b"\0" * (count * width - len(stored))


def term_doc_frequencies(leaf, fieldname: str) -> Iterator[tuple[bytes, int]]:
    """(term, document frequency) of every term of ``fieldname``, in term order,
    from the term dictionary alone."""
    for (fname, tbytes), info in leaf._terms.items_from(fieldname, b""):
        if fname != fieldname:
            break
        yield tbytes, info.doc_frequency()


def posting_extent(leaf, fieldname: str, tbytes: bytes) -> tuple[object, int, int] | None:
    """(postings file, offset, length) of a term's posting list in one segment, or None
    when the segment does not hold the term."""
    try:
        info = leaf.term_info(fieldname, tbytes)
    except TermNotFound:
        return None
    if info.is_inlined():   # Whoosh never inlines with inlinelimit=1, its default
        raise ValueError(f"inlined postings for {fieldname}:{tbytes!r} are not supported")
    offset, length = info.extent()
    if isinstance(length, tuple):   # W3TermInfo.from_bytes forgets the [0] of struct.unpack
        (length,) = length
    return leaf._terms._postfile, offset, length


# ------------------------------------------------------------ write side

_ROW_LENGTHS = filetables._lengths           # (key length, value length) before each term row
_MEMO_LIMIT = 100_000                        # single-posting encodings remembered per writer
_FLUSH_BYTES = 1 << 20


class PostingListWriter:
    """Writes a segment's posting lists and term dictionary through a Whoosh
    ``W3FieldWriter`` ``fw``, a whole posting list at a time; the bytes are those of
    ``fw.start_term``/``add``/``finish_term`` (each block zlib-compressed at ``level``
    when it holds at least ``min_compressed`` postings: a few postings gain nothing).

    Whoosh spends ~60 µs of Python on every term (a postings writer, a term-info
    object, two pickles, four file writes); a 5 MB article has 180,000 terms, each
    with one posting. Here a single posting's encoding is remembered (a long article's
    terms differ mostly in their frequency) and rows are written in large chunks.
    """

    def __init__(self, fw, level: int, blocklimit: int = 128, min_compressed: int = 8):
        self._fw = fw
        self._tindex = fw._tindex
        assert self._tindex.hashtype == 0, "md5 rows expected"   # filetables.md5_hash, inlined in add()
        self._level, self._blocklimit, self._min_compressed = level, blocklimit, min_compressed
        self._posts, self._rows = bytearray(), bytearray()
        self._posts_at = fw._postfile.tell()
        self._rows_at = self._tindex.dbfile.tell()
        self._row_starts: list[int] = []
        self._memo: dict = {}
        self._prefix = self._lastkey = b""
        self._fixed = None
        self._infield = False

    def start_field(self, fieldname: str, fieldobj) -> None:
        if self._infield:
            self._fw.finish_field()
        self._fw.start_field(fieldname, fieldobj)     # assigns the field's number
        self._infield = True
        self._prefix = pack_ushort(self._fw._fieldid)
        self._fixed = fieldobj.format.fixed_value_size()
        self._memo.clear()

    def add(self, tbytes: bytes, postings: list, lengths: Callable[[int], int | None]) -> None:
        """One term's postings: sorted ``(docnum, weight, value bytes)``; ``lengths(docnum)``
        is the document's field length. Terms come in increasing order."""
        self.add_many([(tbytes, postings)], lengths)

    def add_many(self, terms: Iterable[tuple[bytes, list]], lengths: Callable[[int], int | None]) -> None:
        """:meth:`add` for each ``(term, postings)`` of ``terms`` (one loop: a long article's
        field has 100,000 terms)."""
        memo, encode = self._memo, self._encode
        posts, rows, row_starts = self._posts, self._rows, self._row_starts    # cleared in place by _flush
        buckets, prefix, pack_lengths = self._tindex.buckets, self._prefix, _ROW_LENGTHS.pack
        for tbytes, postings in terms:
            if len(postings) == 1:
                docnum, weight, value = postings[0]
                key = (docnum, weight, value, lengths(docnum))
                encoded = memo.get(key)
                if encoded is None:
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    encoded = memo[key] = encode(postings, lengths)
            else:
                encoded = encode(postings, lengths)
            block, info = encoded
            offset = self._posts_at + len(posts)
            posts += block
            row_key = prefix + tbytes
            value = info + pack_long(offset) + pack_int(len(block))
            row_at = self._rows_at + len(rows)
            rows += pack_lengths(len(row_key), len(value)) + row_key + value
            row_starts.append(row_at)
            h = int.from_bytes(md5(row_key).digest()[-4:], "big")
            buckets[h & 255].append((h, row_at))
            self._lastkey = row_key
            if len(posts) > _FLUSH_BYTES or len(rows) > _FLUSH_BYTES:
                self._flush()

    def close(self) -> None:
        """Finish the last field, write what is buffered and close ``fw``."""
        if self._infield:
            self._fw.finish_field()
        self._flush()
        tindex = self._tindex
        tindex.lastkey = self._lastkey
        tindex.index.extend(self._row_starts)
        tindex._write_hashes = lambda: _write_hash_tables(tindex)
        self._fw.close()

    def _flush(self) -> None:
        self._fw._postfile.write(bytes(self._posts))
        self._tindex.dbfile.write(bytes(self._rows))
        self._posts_at += len(self._posts)
        self._rows_at += len(self._rows)
        self._posts.clear()
        self._rows.clear()

    def _encode(self, postings: list, lengths) -> tuple[bytes, bytes]:
        """(posting list bytes, term info without its extent), as W3PostingsWriter and
        W3TermInfo write them."""
        parts = [WHOOSH3_HEADER_MAGIC]
        total, minlength, maxlength, maxweight = 0.0, None, 0, 0
        n, step = len(postings), self._blocklimit
        for start in range(0, n, step):
            chunk = postings[start:start + step]
            ids = [p[0] for p in chunk]
            weights = array("f", [p[1] for p in chunk])    # rounded to float32 as Whoosh stores them
            lens = [x for x in map(lengths, ids) if x]
            bmin, bmax = (min(lens), max(lens)) if lens else (None, 0)
            bmaxweight = max(weights)
            deltas = tuple(b - a for a, b in zip([0] + ids, ids))
            if all(w == 1.0 for w in weights):
                mini_weights = None
            elif all(w == weights[0] for w in weights):
                mini_weights = weights[0]
            else:
                mini_weights = tuple(weights)
            values = [p[2] for p in chunk if p[2]]
            fixed = self._fixed
            mini_values = tuple(values) if fixed is None or fixed < 0 else None if fixed == 0 else b"".join(values)
            data = pickle.dumps((deltas, mini_weights, mini_values), 2)
            comp = self._level if len(chunk) >= self._min_compressed else 0
            if comp:
                data = zlib.compress(data, comp)
            info = pickle.dumps((len(ids), ids[-1], bmaxweight, comp, length_to_byte(bmin),
                                 length_to_byte(bmax)), 2)
            size = len(info) + len(data)
            parts += [pack_int(-size if start + step >= n else size), info, data]
            total += sum(weights)
            if minlength is None or (bmin is not None and bmin < minlength):
                minlength = bmin
            maxlength = max(maxlength, bmax)
            maxweight = max(maxweight, bmaxweight)
        info = W3TermInfo._struct.pack(False, total, n, length_to_byte(minlength), length_to_byte(maxlength),
                                       maxweight, postings[0][0], postings[-1][0])
        return b"".join(parts), info


_SLOT = np.dtype([("hash", ">u4"), ("pos", ">i8")])     # filetables._pointer


def _write_hash_tables(tindex) -> None:
    """``HashWriter._write_hashes`` with one write per table instead of one per slot
    (the same linear probing, so the same bytes)."""
    dbfile = tindex.dbfile
    for entries in tindex.buckets:
        numslots = 2 * len(entries)
        tindex.directory.append((dbfile.tell(), numslots))
        hashes, positions = [0] * numslots, [0] * numslots
        for h, pos in entries:
            slot = (h >> 8) % numslots
            while positions[slot]:          # an empty slot is (0, 0); no row starts at 0
                slot = (slot + 1) % numslots
            hashes[slot], positions[slot] = h, pos
        table = np.empty(numslots, dtype=_SLOT)
        table["hash"], table["pos"] = hashes, positions
        dbfile.write(table.tobytes())
