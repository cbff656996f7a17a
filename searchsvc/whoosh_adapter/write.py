"""The write side: a segment writer that writes whole posting lists, the commit in two
steps, the merge policy of upserts, and the TOC generation (see the package docstring
for the private names this relies on).

Whoosh's writer, not jieba, is the slow part of indexing (about 6 µs per posting,
most of it reading field lengths back from disk and sorting every posting tuple).
``FastSegmentWriter`` groups postings per term in memory (``GroupingPool``) instead
of one global sort and keeps field lengths in memory for the postings writer; the
files it writes are ordinary Whoosh 2.7 segments. ``PostingListWriter`` encodes a
term's whole posting list at once, or a whole field's from arrays (``PostingArrays``),
byte for byte what ``W3FieldWriter`` writes.
"""

from __future__ import annotations

import pickle
import uuid
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from hashlib import md5
from itertools import chain
from operator import sub
from struct import pack

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3Segment, W3TermInfo
from whoosh.columns import CompressedBytesColumn
from whoosh.filedb import filetables
from whoosh.filedb.filestore import FileStorage
from whoosh.index import _DEF_INDEX_NAME, TOC
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import MERGE_SMALL, NO_MERGE, SegmentWriter

BLOCK_LIMIT = 128            # W3Codec's postings per block
MIN_COMPRESSED_POSTINGS = 8  # smaller blocks are written uncompressed
MERGE_MAX_BYTES = 4 << 20    # larger segments are left out of upserts' merges (~0.5 s a MB to rewrite)


class Counted:
    """One term's postings in a pre-counted field, whose weight is the frequency (boost 1)
    and whose value is nothing (``schema.Counts``) or, in an index of schema 5 and before,
    its 4-byte form (``Frequency``): document numbers and frequencies as two lists. In the
    pool a posting is two list slots (16 bytes) where Whoosh's ``(docnum, weight, value)``
    tuple with its float and bytes took ~136; the whole worker went from ~200 bytes a
    posting to ~70 at x10."""

    __slots__ = ("ids", "freqs")

    def __init__(self, ids: list[int], freqs: list[int]):
        self.ids, self.freqs = ids, freqs

    def __len__(self) -> int:
        return len(self.ids)

    def tuples(self) -> list[tuple[int, float, bytes]]:
        """Whoosh's form of the same postings."""
        return [(d, float(f), pack_uint(f)) for d, f in zip(self.ids, self.freqs)]


class KeyedCounts:
    """A document's terms in a pre-counted field as two arrays: ``keys``, distinct unsigned
    integers whose order is the terms' byte order, and ``counts``, their frequencies;
    ``decode(keys)`` gives the terms' bytes. The pool keeps the arrays and groups a whole
    segment's postings with one sort, where a list per term took ~1 µs a posting."""

    __slots__ = ("keys", "counts", "decode")

    def __init__(self, keys: np.ndarray, counts: np.ndarray, decode: Callable[[np.ndarray], list[bytes]]):
        self.keys, self.counts, self.decode = keys, counts, decode

    def __len__(self) -> int:
        return len(self.keys)

    def items(self) -> list[tuple[bytes, int, float, bytes]]:
        """Whoosh's form: ``(term, frequency, weight, value)``."""
        return [(t, n, float(n), pack_uint(n)) for t, n in zip(self.decode(self.keys), self.counts.tolist())]


_LIST_BATCH = 1 << 16     # postings turned into Python lists at a time


class _KeyedField:
    """One field's :class:`KeyedCounts`, document after document, until the segment is written."""

    __slots__ = ("keys", "counts", "docs", "sizes", "decode")

    def __init__(self, decode):
        self.keys, self.counts, self.decode = [], [], decode
        self.docs, self.sizes = array("q"), array("q")

    def add(self, docnum: int, value: KeyedCounts) -> None:
        self.keys.append(value.keys)
        self.counts.append(value.counts)
        self.docs.append(docnum)
        self.sizes.append(len(value.keys))

    def arrays(self) -> "PostingArrays | None":
        """The field's posting lists in term order, postings in the order documents came
        (docnum order): one stable sort of all the keys; None when no document had a term
        in it. The documents' arrays are let go of as they are gathered (a segment's peak is
        ~28 bytes a posting, briefly)."""
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.uint64)
        self.keys = []
        if not len(keys):
            return None
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        terms = self.decode(keys[starts])
        del keys
        # Document numbers fit 32 bits (Whoosh's term rows store them so: W3TermInfo's "I").
        ids = np.repeat(np.asarray(self.docs, np.uint32), np.asarray(self.sizes, np.int64))[order]
        freqs = np.concatenate(self.counts)[order]
        self.counts = []
        return PostingArrays(terms, np.append(starts, len(ids)), ids, freqs)

    def terms(self):
        """``(term, Counted)`` in term order (see :meth:`arrays`)."""
        arrays = self.arrays()
        return iter(()) if arrays is None else iter(arrays)


