"""The read side: arrays and bytes straight from a segment's files (see the package
docstring for the private names this relies on).

Search wants arrays, and Whoosh's public reader API yields one value per Python
call (a length, a term, a column cell). These functions read the same data the
way Whoosh's own codec (``whoosh/codec/whoosh3.py``) stores it, a segment
(``leaf``, a ``SegmentReader``) at a time, and return arrays or bytes, like the
narrow interface of ``whoosh/codec/base.py``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.columns import CompressedBytesColumn, PickleColumn, VarBytesColumn
from whoosh.filedb.filestore import FileStorage
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

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


class ColumnRows:
    """The values of a segment's variable-bytes column, compressed or not
    (``leaf.column_reader(name)``'s; a pickle column's unpickled, or None where empty),
    each row read by one call of the column file's ``get`` and one decompression:
    Whoosh's reader takes three more Python calls a row (translating, decompressing and
    variable-bytes layers), and every hit and every phrase confirmed in a text reads one.
    TypeError for a column of another kind, or none (a segment where no document has
    the field: ask ``leaf.has_column`` first)."""

    __slots__ = ("_read", "_start", "_row_at", "_row_bytes", "_unpack", "_loads")

    def __init__(self, leaf, name: str):
        reader = leaf.column_reader(name, translate=False)
        self._loads = None
        if isinstance(reader, PickleColumn.Reader):
            self._loads, reader = pickle.loads, reader._child
        if not isinstance(reader, VarBytesColumn.Reader):
            raise TypeError(f"{name}: {type(reader).__name__} is not a column of variable bytes")
        self._read, self._start = reader._dbfile.get, reader._basepos
        self._row_at, self._row_bytes = reader._offsets, reader._lengths
        # zlib's or LZ4's (schema.Lz4BytesColumn); None: stored as is (schema 1's normal form)
        self._unpack = reader._decompress if isinstance(reader, CompressedBytesColumn.Reader) else None

    def __getitem__(self, docnum: int):
        length = self._row_bytes[docnum]
        if not length:
            return None if self._loads else b""
        data = self._read(self._start + self._row_at[docnum], length)
        if self._unpack is not None:
            data = self._unpack(data)
        return self._loads(data) if self._loads else data


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


def posting_extents(leaf, fieldname: str) -> Iterator[tuple[bytes, object, int, int]]:
    """(term, postings file, offset, length) of every term of ``fieldname``, in term
    order (the order the lists lie in the file), from the term dictionary alone."""
    postfile = leaf._terms._postfile
    for (fname, tbytes), info in leaf._terms.items_from(fieldname, b""):
        if fname != fieldname:
            break
        if info.is_inlined():
            raise ValueError(f"inlined postings for {fieldname}:{tbytes!r} are not supported")
        offset, length = info.extent()
        yield tbytes, postfile, offset, length[0] if isinstance(length, tuple) else length


def segment_path(storage, segment, suffix: str) -> str | None:
    """The path of a file named after ``segment`` (``<index>_<id><suffix>``) in ``storage``,
    or None when the storage is not a folder of files (``RamStorage``). Whoosh's
    ``clean_files`` deletes such a file with its segment (its ``TOC._segment_pattern``
    matches ``<index>_<id>.<anything>``)."""
    if not isinstance(storage, FileStorage):    # RamStorage (its folder is ''), a compound file
        return None
    return os.path.join(os.path.abspath(storage.folder), segment.segment_id() + suffix)


def reader_segment_path(leaf, suffix: str) -> str | None:
    """:func:`segment_path` of a ``SegmentReader``'s segment (a compound segment's reader
    reads through an ``OverlayStorage`` whose second storage is the index's)."""
    storage = leaf._storage
    return segment_path(getattr(storage, "b", storage), leaf.segment(), suffix)


def compressed_bytes_reader(dbfile, basepos: int, length: int, doccount: int, decompress):
    """Whoosh's compressed-bytes column reader with ``decompress`` (bytes -> bytes) in
    place of zlib's."""
    reader = CompressedBytesColumn.Reader(dbfile, basepos, length, doccount, "zlib")
    reader._decompress = decompress
    return reader
