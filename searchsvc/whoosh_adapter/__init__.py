"""The one door to Whoosh 2.7.4's private internals: nothing else in searchsvc touches them.

``read`` hands search arrays and bytes a segment at a time (like the narrow
interface of ``whoosh/codec/base.py``); ``write`` holds the segment writer that writes
whole posting lists, the two-step commit, the upserts' merge policy and the TOC generation. ``tests/test_whoosh_adapter.py``
is the contract: each function's output equals what Whoosh's public API gives
(readers, ``SegmentWriter``, ``commit()``, ``FileIndex.latest_generation()``).

Private names relied on (a Whoosh upgrade must keep them or this package must change):

Read side (``read.py``):

- ``whoosh.codec.whoosh3._lenfield``, ``LENGTHS_COLUMN``: the per-field length column
- ``SegmentReader._perdoc`` and ``W3PerDocReader._cached_reader``: that column's reader
- ``whoosh.util.numeric.byte_to_length``: the length byte's decoding (public, undocumented)
- ``SegmentReader._terms`` (a ``W3TermsReader``), its ``items_from`` and ``_postfile``:
  the raw term dictionary and the postings file
- ``SegmentReader._storage`` (an ``OverlayStorage`` with ``b``, the index's storage, for a
  compound segment) and ``FileStorage.folder``: where a file named after a segment goes;
  ``TOC._segment_pattern`` (used by ``clean_files``): such a file is deleted with its segment
- ``W3TermInfo.extent``: where a term's posting list lies (and its ``from_bytes`` bug,
  a 1-tuple length)
- ``FixedBytesColumn.Reader._dbfile``, ``_basepos``, ``_count``: where a fixed-width
  column's rows lie in the segment's column file, and how many were written
- ``CompressedBytesColumn.Reader._decompress``: replaced by LZ4's (``schema.Lz4BytesColumn``),
  and read by ``ColumnRows``
- ``VarBytesColumn.Reader._dbfile``, ``_basepos``, ``_offsets``, ``_lengths`` and
  ``PickleColumn.Reader._child``: where each row of a compressed or pickled column lies
  (``ColumnRows`` reads a row with one call)

Write side (``write.py``):

- ``SegmentWriter._check_state``, ``_check_fields``, ``_added``, ``perdocwriter``,
  ``fieldwriter``, ``docnum``/``docbase``: the state ``add_document`` (copied, minus
  spelling, vectors and field boosts) keeps
- ``SegmentWriter._flush_segment`` (overridden), ``_finalize_segment``,
  ``_close_segment``, ``_merge_segments``, ``_commit_toc``, ``_finish``: the steps of
  ``commit()``, taken separately
- ``W3Codec._compression``: the codec's zlib level
- ``W3Segment(..., segid=)``: a new segment's name (``_Codec.new_segment``)
- ``W3FieldWriter._tindex`` (an ``OrderedHashWriter``: ``dbfile``, ``index``, ``buckets``,
  ``hashtype``, ``lastkey``, ``directory``, ``_write_hashes``, replaced on the instance),
  ``_postfile``, ``_fieldid``: where ``PostingListWriter`` puts term rows and postings
- ``W3TermInfo._struct``: a term row's packed layout; the W3 block layout of
  ``W3PostingsWriter._write_block`` and ``W3TermInfo.to_bytes``, the row layout of
  ``HashWriter.add`` (``filetables._lengths``, ``md5_hash``) and ``filetables._pointer``'s
  slot layout, all reproduced byte for byte
- ``Segment.list_files``, ``Storage.file_length``: a segment's size (upserts leave big ones unmerged)
- ``whoosh.util.numeric.length_to_byte`` as a binary search among ``byte_to_length``'s 256
  lengths: ``write._LENGTH_BYTES`` is built that way (the byte test compares with Whoosh's writer)
- ``CompressedBytesColumn.Writer._compress``: replaced by LZ4's
- ``whoosh.index.TOC._filename``, ``TOC._latest_generation``, ``_DEF_INDEX_NAME``:
  a commit's TOC file and the newest generation, without opening the index

Also relied on, though not private names: the W3 posting block layout that
``postings.TermBlocks`` decodes (its tests compare it with Whoosh's matchers).
"""

from .read import (ColumnRows, column_bytes, compressed_bytes_reader, field_lengths, posting_extent, posting_extents,
                   reader_segment_path, segment_path, term_doc_frequencies)
from .write import (Counted, FastSegmentWriter, GroupingPool, KeyedCounts, PostingArrays, PostingListWriter,
                    compressed_bytes_writer, latest_generation)

__all__ = [
    "ColumnRows", "column_bytes", "compressed_bytes_reader", "field_lengths", "posting_extent", "posting_extents",
    "reader_segment_path", "segment_path", "term_doc_frequencies",
    "Counted", "FastSegmentWriter", "GroupingPool", "KeyedCounts", "PostingArrays", "PostingListWriter",
    "compressed_bytes_writer", "latest_generation",
]