class PostingArrays:
    """A field's posting lists as arrays: ``terms`` (bytes, in order), ``bounds`` (where
    each term's postings begin in ``ids`` and ``freqs``; one more than terms), ``ids``
    (docnums, ascending within a term) and ``freqs``. ``PostingListWriter`` encodes them
    with a few array operations for the whole field; iterating gives ``(term, Counted)``."""

    __slots__ = ("terms", "bounds", "ids", "freqs")

    def __init__(self, terms: list[bytes], bounds: np.ndarray, ids: np.ndarray, freqs: np.ndarray):
        self.terms, self.bounds, self.ids, self.freqs = terms, bounds, ids, freqs

    def __iter__(self):
        bounds = self.bounds.tolist()
        for term, (start, end, ids, freqs) in zip(self.terms, _batched(bounds, self.ids, self.freqs)):
            yield term, Counted(ids[start:end], freqs[start:end])


def _rows(*columns: np.ndarray):
    """The rows of equally long ``columns`` as tuples of Python values, made _LIST_BATCH rows
    at a time (lists of a whole field's terms took ~80 MB a column set at x1)."""
    for start in range(0, len(columns[0]), _LIST_BATCH):
        yield from zip(*(c[start:start + _LIST_BATCH].tolist() for c in columns))


def _batched(bounds: list[int], *arrays):
    """For consecutive ranges ``bounds[i]:bounds[i + 1]`` of ``arrays``: ``(start, end,
    *lists)``, the range within Python lists of the arrays' values that hold it. Lists are
    made _LIST_BATCH values at a time (a longer range's alone): a numpy slice and tolist per
    range cost more, lists of a whole field ~36 bytes a posting."""
    batch_start, batch = 0, [[] for _ in arrays]
    for start, end in zip(bounds, bounds[1:]):
        if end - batch_start > len(batch[0]):
            batch_start, batch_end = start, max(end, start + _LIST_BATCH)
            batch = [a[start:batch_end].tolist() for a in arrays]
        yield start - batch_start, end - batch_start, *batch


def _counted_arrays(counted: dict) -> PostingArrays:
    """A field's ``{term: [docnum, freq, docnum, freq, ...]}`` as arrays (each term's list is let
    go of as it is read)."""
    terms = sorted(counted)
    sizes = np.fromiter((len(counted[t]) >> 1 for t in terms), np.int64, count=len(terms))
    bounds = np.zeros(len(terms) + 1, np.int64)
    np.cumsum(sizes, out=bounds[1:])
    numbers = np.fromiter(chain.from_iterable(map(counted.pop, terms)), np.int64, count=2 * int(bounds[-1]))
    return PostingArrays(terms, bounds, numbers[0::2].astype(np.uint32), numbers[1::2].copy())


