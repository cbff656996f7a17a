"""The write side: a segment writer that hands the W3 codec whole posting blocks, the
commit in two steps, and the TOC generation (see the package docstring for the
private names this relies on).

Whoosh's writer, not jieba, is the slow part of indexing (about 6 µs per posting,
most of it reading field lengths back from disk and sorting every posting tuple).
``FastSegmentWriter`` groups postings per term in memory (``GroupingPool``) instead
of one global sort and keeps field lengths in memory for the postings writer; the
files it writes are ordinary Whoosh 2.7 segments.
"""

from __future__ import annotations

import uuid
from array import array
from collections import defaultdict

from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.columns import CompressedBytesColumn
from whoosh.filedb.filestore import FileStorage
from whoosh.index import _DEF_INDEX_NAME, TOC
from whoosh.writing import MERGE_SMALL, NO_MERGE, SegmentWriter

BLOCK_LIMIT = 128            # W3Codec's postings per block
MIN_COMPRESSED_POSTINGS = 8  # smaller blocks are written uncompressed


class GroupingPool:
    """Whoosh's posting-pool interface, grouping postings per (field, term).

    Whoosh's ``PostingPool`` sorts every ``(field, term, docnum, ...)`` tuple;
    grouping needs one sort of the distinct terms instead.
    """

    def __init__(self):
        self.groups = defaultdict(list)
        self.fieldnames = set()
        self.count = 0

    def add(self, item):
        fieldname, tbytes, docnum, weight, vbytes = item
        self.groups[fieldname, tbytes].append((docnum, weight, vbytes))
        self.count += 1

    def iter_postings(self):
        for key in sorted(self.groups):
            fieldname, tbytes = key
            for docnum, weight, vbytes in sorted(self.groups[key]):
                yield fieldname, tbytes, docnum, weight, vbytes

    def cleanup(self):
        self.groups.clear()


class _Codec(W3Codec):
    """W3Codec naming new segments from ``os.urandom``: Whoosh draws names from the
    ``random`` module, whose state Hypothesis resets for every example, so a later
    segment could get an existing one's name. Segments keep a plain W3Codec (it is
    pickled into the TOC), so the files are unchanged."""

    def new_segment(self, storage, indexname):
        return W3Segment(W3Codec(compression=1), indexname, segid=uuid.uuid4().hex[:16])


class FastSegmentWriter(SegmentWriter):
    """A Whoosh ``SegmentWriter`` that writes postings a block at a time.

    Whoosh's writer sorts every posting tuple, reads each posting's field
    length back from disk and feeds the codec one posting at a time (about
    6 µs a posting, most of the indexing time). This writer keeps postings
    grouped per term and field lengths in memory, and hands the W3 codec whole
    blocks; the files it writes are ordinary Whoosh 2.7 segments (the contract
    tests compare them with the stock writer's). (Whoosh 2.7.4's inline postings,
    ``inlinelimit`` > 1, are broken: ``W3TermInfo.set_inline`` does not exist.)

    Fields whose type has ``precounted = True`` (``schema.PreCounted``) take values
    that are already lists of ``(term bytes, frequency, weight, value bytes)``.
    Besides ``commit()``, a writer can finish its segment for another writer to
    commit (``finish_segment``), or commit in two steps (``segments_to_commit``,
    then ``commit_segments``) so that new segments can be checked in between.
    """

    def __init__(self, ix, **kwargs):
        kwargs.setdefault("codec", _Codec(compression=1))
        super().__init__(ix, **kwargs)
        self.pool = GroupingPool()
        self._precounted = {name for name, f in self.schema.items() if getattr(f, "precounted", False)}
        self._lengths = defaultdict(dict)    # fieldname -> {docnum: length}

    def add_document(self, **fields):
        """Whoosh's add_document (no spelling, no vectors, no field boosts), with
        pre-counted term lists grouped per term as they arrive."""
        self._check_state()
        pdw = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        groups = self.pool.groups
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
                items = field.index(value)
                if name in self._precounted:
                    for tbytes, freq, weight, vbytes in items:
                        groups[name, tbytes].append((docnum, weight, vbytes))
                        length += freq
                    self.pool.count += len(items)
                    self._lengths[name][docnum] = length
                else:
                    for tbytes, freq, weight, vbytes in items:
                        length += freq if field.scorable else 0
                        self.pool.add((name, tbytes, docnum, weight, vbytes))
            pdw.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None:
                pdw.add_column_value(name, field.column_type, field.to_column_value(value))
        pdw.finish_doc()
        self._added = True
        self.docnum += 1

    @property
    def postings(self) -> int:
        """Postings added so far (a caller starts a new segment past some size)."""
        return self.pool.count

    def _flush_segment(self):
        self.perdocwriter.close()
        level = self.codec._compression
        fw = self.fieldwriter
        groups = self.pool.groups
        lastfield = None
        lengths = None
        for fieldname, tbytes in sorted(groups):
            if fieldname != lastfield:
                if lastfield is not None:
                    fw.finish_field()
                fw.start_field(fieldname, self.schema[fieldname])
                lastfield = fieldname
                lengths = self._field_lengths(fieldname)
            postings = groups[fieldname, tbytes]
            postings.sort()
            fw.start_term(tbytes)
            pw = fw._postwriter
            for i in range(0, len(postings), BLOCK_LIMIT):
                if i:
                    pw._write_block()
                chunk = postings[i:i + BLOCK_LIMIT]
                # zlib gains nothing on a block of a few postings and costs ~20 µs a term (a
                # long article has 100k terms); readers take the level from each block's header.
                pw._compression = level if len(chunk) >= MIN_COMPRESSED_POSTINGS else 0
                _fill_block(pw, chunk, lengths)
            fw.finish_term()
        if lastfield is not None:
            fw.finish_field()
        fw.close()

    def _field_lengths(self, fieldname):
        known = self._lengths.get(fieldname)
        if known is not None and len(known) == self.docnum - self.docbase:
            return known.get
        pdr = self.codec.per_document_reader(self.storage, self.get_segment())
        return lambda docnum: pdr.doc_field_length(docnum, fieldname)

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
        segments = self._merge_segments(MERGE_SMALL if merge_small else NO_MERGE, False, False)
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


def _fill_block(pw, chunk, lengths):
    """Load one block of (docnum, weight, vbytes) into a W3PostingsWriter's buffer,
    with the statistics its add_posting() would have gathered."""
    pw._ids = array("I", [p[0] for p in chunk])
    pw._weights = weights = array("f", [p[1] for p in chunk])
    pw._values = [p[2] for p in chunk if p[2]]
    pw._maxweight = max(weights)
    lens = [n for n in map(lengths, pw._ids) if n]
    pw._minlength = min(lens) if lens else None
    pw._maxlength = max(lens) if lens else 0


def compressed_bytes_writer(dbfile, compress):
    """Whoosh's compressed-bytes column writer with ``compress(data, level)`` in place of zlib's."""
    writer = CompressedBytesColumn.Writer(dbfile, 0, "zlib")
    writer._compress = compress
    return writer


def latest_generation(path) -> int:
    """The generation of the newest TOC in the index directory ``path`` (-1: none),
    from the file names alone: cheap enough to poll every second."""
    return TOC._latest_generation(FileStorage(str(path)), _DEF_INDEX_NAME)
