"""The contract of :mod:`searchsvc.whoosh_adapter`: what it reads from Whoosh's
internals equals what Whoosh's public reader API returns, segment by segment."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.codec.whoosh3 import W3Codec
from whoosh.filedb.filestore import RamStorage
from whoosh.system import pack_uint

from searchsvc import whoosh_adapter
from searchsvc.postings import TermBlocks
from searchsvc.schema import HEAD_BYTES, build_schema

WORD_FIELDS = ["title", "body", "title_c", "text_c"]


@pytest.fixture(scope="module")
def leaves(engine):
    return [leaf for leaf, _ in engine.view().leaves]


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_field_lengths_equal_doc_field_length(leaves, field):
    for leaf in leaves:
        count = leaf.doc_count_all()
        lengths = whoosh_adapter.field_lengths(leaf, field, count)
        public = [leaf.doc_field_length(d, field) or 0 for d in range(count)]   # None for a length byte 0
        if lengths is None:
            assert not any(public)
        else:
            assert lengths.dtype == np.float32
            assert lengths.tolist() == public


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_term_dictionary_equals_iter_field_and_doc_frequency(leaves, field):
    for leaf in leaves:
        ours = list(whoosh_adapter.term_doc_frequencies(leaf, field))
        assert ours, f"no {field} terms"
        assert ours == [(t, leaf.doc_frequency(field, t)) for t, _ in leaf.iter_field(field)]


def test_column_bytes_equal_column_reader(leaves):
    for leaf in leaves:
        count = leaf.doc_count_all()
        data = whoosh_adapter.column_bytes(leaf, "head", count, HEAD_BYTES)
        assert len(data) == count * HEAD_BYTES
        public = list(leaf.column_reader("head", translate=False))
        assert [data[d * HEAD_BYTES:(d + 1) * HEAD_BYTES] for d in range(count)] == public


@pytest.mark.parametrize("field", WORD_FIELDS)
def test_posting_extent_decodes_to_whooshs_postings(leaves, field):
    leaf = leaves[0]
    terms = [t for t, _ in leaf.iter_field(field)]
    for tbytes in terms[::max(1, len(terms) // 50)]:
        ids, weights = TermBlocks(*whoosh_adapter.posting_extent(leaf, field, tbytes)).decode()
        m = leaf.postings(field, tbytes)
        public = list(m.items_as("weight"))
        assert ids.tolist() == [d for d, _ in public]
        assert weights.tolist() == pytest.approx([w for _, w in public])


def test_posting_extent_of_an_absent_term_is_none(leaves):
    assert whoosh_adapter.posting_extent(leaves[0], "body", "不存在的词语xyz".encode()) is None


# ------------------------------------------------------------ write side

_terms = st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=12, unique=True).map(sorted)
_postings = st.lists(st.tuples(st.integers(0, 5000), st.sampled_from([1.0, 2.0, 3.0, 7.0, 250.0])),
                     min_size=1, max_size=300, unique_by=lambda p: p[0]).map(sorted)


@settings(max_examples=60, deadline=None)
@given(fields=st.lists(st.tuples(st.sampled_from(["body", "id", "text_c"]), _terms), min_size=1, max_size=3,
                       unique_by=lambda f: f[0]).map(sorted),
       lists=st.lists(_postings, min_size=12, max_size=12),
       level=st.sampled_from([1, 3]), every_block=st.booleans())
def test_posting_list_writer_writes_whooshs_bytes(fields, lists, level, every_block):
    """PostingListWriter's .trm and .pst files equal W3FieldWriter's fed one posting at a
    time, with the same compression for every block (Whoosh's writer has one level)."""
    schema = build_schema()
    storage = RamStorage()
    lengths = {d: (d * 7919) % 120_000 for d in range(5001)}    # zero for some, past 255's range for some
    files = []
    for ours in (True, False):
        codec = W3Codec(compression=level if every_block else 0)
        segment = codec.new_segment(storage, "ours" if ours else "whoosh")
        fw = codec.field_writer(storage, segment)
        out = whoosh_adapter.PostingListWriter(fw, level, 128, 1 if every_block else 10_000)
        for fieldname, terms in fields:
            fieldobj = schema[fieldname]
            fixed = fieldobj.format.fixed_value_size()
            rows = [(t, [(d, w, pack_uint(int(w)) if fixed else b"") for d, w in postings])
                    for t, postings in zip(terms, lists)]
            if ours:
                out.start_field(fieldname, fieldobj)
                for t, postings in rows:
                    out.add(t, postings, lengths.get)
                continue
            fw.start_field(fieldname, fieldobj)
            for t, postings in rows:
                fw.start_term(t)
                for d, w, v in postings:
                    fw.add(d, w, v, lengths[d])
                fw.finish_term()
            fw.finish_field()
        out.close() if ours else fw.close()
        files.append([storage.open_file(segment.make_filename(ext)).read() for ext in (".trm", ".pst")])
    assert files[0] == files[1]