class GroupingPool:
    """Whoosh's posting-pool interface, grouping postings per (field, term).

    Whoosh's ``PostingPool`` sorts every ``(field, term, docnum, ...)`` tuple;
    grouping needs one sort of the distinct terms instead. Pre-counted fields'
    postings (``add_counted``) are kept as a list of numbers per term, docnum and
    frequency in turn, or as a document's arrays (:class:`KeyedCounts`), sorted once
    when the segment is written; documents come in docnum order, so postings need no sort. A
    writer's first document is kept as it came (its terms are distinct) and grouped
    only when a second one arrives: writing one article (a PUT) groups nothing.
    """

    def __init__(self):
        self.groups = defaultdict(list)     # (field, term) -> [(docnum, weight, value)], from add()
        self.counted: dict[str, defaultdict] = {}   # field -> term -> [docnum, freq, docnum, freq, ...]
        self.keyed: dict[str, _KeyedField] = {}     # field -> its documents' KeyedCounts
        self.count = 0
        self._docnum = None     # the only document so far (None: none yet, or grouped)
        self._first = []        # ...its (fieldname, [(term, freq, weight, value), ...] or KeyedCounts, counted)

    def add(self, item):
        fieldname, tbytes, docnum, weight, vbytes = item
        self.count += 1
        if self._keep_first(docnum):
            self._first.append((fieldname, [(tbytes, None, weight, vbytes)], False))
        else:
            self.groups[fieldname, tbytes].append((docnum, weight, vbytes))

    def add_counted(self, fieldname, docnum, items):
        """A document's terms in one field, each once: ``(term, freq, weight, value)`` with
        the frequency's weight and value (only the frequency is kept), or a :class:`KeyedCounts`."""
        self.count += len(items)
        if self._keep_first(docnum):
            self._first.append((fieldname, items, True))
        else:
            self._add_counted(fieldname, docnum, items)

    def _keep_first(self, docnum) -> bool:
        """Whether ``docnum`` is still the only document (its terms are kept as they came);
        when another arrives, the first is grouped."""
        if self._ungrouped() and self._docnum in (None, docnum):
            self._docnum = docnum
            return True
        self._group_first()
        return False

    def _ungrouped(self) -> bool:
        """Whether no posting has been grouped yet (at most one document came)."""
        return not self.groups and not self.counted and not self.keyed

    def _add_counted(self, fieldname, docnum, items):
        if type(items) is KeyedCounts:
            field = self.keyed.get(fieldname)
            if field is None:
                field = self.keyed[fieldname] = _KeyedField(items.decode)
            field.add(docnum, items)
            return
        field = self.counted.get(fieldname)
        if field is None:
            field = self.counted[fieldname] = defaultdict(list)
        for tbytes, freq, _weight, _value in items:
            numbers = field[tbytes]
            numbers.append(docnum)
            numbers.append(freq)

    def _group_first(self):
        first, self._first = self._first, []
        for fieldname, items, counted in first:
            if counted:
                self._add_counted(fieldname, self._docnum, items)
            else:
                for tbytes, _freq, weight, vbytes in items:
                    self.groups[fieldname, tbytes].append((self._docnum, weight, vbytes))
        self._docnum = None

    def fields(self):
        """``(fieldname, terms)`` in field order; ``terms``: ``(term, postings)`` in term
        order, postings sorted by docnum: a :class:`Counted`, or Whoosh's tuples; a field
        whose postings all came through ``add_counted`` (all as lists, or all as
        :class:`KeyedCounts`) is one :class:`PostingArrays`. Each term is let go of as it
        is handed out."""
        if self._first and self._ungrouped():
            fields = defaultdict(list)
            for fieldname, items, _counted in self._first:
                fields[fieldname] += items.items() if type(items) is KeyedCounts else items
            docnum = self._docnum
            for fieldname in sorted(fields):
                items = sorted(fields[fieldname], key=lambda item: item[0])
                yield fieldname, ((tbytes, [(docnum, weight, vbytes)]) for tbytes, _freq, weight, vbytes in items)
            return
        self._group_first()
        tupled = defaultdict(set)
        for fieldname, tbytes in self.groups:
            tupled[fieldname].add(tbytes)
        for fieldname in sorted(set(tupled) | set(self.counted) | set(self.keyed)):
            if fieldname in tupled or (fieldname in self.keyed and fieldname in self.counted):
                yield fieldname, self._terms(fieldname, tupled.get(fieldname, set()))
            elif fieldname in self.keyed:
                yield fieldname, self.keyed.pop(fieldname).arrays() or ()
            else:
                yield fieldname, _counted_arrays(self.counted.pop(fieldname))

    def _terms(self, fieldname, tupled: set):
        keyed = self.keyed.pop(fieldname, None)
        counted = self.counted.get(fieldname, {})
        if keyed is not None:     # (rare: an upsert's merge, or a mixed field)
            counted = self.counted.setdefault(fieldname, defaultdict(list))
            for tbytes, postings in keyed.terms():
                numbers = counted.get(tbytes, [])
                pairs = sorted([*zip(numbers[0::2], numbers[1::2]), *zip(postings.ids, postings.freqs)])
                counted[tbytes] = [n for pair in pairs for n in pair]
        for tbytes in sorted(tupled.union(counted)):
            numbers = counted.pop(tbytes, None)
            postings = None if numbers is None else Counted(numbers[0::2], numbers[1::2])
            if tbytes in tupled:     # (an upsert's merge: old segments' postings come one by one)
                postings = sorted(self.groups.pop((fieldname, tbytes)) + (postings.tuples() if postings else []))
            yield tbytes, postings

    def iter_postings(self):
        for fieldname, terms in self.fields():
            for tbytes, postings in terms:
                for docnum, weight, vbytes in (postings.tuples() if type(postings) is Counted else postings):
                    yield fieldname, tbytes, docnum, weight, vbytes

    def cleanup(self):
        self.groups.clear()
        self.counted.clear()
        self.keyed.clear()
        self._first = []
        self._docnum = None


