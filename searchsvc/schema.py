"""The Whoosh schema and how one article becomes one document.

Fields:
    id               unique, stored
    title, body      jieba words (frequencies; ranking)
    title_c, text_c  character unigrams + bigrams of the title / of title+body
                     (matching: every query word and phrase must be a substring)
    section          full path ``A > B``, sortable (per-document column)
    date             minutes since 1970-01-01, sortable; undated = ``UNDATED``
    norm             column: normalised ``title\\nbody`` (UTF-8) that substring
                     checks and highlighting read
    head             column: its first HEAD_BYTES, uncompressed; a phrase found
                     there (datelines such as 央视网消息, the title) needs no
                     decompression to be confirmed
    doc              column (pickled, LZ4): the article record (display fields) and
                     the offset map when normalisation changed the text's length
                     (rare); before schema 5, a stored field

Term lists are built by the analysis chain in indexing workers and handed to
Whoosh already counted (``PreCounted``), so the writer does no analysis.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import lz4.block

from whoosh import columns, fields, formats
from whoosh.system import pack_uint
from whoosh.util.numeric import to_sortable

from .analysis import Analysis, gram_terms, token_texts
from .parsing import Article, format_date
from .whoosh_adapter import KeyedCounts, compressed_bytes_reader, compressed_bytes_writer

EPOCH = dt.datetime(1970, 1, 1)
UNDATED = -(2 ** 62)
SCHEMA_VERSION = 6   # 2: the norm column is compressed; 3: the head column; 4: LZ4, not deflate;
                     # 5: the article record in an LZ4 column, not in Whoosh's (deflated) stored fields;
                     # 6: a posting keeps its frequency once, as its weight (Counts, not Frequency)
WORD_CHARS = 100_000  # body characters segmented into words (ranking); grams cover all of it
HEAD_BYTES = 160     # head column: the first bytes of the normalised text (~50 CJK characters)


class Lz4BytesColumn(columns.CompressedBytesColumn):
    """Whoosh's compressed bytes column with LZ4 instead of deflate. Confirming a phrase
    may read thousands of articles: LZ4 decompresses one in ~1 µs where zlib takes ~8,
    for a third more bytes in this column (+6 MB on the shared corpus). Its class path
is pickled into every index's TOC: it must stay ``searchsvc.schema.Lz4BytesColumn``."""

    def __init__(self):
        super().__init__(level=0, module="zlib")    # the module is replaced below

    def writer(self, dbfile):
        return compressed_bytes_writer(dbfile, _lz4_compress)

    def reader(self, dbfile, basepos, length, doccount):
        return compressed_bytes_reader(dbfile, basepos, length, doccount, lz4.block.decompress)


LZ4_HC_MAX_BYTES = 1 << 20   # longer texts are compressed in LZ4's default mode


def _lz4_compress(data: bytes, _level: int) -> bytes:
    # high_compression: 5 % smaller than the fast mode for 0.1 s more per corpus, decompression as
    # fast; but ~60 ms a MB, which a single very long article's write would wait for (0.3 s for 5 MB)
    return lz4.block.compress(data, mode="high_compression" if len(data) <= LZ4_HC_MAX_BYTES else "default")


