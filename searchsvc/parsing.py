"""Reading articles: JSON Lines files and page files in the site's text layout.

Every reader yields :class:`Article` or :class:`Skip`; a broken input never
stops a run and never produces half an article.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .config import DEFAULT_SITE_CRUMBS

FIELDS = ("id", "title", "section", "date", "source", "author", "editor", "url", "body")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json.gz", ".ndjson.gz")
PAGE_SUFFIXES = (".txt",)     # in directories; a file named on the command line is always read
SECTION_SEP = " > "           # between the parts of a section path: "国内 > 社会"


@dataclass
class Article:
    id: str
    title: str
    body: str
    section: str | None = None
    date: dt.datetime | None = None
    source: str | None = None
    author: str | None = None
    editor: str | None = None
    url: str | None = None
    date_only: bool = False     # the date was given without a time: shown as YYYY-MM-DD

    def to_json(self) -> dict:
        """The article in the corpus schema (date as ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``)."""
        d = asdict(self)
        del d["date_only"]
        d["date"] = format_date(self.date, self.date_only)
        return d


@dataclass
class Skip:
    where: str      # "file" or "file:line"
    reason: str

    def __str__(self):
        return f"{self.where}: {self.reason}"


class ArticleError(ValueError):
    """An article record that cannot be indexed; the message names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# ----------------------------------------------------------------- values

# What an article's date may look like, checked before parsing (strptime alone would take
# "2024-1-5"), and the API contract's pattern: a calendar day (years 0001-9999, leap days
# included), optionally a time with seconds, fraction and UTC offset (read as local time).
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DAY = (rf"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
        rf"|(?:0[13578]|1[02])-31)|{_LEAP_YEAR}-02-29)")