class _Codec(W3Codec):
    """W3Codec naming new segments from ``os.urandom``: Whoosh draws names from the
    ``random`` module, whose state Hypothesis resets for every example, so a later
    segment could get an existing one's name. Segments keep a plain W3Codec (it is
    pickled into the TOC), so the files are unchanged."""

    def new_segment(self, storage, indexname):
        return W3Segment(W3Codec(compression=1), indexname, segid=uuid.uuid4().hex[:16])


class FastSegmentWriter(SegmentWriter):
    """A Whoosh ``SegmentWriter`` that writes whole posting lists.

    Whoosh's writer sorts every posting tuple, reads each posting's field
    length back from disk and feeds the codec one posting at a time (about
    6 µs a posting, most of the indexing time). This writer keeps postings
    grouped per term and field lengths in memory, and writes whole posting lists
    (``PostingListWriter``); the files it writes are ordinary Whoosh 2.7 segments (the contract
    tests compare them with the stock writer's). (Whoosh 2.7.4's inline postings,
    ``inlinelimit`` > 1, are broken: ``W3TermInfo.set_inline`` does not exist.)

    Fields whose type has ``precounted = True`` (``schema.PreCounted``) take values
    that are already lists of ``(term bytes, frequency, weight, value bytes)``, or a
    :class:`KeyedCounts`.
    Besides ``commit()``, a writer can finish its segment for another writer to
    commit (``finish_segment``), or commit in two steps (``segments_to_commit``,
    then ``commit_segments``) so that new segments can be checked in between.
    """

    def __init__(self, ix, recorder=None, **kwargs):
        kwargs.setdefault("codec", _Codec(compression=1))
        super().__init__(ix, **kwargs)
        # Made per segment; sees every posting list written (``add(field, term, postings)``) and is
        # told when the segment is finished (``write(storage, schema, segment)``).
        self._recorder_factory = recorder
        self._recorder = None
        self.pool = GroupingPool()
        self._precounted = {name for name, f in self.schema.items() if getattr(f, "precounted", False)}
        # The pool keeps only their frequencies: weight and value must follow from them.
        assert all(self.schema[name].format.field_boost == 1.0 for name in self._precounted)
        self._lengths = defaultdict(dict)    # fieldname -> {docnum: length}, of documents added here
        self._documents = 0                  # ...how many (the others came from merged segments)

    def add_document(self, **fields):
        """Whoosh's add_document (no spelling, no vectors, no field boosts), with
        pre-counted term lists handed to the pool whole."""
        self._check_state()
        pdw = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        names = sorted(name for name in fields if not name.startswith("_"))
        self._check_fields(schema, names)
        pdw.start_doc(docnum)
        for name in names:
            value = fields[name]
            if value is None:
                continue
            field = schema[name]
            length = 0
            if field.indexed:
                # (a KeyedCounts goes to the pool as it is: index() makes Whoosh's tuples of it)
                items = value if type(value) is KeyedCounts else field.index(value)
                if name in self._precounted:
                    self.pool.add_counted(name, docnum, items)
                    length = int(items.counts.sum()) if type(items) is KeyedCounts else sum(item[1] for item in items)
                else:
                    for tbytes, freq, weight, vbytes in items:
                        length += freq if field.scorable else 0
                        self.pool.add((name, tbytes, docnum, weight, vbytes))
                self._lengths[name][docnum] = length
            pdw.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None:
                pdw.add_column_value(name, field.column_type, field.to_column_value(value))
        pdw.finish_doc()
        self._added = True
        self._documents += 1
        self.docnum += 1

    @property
    def postings(self) -> int:
        """Postings added so far (a caller starts a new segment past some size)."""
        return self.pool.count

    def _flush_segment(self):
        self.perdocwriter.close()
        self._recorder = self._recorder_factory() if self._recorder_factory else None
        out = PostingListWriter(self.fieldwriter, self.codec._compression, BLOCK_LIMIT, MIN_COMPRESSED_POSTINGS,
                                recorder=self._recorder)
        for fieldname, terms in self.pool.fields():
            out.start_field(fieldname, self.schema[fieldname])
            out.add_many(terms, self._field_lengths(fieldname))
        out.close()

    def _field_lengths(self, fieldname):
        known = self._lengths.get(fieldname)
        if known is not None and self._documents == self.docnum - self.docbase:
            return known.get    # (a document without the field has no postings in it to ask about)
        pdr = self.codec.per_document_reader(self.storage, self.get_segment())
        return lambda docnum: pdr.doc_field_length(docnum, fieldname)

    def _finalize_segment(self):
        segment = super()._finalize_segment()
        if self._recorder is not None:      # after the compound file is assembled: not part of it
            self._recorder.write(self.storage, self.schema, segment)
            self._recorder = None
        return segment

    def finish_segment(self):
        """Write this writer's segment without committing a TOC (for a parent to commit)."""
        segment = self._finalize_segment()
        # Not _finish(): the temp directory is shared by every writer of this
        # index and the committing parent removes it.
        self.is_closed = True
        return segment

    def segments_to_commit(self, merge_small: bool) -> list:
        """The first half of ``commit(merge=merge_small)``: the index's segments after
        Whoosh's merge policy (small ones merged, or none), plus this writer's own
        when it added documents. Nothing is visible to readers until ``commit_segments``."""
        self._check_state()
        segments = self._merge_segments(_merge_small if merge_small else NO_MERGE, False, False)
        if self._added:
            segments.append(self._finalize_segment())
        else:
            self._close_segment()
        return segments

    def commit_segments(self, segments: list) -> None:
        """The second half: write the TOC listing ``segments`` (the commit), clean up and unlock."""
        self._commit_toc(segments)
        self._finish()

    def committed(self) -> bool:
        """Whether this writer's TOC is on disk: its commit happened, even if what
        followed it (cleaning up) failed."""
        return self.storage.file_exists(TOC._filename(self.indexname, self.generation))


