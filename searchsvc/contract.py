"""The HTTP API's parameters and limits, declared once.

Each endpoint's parameters are a table of :class:`Param`. ``params.py`` validates
requests (query strings and the ``POST /search`` body) against these tables, and
``openapi.py`` derives the document's parameters, the POST body schema and the
article input schema from them, so the two cannot drift apart. A table of our own
rather than a schema library: the parameters are few and flat, the error must name
the parameter in English and in Chinese, and the limits come from :class:`Config`.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .parsing import ARTICLE_DATE, ID_FORBIDDEN_CATEGORIES, MAX_ID_CHARS

MAX_QUERY_CHARS = 1000
MAX_SUGGEST_CHARS = 100
SORTS = ("relevance", "newest", "oldest")
FORMATS = ("json", "csv")
TYPOS = ("on", "off")
# At least one character that is not whitespace as Python counts it (``str.isspace``, ``str.split``,
# ``re``'s ``\s``). Spelled out: in the OpenAPI document the pattern is ECMA-262's, whose ``\s``
# leaves out U+001C-U+001F and U+0085 (and adds U+FEFF), so ``\S`` there took "\x85" for text.
NOT_BLANK = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
INTEGER = r"^[+-]?[0-9]+$"              # int() alone also takes '1_000' and other scripts' digits
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}   # a query string's spellings


@dataclass(frozen=True)
class Param:
    """One parameter: ``type`` is string, integer, boolean, date or array (a repeatable string)."""

    name: str
    type: str
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | Callable | None = None     # a number, or a function of the Config
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None          # a value must contain a match (JSON Schema semantics)
    required: bool = False

    def upper(self, config) -> int | None:
        return self.maximum(config) if callable(self.maximum) else self.maximum

    def schema(self, config) -> dict:
        """This parameter's JSON Schema (OpenAPI 3.1)."""
        if self.type == "array":
            return {"type": "array", "items": {"type": "string"}}
        if self.type == "date":
            return {"type": "string", "format": "date", "pattern": DATE}
        if self.type == "boolean":      # a query string spells it true/false or 1/0
            return {"type": "boolean", "default": self.default}
        out: dict[str, Any] = {"type": self.type}
        for key, value in (("minimum", self.minimum), ("maximum", self.upper(config)),
                           ("maxLength", self.max_length), ("pattern", self.pattern),
                           ("default", self.default)):
            if value is not None:
                out[key] = value
        if self.required and self.type == "string":
            out["minLength"] = 1
        if self.enum:
            out["enum"] = list(self.enum)
        return out


LIMIT_TEXT = "how many"
SEARCH = (
    Param("q", "string", "query", max_length=MAX_QUERY_CHARS),
    Param("section", "array", "section path or leading part of it; repeat for OR"),
    Param("from", "date", "first day (inclusive)"),
    Param("to", "date", "last day (inclusive)"),
    Param("sort", "string", "order", "relevance", enum=SORTS),
    # The deepest page at the largest page size stays within the result window, so any page
    # and per_page the document allows can be answered (a product limit cannot be declared).
    Param("page", "integer", "1-based page", 1, 1, lambda c: c.max_result_window // c.max_per_page),
    Param("per_page", "integer", "hits per page", 10, 1, lambda c: c.max_per_page),
    Param("format", "string", "json, or csv: every hit (up to max_export_rows) as id,title,date,section,"
          "source,url, UTF-8 with BOM, as an attachment", "json", enum=FORMATS),
    Param("typos", "string", "on: plain words that look like pinyin-typos (a stretch found in few articles, a "
          "word that sounds the same in many) are searched with those homophones too, ranked below the text "
          "typed (see corrected); off: only the text as typed", "on", enum=TYPOS),
    Param("explain", "boolean", "add each hit's score parts (`explain`): why it ranks where it does", False),
)
ARTICLE = (Param("q", "string", "mark this query's matches in title_html and body_html",
                 max_length=MAX_QUERY_CHARS),)
RELATED = (Param("limit", "integer", LIMIT_TEXT, 5, 1, 50),)
SUGGEST = (Param("q", "string", "what was typed so far", max_length=MAX_SUGGEST_CHARS, pattern=NOT_BLANK,
                 required=True),
           Param("limit", "integer", LIMIT_TEXT, 8, 1, 20))
POPULAR = (Param("days", "integer", "look back this many days", 7, 1, 365),
           Param("limit", "integer", LIMIT_TEXT, 10, 1, 100))

def param(table: tuple[Param, ...], name: str) -> Param:
    return next(p for p in table if p.name == name)


# An article id: the grammar is parsing.check_id's, which the write path applies; this
# pattern says all of it that a JSON Schema pattern can (the forbidden characters, no
# whitespace or '/' at either end), generated from the same character categories.
@functools.lru_cache(maxsize=1)
def id_pattern() -> str:
    # Every code point's category, looked up by C loops (map, numpy): a Python loop over the
    # 1.1 million took 0.8 s, paid in the master before it forks (SearchServer.load).
    forbidden = ID_FORBIDDEN_CATEGORIES - {"Cs"}   # surrogates never reach us (not in UTF-8)
    bad = np.fromiter(map(forbidden.__contains__, map(unicodedata.category, map(chr, range(0x110000)))),
                      dtype=bool, count=0x110000)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], bad, [False])).astype(np.int8)))
    ranges = zip(edges[0::2].tolist(), (edges[1::2] - 1).tolist())      # (first, last) of each run
    char = lambda cp: f"\\x{cp:02x}" if cp < 0x100 else chr(cp)    # noqa: E731  (the rest literally)
    bad_chars = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)
    return rf"^[^\s{bad_chars}/]([^{bad_chars}]*[^\s{bad_chars}/])?$"


def article_id_schema() -> dict:
    return {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": id_pattern(),
            "description": f"1-{MAX_ID_CHARS} characters (compared after NFC), no control, format, surrogate "
                           "or line-separator character, no whitespace or '/' at either end; '/' separates "
                           "segments that are not empty, '.' or '..'; 'bulk' and ids ending in '/related' "
                           "are reserved (other resources' URLs)"}


ARTICLE_TEXT_FIELDS = ("source", "author", "editor", "url")


def article_input_schema(with_id: bool = False) -> dict:
    """An article as sent to the write API. PUT takes the id from the path (a body ``id``
    must equal it); a bulk line carries its own."""
    optional = {k: {"type": ["string", "null"]} for k in ARTICLE_TEXT_FIELDS}
    schema = {"type": "object", "required": ["title", "body"], "properties": optional | {
        "title": {"type": "string", "pattern": NOT_BLANK, "description": "not blank"},
        "body": {"type": "string"},
        "section": {"type": ["string", "null"], "description": "'A > B'", "examples": ["新闻联播 > 国内新闻"]},
        "date": {"type": ["string", "null"], "pattern": "^(?:" + ARTICLE_DATE.pattern + ")?$",
                 "description": "YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS] (an offset or fraction is read as "
                                "local wall time)"}}}
    if with_id:
        schema["required"].append("id")
        schema["properties"]["id"] = article_id_schema()
    return schema


def bulk_schema() -> dict:
    """``POST /articles/bulk``: each element one JSON line, an article or ``{"delete": id}``."""
    delete = {"type": "object", "required": ["delete"], "additionalProperties": False,
              "properties": {"delete": article_id_schema()}}
    return {"type": "array", "items": {"anyOf": [article_input_schema(with_id=True), delete]}}