def date_to_minutes(value: dt.datetime | None) -> int:
    if value is None:
        return UNDATED
    return int((value - EPOCH).total_seconds() // 60)


def minutes_to_date(minutes: int) -> dt.datetime | None:
    return None if minutes == UNDATED else EPOCH + dt.timedelta(minutes=int(minutes))


class Counts(formats.Format):
    """A term's frequency in a document, kept as its posting's weight and nothing else.

    Whoosh's ``Frequency`` format stores it twice: as the weight and as a 4-byte value
    per posting, which no reader here uses (nor Whoosh's scoring: it reads weights).
    Without the value a W3 block holds ``None`` in its place, as for an ``ID`` field:
    about a sixth of the index. There is no ``decode_frequency``/``decode_weight`` on
    purpose (a value cannot give them): read a matcher's ``weight()``. Its class path
    is pickled into every index's TOC: it must stay ``searchsvc.schema.Counts``."""

    posting_size = 0

    def __init__(self, field_boost=1.0):
        self.field_boost = field_boost
        self.options = {}


class PreCounted(fields.FieldType):
    """A scorable term-frequency field (:class:`Counts`) whose value is already a list of
    ``(term_bytes, freq, weight, value_bytes)`` (see :func:`count_terms`), or a
    ``whoosh_adapter.KeyedCounts`` (the character grams: arrays, grouped with one sort).

    Whoosh's own fields run their analyzer inside the writer; ours run in
    worker processes so that segmentation uses every core.
    """

    precounted = True   # FastSegmentWriter hands these to its pool whole (grouped once a second document arrives)

    def __init__(self, analyzer=None, field_boost=1.0):
        self.format = Counts(field_boost=field_boost)
        self.analyzer = analyzer
        self.scorable = True
        self.stored = False
        self.unique = False
        self.vector = None
        self.column_type = None

    def index(self, value, **kwargs):
        if isinstance(value, str):     # convenience for ad-hoc writers and tests
            value = count_terms(t.text for t in self.analyzer(value))
        elif isinstance(value, KeyedCounts):     # (Whoosh's own writer)
            value = value.items()
        return value


def count_terms(texts) -> list[tuple[bytes, int, float, bytes]]:
    return counted_terms(Counter(texts).items())


def counted_terms(counts) -> list[tuple[bytes, int, float, bytes]]:
    # (the value, the frequency's 4 bytes, is written only into an index of schema 5)
    return [(t.encode("utf-8"), n, float(n), pack_uint(n)) for t, n in counts]


def build_schema() -> fields.Schema:
    return fields.Schema(
        id=fields.ID(stored=True, unique=True),
        title=PreCounted(),
        body=PreCounted(),
        title_c=PreCounted(),
        text_c=PreCounted(),
        section=fields.ID(sortable=True),
        # The column holds Whoosh's unsigned "sortable" form, so its default must too.
        date=fields.NUMERIC(int, bits=64, signed=True,
                            sortable=columns.NumericColumn("Q", default=to_sortable(int, 64, True, UNDATED))),
        norm=fields.COLUMN(Lz4BytesColumn()),   # about 3/4 of the raw text's size
        head=fields.COLUMN(columns.FixedBytesColumn(HEAD_BYTES)),
        # Every hit reads its record: ~16 µs from this column, ~28 µs from Whoosh's zlib'd stored fields
        doc=fields.COLUMN(columns.PickleColumn(Lz4BytesColumn())),
    )


def document(article: Article, analysis: Analysis) -> dict:
    """The Whoosh fields of one article (runs the analysis chains)."""
    norm_title = analysis.normalizer(article.title)        # (a hit's title is highlighted from it)
    norm_body, body_offsets = analysis.normalizer.with_offsets(article.body)
    norm_text = norm_title + "\n" + norm_body
    words = analysis.words
    grams = analysis.chars
    stored = article.to_json()
    if body_offsets is not None:    # where a match in the normalised body is in the original
        stored["_offsets"] = body_offsets.to_stored()
    doc = {
        "id": article.id,
        "title": count_terms(token_texts(words, norm_title)),
        # Words rank and prove matches, grams find them: a very long body is segmented
        # only at its start (bounded indexing time), while every gram of it is indexed.
        "body": count_terms(token_texts(words, norm_body[:WORD_CHARS])),
        "title_c": KeyedCounts(*grams.gram_keys(norm_title), gram_terms),
        "text_c": KeyedCounts(*grams.gram_keys(norm_text), gram_terms),
        "norm": norm_text.encode("utf-8"),
        "head": head_bytes(norm_text),
        "doc": stored,
    }
    if article.section:
        doc["section"] = article.section
    if article.date is not None:
        doc["date"] = date_to_minutes(article.date)
    return doc


def head_bytes(norm_text: str) -> bytes:
    """The first HEAD_BYTES of the UTF-8 text, cut at a character boundary, NUL-padded."""
    data = norm_text.encode("utf-8")[:HEAD_BYTES]
    data = data.decode("utf-8", "ignore").encode("utf-8")
    return data + b"\0" * (HEAD_BYTES - len(data))


def stored_article(stored: dict, leave_out: frozenset = frozenset()) -> dict:
    """The public article record from a stored ``doc`` value, without the fields ``leave_out``."""
    return {k: v for k, v in stored.items() if k[0] != "_" and k not in leave_out}


__all__ = ["build_schema", "document", "date_to_minutes", "minutes_to_date", "format_date", "UNDATED"]