def _merge_small(writer, segments) -> list:
    """Whoosh's MERGE_SMALL among the segments of at most MERGE_MAX_BYTES. Whoosh picks by
    document count, so the one-article segment of a very long article would be rewritten,
    posting by posting, by the fifth upsert after it (17 s for a 5 MB article)."""
    large = {s.segment_id() for s in segments if _segment_bytes(writer.storage, s) > MERGE_MAX_BYTES}
    kept = {s.segment_id() for s in MERGE_SMALL(writer, [s for s in segments if s.segment_id() not in large])}
    return [s for s in segments if s.segment_id() in kept | large]


def _segment_bytes(storage, segment) -> int:
    return sum(storage.file_length(name) for name in segment.list_files(storage))


def compressed_bytes_writer(dbfile, compress):
    """Whoosh's compressed-bytes column writer with ``compress(data, level)`` in place of zlib's."""
    writer = CompressedBytesColumn.Writer(dbfile, 0, "zlib")
    writer._compress = compress
    return writer


def latest_generation(path) -> int:
    """The generation of the newest TOC in the index directory ``path`` (-1: none),
    from the file names alone: cheap enough to poll every second."""
    return TOC._latest_generation(FileStorage(str(path)), _DEF_INDEX_NAME)


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

    def __init__(self, fw, level: int, blocklimit: int = 128, min_compressed: int = 8, recorder=None):
        self._fw = fw
        self._recorder = recorder      # told each list's field, term and postings
        self._fieldname = None
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
        self._counted = False       # a pre-counted field (the frequency is the weight; _fixed 4: also its value)
        self._infield = False

    def start_field(self, fieldname: str, fieldobj) -> None:
        if self._infield:
            self._fw.finish_field()
        self._fw.start_field(fieldname, fieldobj)     # assigns the field's number
        self._infield = True
        self._fieldname = fieldname
        self._prefix = pack_ushort(self._fw._fieldid)
        self._fixed = fieldobj.format.fixed_value_size()
        self._counted = getattr(fieldobj, "precounted", False)
        assert not self._counted or self._fixed in (0, 4), "a frequency's value: its 4 bytes, or none"
        self._memo.clear()

    def add(self, tbytes: bytes, postings: list | Counted, lengths: Callable[[int], int | None]) -> None:
        """One term's postings, sorted: ``(docnum, weight, value bytes)`` tuples, or a
        :class:`Counted` in a frequency field; ``lengths(docnum)`` is the document's field
        length. Terms come in increasing order."""
        self.add_many([(tbytes, postings)], lengths)

    def add_many(self, terms: Iterable[tuple[bytes, list | Counted]] | PostingArrays,
                 lengths: Callable[[int], int | None]) -> None:
        """:meth:`add` for each ``(term, postings)`` of ``terms`` (one loop: a long article's
        field has 100,000 terms), or a field's :class:`PostingArrays` at once."""
        if type(terms) is PostingArrays and self._counted and len(terms.ids) and terms.freqs.max() < 1 << 24:
            if self._recorder is not None:
                self._recorder.add_arrays(self._fieldname, terms)
            self._write_rows(self._encode_arrays(terms, lengths))
        else:     # (a field's arrays too when a frequency is past float32's integers: see _encode_counted)
            self._write_rows(self._encode_each(terms, lengths))

    def _encode_each(self, terms, lengths):
        """``(term, posting list bytes, term info)`` of each ``(term, postings)``."""
        memo, encode, encode_counted, recorder = self._memo, self._encode, self._encode_counted, self._recorder
        for tbytes, postings in terms:
            counted = type(postings) is Counted
            if len(postings) == 1:
                if counted:
                    docnum = postings.ids[0]
                    key = (docnum, postings.freqs[0], lengths(docnum))
                else:
                    docnum, weight, value = postings[0]
                    key = (docnum, weight, value, lengths(docnum))
                encoded = memo.get(key)
                if encoded is None:
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    encoded = memo[key] = (encode_counted if counted else encode)(postings, lengths)
            else:
                encoded = (encode_counted if counted else encode)(postings, lengths)
            if recorder is not None:
                recorder.add(self._fieldname, tbytes, postings)
            yield tbytes, *encoded

    def _write_rows(self, encoded: Iterable[tuple[bytes, bytes, bytes]]) -> None:
        """Write each ``(term, posting list bytes, term info)``: the posting list, and the term's
        row in the term dictionary pointing at it."""
        posts, rows, row_starts = self._posts, self._rows, self._row_starts    # cleared in place by _flush
        buckets, prefix, pack_lengths = self._tindex.buckets, self._prefix, _ROW_LENGTHS.pack
        for tbytes, block, info in encoded:
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

    def _encode_arrays(self, arrays: PostingArrays, lengths):
        """``(term, posting list bytes, term info)`` of each term of ``arrays``: the bytes of
        :meth:`_encode_counted`, with every block's and term's figures (field lengths,
        weights, deltas) computed for the whole field in a few array operations."""
        # (4-byte arrays: these are a segment's postings, and a rebuild's peak memory)
        ids, freqs, bounds, step = arrays.ids, arrays.freqs.astype(np.uint32), arrays.bounds, self._blocklimit
        first_doc = int(ids.min())
        lens = np.array([lengths(d) or 0 for d in range(first_doc, int(ids.max()) + 1)], np.int64)
        lens = np.minimum(lens, _NO_LENGTH - 1).astype(np.int32)[ids - first_doc]
        known = np.where(lens != 0, lens, np.int32(_NO_LENGTH))    # (a length of 0 is not a length: _block)
        starts, counts = bounds[:-1], np.diff(bounds)
        # Blocks of `step` postings: where each begins, and each term's first block.
        blocks = -(-counts // step)
        first_block = np.zeros(len(blocks) + 1, np.int64)
        np.cumsum(blocks, out=first_block[1:])
        block_at = np.repeat(starts, blocks) + step * (np.arange(first_block[-1]) - np.repeat(first_block[:-1], blocks))
        block_end = np.append(block_at[1:], len(ids))
        deltas = ids.copy()
        deltas[1:] -= ids[:-1]                    # (wrapped where a term begins: a block begins there)
        deltas[block_at] = ids[block_at]          # a block starts from its first docnum itself
        # Each block's (postings, last docnum, greatest and least weight, length bytes) and each
        # term's W3TermInfo figures, as rows of Python values made _LIST_BATCH at a time.
        block_info = _rows(block_end - block_at, ids[block_end - 1], np.maximum.reduceat(freqs, block_at).astype(float),
                           _length_bytes(np.minimum.reduceat(known, block_at)),
                           _length_bytes(np.maximum.reduceat(lens, block_at)), np.minimum.reduceat(freqs, block_at))
        term_infos = _rows(np.add.reduceat(freqs, starts, dtype=np.int64).astype(float), counts,
                           _length_bytes(np.minimum.reduceat(known, starts)), _length_bytes(np.maximum.reduceat(lens, starts)),
                           np.maximum.reduceat(freqs, starts).astype(float), ids[starts], ids[bounds[1:] - 1])
        del lens, known, block_at, block_end
        values = freqs.astype(">u4").tobytes() if self._fixed else None   # each posting's value: its frequency, or none
        memo, level, min_compressed, pack_info = self._memo, self._level, self._min_compressed, W3TermInfo._struct.pack
        bounds = bounds.tolist()
        for term, start, (at, end, term_deltas, term_freqs), info, nblocks in zip(
                arrays.terms, bounds, _batched(bounds, deltas, freqs), term_infos, blocks.tolist()):
            single = end - at == 1
            if single:      # a long article's terms: see _encode_each (its term info decides its bytes)
                encoded = memo.get(info)
                if encoded is not None:
                    next(block_info)
                    yield term, *encoded
                    continue
            offset = 4 * (start - at)       # from a place in the batch's lists to one in values
            parts = [WHOOSH3_HEADER_MAGIC]
            for b in range(nblocks):
                n, last, high, bmin, bmax, low = next(block_info)
                if low == high:
                    mini_weights = None if high == 1 else high
                else:
                    mini_weights = tuple(map(float, term_freqs[at:at + n]))
                data = pickle.dumps((tuple(term_deltas[at:at + n]), mini_weights,
                                     None if values is None else values[offset + 4 * at:offset + 4 * (at + n)]), 2)
                comp = level if n >= min_compressed else 0
                if comp:
                    data = zlib.compress(data, comp)
                head = pickle.dumps((n, last, high, comp, bmin, bmax), 2)
                size = len(head) + len(data)
                parts.append(b"".join((pack_int(-size if b == nblocks - 1 else size), head, data)))
                at += n
            encoded = b"".join(parts), pack_info(False, *info)
            if single:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[info] = encoded
            yield term, *encoded

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
        W3TermInfo write them, of ``(docnum, weight, value)`` postings."""
        fixed, step = self._fixed, self._blocklimit

        def blocks():
            for start in range(0, len(postings), step):
                chunk = postings[start:start + step]
                weights = array("f", [p[1] for p in chunk])    # rounded to float32 as Whoosh stores them
                if all(w == 1.0 for w in weights):
                    mini_weights = None
                elif all(w == weights[0] for w in weights):
                    mini_weights = weights[0]
                else:
                    mini_weights = tuple(weights)
                values = [p[2] for p in chunk if p[2]]
                mini_values = tuple(values) if fixed is None or fixed < 0 else None if fixed == 0 else b"".join(values)
                # (the greatest weight as given, the others rounded: W3PostingsWriter)
                yield [p[0] for p in chunk], max(p[1] for p in chunk), sum(weights), mini_weights, mini_values
        return self._assemble(blocks(), len(postings), lengths)

    def _encode_counted(self, postings: Counted, lengths) -> tuple[bytes, bytes]:
        """:meth:`_encode` of a :class:`Counted` list: the same bytes, from its two lists."""
        assert self._counted, "Counted postings come from a pre-counted field"
        ids, freqs, step, fixed = postings.ids, postings.freqs, self._blocklimit, self._fixed
        if max(freqs) >= 1 << 24:    # (past float32's integers: the same bytes as the tuples' path wrote)
            return self._encode(postings.tuples(), lengths)

        def block(ids, weights):
            low, high = min(weights), max(weights)
            if low == high:
                mini_weights = None if high == 1 else float(high)
            else:
                mini_weights = tuple(map(float, weights))
            return ids, float(high), sum(weights), mini_weights, pack(f">{len(weights)}I", *weights) if fixed else None
        return self._assemble((block(ids[start:start + step], freqs[start:start + step])
                               for start in range(0, len(ids), step)), len(ids), lengths)

    def _assemble(self, blocks, n: int, lengths) -> tuple[bytes, bytes]:
        """The posting list of ``n`` postings from its ``blocks``: (docnums, greatest weight,
        sum of weights, the weights and the values as a block stores them)."""
        parts = [WHOOSH3_HEADER_MAGIC]
        total, minlength, maxlength, maxweight, first = 0.0, None, 0, 0, None
        written = 0
        for ids, bmaxweight, weights_sum, mini_weights, mini_values in blocks:
            written += len(ids)
            data, bmin, bmax = self._block(ids, bmaxweight, mini_weights, mini_values, written >= n, lengths)
            parts.append(data)
            total += weights_sum
            if minlength is None or (bmin is not None and bmin < minlength):
                minlength = bmin
            maxlength = max(maxlength, bmax)
            maxweight = max(maxweight, bmaxweight)
            first = ids[0] if first is None else first
        info = W3TermInfo._struct.pack(False, total, n, _length_byte(minlength), _length_byte(maxlength),
                                       maxweight, first, ids[-1])
        return b"".join(parts), info

    def _block(self, ids, maxweight, mini_weights, mini_values, last: bool, lengths) -> tuple[bytes, int | None, int]:
        """One block's bytes (its size, its info and its postings, zlib-compressed when it has
        enough of them), and the least and greatest field length of its documents."""
        lens = list(map(lengths, ids))
        if 0 in lens or None in lens:
            lens = [x for x in lens if x]
        bmin, bmax = (min(lens), max(lens)) if lens else (None, 0)
        deltas = (ids[0],) + tuple(map(sub, ids[1:], ids))
        data = pickle.dumps((deltas, mini_weights, mini_values), 2)
        comp = self._level if len(ids) >= self._min_compressed else 0
        if comp:
            data = zlib.compress(data, comp)
        info = pickle.dumps((len(ids), ids[-1], maxweight, comp, _length_byte(bmin), _length_byte(bmax)), 2)
        size = len(info) + len(data)
        return b"".join((pack_int(-size if last else size), info, data)), bmin, bmax


# length_to_byte is a binary search among the 256 lengths byte_to_length decodes (255 past
# the last): numpy's search does it for arrays, and builds the table of the usual lengths
# (calling length_to_byte 65,536 times took ~30 ms of every process's start-up).
_BYTE_LENGTHS = np.array([byte_to_length(b) for b in range(256)], np.int64)
_LENGTH_BYTES = np.searchsorted(_BYTE_LENGTHS, np.arange(1 << 16)).astype(np.uint8).tobytes()


_NO_LENGTH = (1 << 31) - 1    # (in arrays of lengths: none; greater lengths count as one less)


def _length_bytes(lengths: np.ndarray) -> np.ndarray:
    """:func:`_length_byte` of each of ``lengths`` (``_NO_LENGTH``: None, byte 0)."""
    return np.where(lengths == _NO_LENGTH, 0, np.minimum(np.searchsorted(_BYTE_LENGTHS, lengths), 255))


def _length_byte(length: int | None) -> int:
    """Whoosh's ``length_to_byte`` (a binary search), from a table for the usual lengths."""
    return _LENGTH_BYTES[length] if length is not None and 0 <= length < 65536 else length_to_byte(length)


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