_TIME = (r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
         r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?")
ARTICLE_DATE = re.compile(_DAY + _TIME)


def parse_date(value) -> dt.datetime | None:
    """ISO date or date-time -> naive datetime at minute precision; None/'' -> None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ArticleError("date", f"date must be a string, got {type(value).__name__}")
    text = value
    if not ARTICLE_DATE.fullmatch(text):
        raise ArticleError("date", f"date {value!r} is not an ISO date (YYYY-MM-DD[THH:MM])")
    try:  # what the pattern admits, fromisoformat reads (3.11); an offset keeps the local wall time
        return dt.datetime.fromisoformat(text).replace(tzinfo=None, second=0, microsecond=0)
    except ValueError:
        raise ArticleError("date", f"date {value!r} is not an ISO date (YYYY-MM-DD[THH:MM])") from None


def format_date(value: dt.datetime | None, date_only: bool = False) -> str | None:
    # isoformat, not strftime: glibc's %Y writes year 1 as "1", which does not parse back.
    if value is None:
        return None
    return value.date().isoformat() if date_only else value.isoformat(timespec="minutes")


def is_date_only(value) -> bool:
    """A date given without a time of day (``YYYY-MM-DD``)."""
    return isinstance(value, str) and len(value.strip()) == 10


MAX_ID_CHARS = 512
# Control, format (zero-width, bidi, soft hyphen), surrogate and line/paragraph separator characters.
ID_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
RESERVED_IDS = ("bulk",)            # /articles/bulk is the bulk endpoint
RESERVED_LAST_SEGMENT = "related"   # /articles/{id}/related lists related articles


def check_id(value: str) -> str:
    """An article id by the id grammar (README, "Article ids"), NFC-normalised; else ArticleError.

    1-512 characters, none of them a control, format (zero-width, bidi), surrogate or
    line-separator character, no whitespace at either end, '/'-separated segments that are not empty, '.' or
    '..', not the reserved ``bulk`` and not ending in the segment ``related``: every id
    has exactly one URL, ``/articles/{id}``, that no route shadows.
    """
    doc_id = unicodedata.normalize("NFC", value)
    if not doc_id or len(doc_id) > MAX_ID_CHARS:
        raise ArticleError("id", f"id must be 1-{MAX_ID_CHARS} characters")
    if doc_id != doc_id.strip():
        raise ArticleError("id", "id may not start or end with whitespace")
    bad = next((c for c in doc_id if unicodedata.category(c) in ID_FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        raise ArticleError("id", f"id may not contain the character U+{ord(bad):04X} "
                                 f"({unicodedata.name(bad, 'unnamed')})")
    segments = doc_id.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise ArticleError("id", "id segments between '/' may not be empty, '.' or '..'")
    if doc_id in RESERVED_IDS or (len(segments) > 1 and segments[-1] == RESERVED_LAST_SEGMENT):
        raise ArticleError("id", f"id {doc_id!r} is reserved (it would be the URL of another resource)")
    return doc_id


def normalize_section(value) -> str | None:
    """'A > B' with single spaces around '>' (also accepts '>' without spaces)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArticleError("section", "section must be a string like 'A > B'")
    parts = [p.strip() for p in value.split(">")]
    parts = [p for p in parts if p]
    return SECTION_SEP.join(parts) or None


def article_from_dict(record) -> Article:
    """Validate one corpus-schema record (id, title, body required)."""
    if not isinstance(record, dict):
        raise ArticleError("", "an article must be a JSON object")
    values = {}
    for name in ("id", "title", "body"):
        value = record.get(name)
        if value is None or value == "" and name != "body":
            raise ArticleError(name, f"missing {name}")
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ArticleError(name, f"{name} must be a string")
        values[name] = value
    values["id"] = check_id(values["id"])
    values["title"] = " ".join(values["title"].split())     # one line: "title\nbody" splits at the first
    if not values["title"]:
        raise ArticleError("title", "missing title")
    for name in ("source", "author", "editor", "url"):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise ArticleError(name, f"{name} must be a string or null")
        values[name] = value.strip() or None if isinstance(value, str) else None
    values["section"] = normalize_section(record.get("section"))
    values["date"] = parse_date(record.get("date"))
    values["date_only"] = values["date"] is not None and is_date_only(record.get("date"))
    for name, value in values.items():
        if isinstance(value, str) and not _encodable(value):   # JSON allows "\ud800"; UTF-8 does not
            raise ArticleError(name, f"{name} holds an unpaired surrogate (not a Unicode character)")
    return Article(**values)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# ----------------------------------------------------------------- JSON Lines

def is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith(JSONL_SUFFIXES)


def read_jsonl(path: Path) -> Iterator[Article | Skip]:
    """Articles of a JSON Lines file (plain or gzip), one per line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                where = f"{path}:{lineno}"
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
                except UnicodeDecodeError:
                    yield Skip(where, "not UTF-8")
                    continue
                except ValueError as e:
                    yield Skip(where, f"invalid JSON ({e.msg})")
                    continue
                try:
                    yield article_from_dict(record)
                except ArticleError as e:
                    yield Skip(where, str(e))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        yield Skip(str(path), f"unreadable ({e})")


# ----------------------------------------------------------------- pages

_BREADCRUMB = re.compile(r"^\s*您当前的位置\s*[:：]\s*(.*)$")
_META = re.compile(r"签发时间\s*[:：]\s*(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*[/日]?\s*"
                   r"(?:(\d{1,2})\s*[:：]\s*(\d{2}))?")
_SOURCE = re.compile(r"来源\s*[:：]\s*(.*?)\s*$")
_EDITOR = re.compile(r"^\s*责任编辑\s*[:：]\s*(.*?)\s*$")
_FOOTER = re.compile(r"^\s*(关于我们\s*[|｜]|-{10,}|—{5,})")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2002\u2003\u2009\ufeff]+")


def decode_page(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312)."""
    if b"\x00" in data:
        raise ValueError("binary file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    raise ValueError("undecodable (neither UTF-8 nor GB18030)")


def _clean(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def parse_page(text: str, page_id: str, site_crumbs: Iterable[str] = DEFAULT_SITE_CRUMBS) -> Article:
    """One page in the site's text layout -> Article (raises ArticleError)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    section = None
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and (m := _BREADCRUMB.match(lines[i])):
        crumbs = [_clean(c) for c in m.group(1).split(">")]
        crumbs = [c for c in crumbs if c]
        site = list(site_crumbs)
        while crumbs and site and crumbs[0] == site[0]:
            crumbs.pop(0)
            site.pop(0)
        section = SECTION_SEP.join(crumbs) or None
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or _META.search(lines[i]) or _FOOTER.match(lines[i]):
        raise ArticleError("title", "no title")
    title = _clean(lines[i])
    i += 1

    date = source = author = editor = None
    has_time = False
    body: list[str] = []
    saw_meta = False
    for raw in lines[i:]:
        line = _clean(raw)
        if _FOOTER.match(raw):
            break
        if not line:
            continue
        if not saw_meta and not body and (m := _META.search(line)):
            saw_meta = True
            y, mo, d, h, mi = m.groups()
            has_time = h is not None
            try:
                date = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0))
            except ValueError:
                raise ArticleError("date", f"bad 签发时间 {m.group(0)!r}") from None
            if s := _SOURCE.search(line):
                source = s.group(1) or None
            continue
        if m := _EDITOR.match(line):
            editor = m.group(1) or None
            continue
        if saw_meta and not body and author is None and raw[:1].isspace() and _looks_like_byline(line):
            author = line
            continue
        body.append(line)
    return article_from_dict({"id": page_id, "title": title, "body": "\n".join(body), "section": section,
                              "date": format_date(date, date_only=not has_time), "source": source, "author": author,
                              "editor": editor})


def _looks_like_byline(line: str) -> bool:
    return len(line) <= 40 and not re.search(r"[。，；！？,;!?]", line)


def page_id(path: Path) -> str:
    """A page's id is its file name without the suffix (``pages/2025/a1.txt`` -> ``a1``): the
    same however the file is reached (named alone or found in any directory above it),
    as the site's own page names are unique. Two pages of one run with the same name are
    reported, not merged (see :func:`read_inputs`)."""
    return path.name[:-len(path.suffix)] if path.suffix else path.name


def read_page(path: Path, site_crumbs=DEFAULT_SITE_CRUMBS) -> Article | Skip:
    try:
        data = path.read_bytes()
    except OSError as e:
        return Skip(str(path), f"unreadable ({e.strerror or e})")
    if not data.strip():
        return Skip(str(path), "empty file")
    try:
        text = decode_page(data)
        return parse_page(text, page_id(path), site_crumbs)
    except ArticleError as e:
        return Skip(str(path), str(e))
    except ValueError as e:
        return Skip(str(path), str(e))


# ----------------------------------------------------------------- any input

def read_inputs(paths: Iterable[str | os.PathLike], site_crumbs=DEFAULT_SITE_CRUMBS) -> Iterator[Article | Skip]:
    """Articles from JSONL files, page files and directories of either (recursively).
    A page whose id another page of this run already has is skipped, naming both files."""
    pages: dict[str, Path] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith(".")
                           and (is_jsonl(q) or q.name.lower().endswith(PAGE_SUFFIXES)))
        elif path.is_file():
            files = [path]
        else:
            yield Skip(str(path), "no such file or directory")
            continue
        for child in files:
            if is_jsonl(child):
                yield from read_jsonl(child)
                continue
            item = read_page(child, site_crumbs)
            if isinstance(item, Article):
                first = pages.setdefault(item.id, child)
                if first != child:
                    item = Skip(str(child), f"duplicate page id {item.id!r} (also {first})")
            yield item
