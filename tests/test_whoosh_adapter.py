"""The contract of :mod:`searchsvc.whoosh_adapter`: what it reads from Whoosh's
internals equals what Whoosh's public reader API returns, segment by segment."""

import numpy as np
import pytest

from searchsvc import whoosh_adapter
from searchsvc.postings import TermBlocks
from searchsvc.schema import HEAD_BYTES

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
