"""The search-box query language.

    残疾人就业政策           words, typed with or without spaces: all must match
    "创先争优活动"           an exact phrase (a substring of title or body, like grep)
    -党校  -"工作会议"       exclude a word or phrase
    残联 OR 残疾人联合会     either side
    title:党建  title:"…"    restrict to titles

Everything else is literal text: ``*``, ``?``, ``~``, ``/…/`` and unknown
``field:`` prefixes are matched as characters, never expanded. An unclosed
quote runs to the end of the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FIELDS = ("title",)
# '-' negates only directly before a word or phrase ("---x" is literal text).
_TOKEN = re.compile(r'(?P<neg>-(?=[^\s-]))?(?:(?P<field>[A-Za-z_]+):)?(?:"(?P<phrase>[^"]*)(?:"|$)|(?P<word>[^\s"]+))')


@dataclass(frozen=True)
class Clause:
    """One unit of the query: words (segmented later) or an exact phrase."""
    text: str
    phrase: bool = False
    field: str | None = None     # None = title and body
    negated: bool = False


@dataclass
class ParsedQuery:
    """A conjunction of disjunctions: every group must match, any clause of a group may."""
    groups: list[list[Clause]] = field(default_factory=list)
    excluded: list[Clause] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.groups

    @property
    def is_plain(self) -> bool:
        """Only words: no phrases, fields, OR or exclusions (what a typo looks like)."""
        return (bool(self.groups) and not self.excluded
                and all(len(g) == 1 and not g[0].phrase and g[0].field is None for g in self.groups))

    def positive_clauses(self) -> list[Clause]:
        return [c for g in self.groups for c in g]


def parse(q: str) -> ParsedQuery:
    """Parse the user's query string (never raises)."""
    result = ParsedQuery()
    pending_or = False
    pos = 0
    q = q or ""
    while pos < len(q):
        if q[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:   # a lone '"' etc.: skip one character
            pos += 1
            continue
        pos = m.end()
        neg, fld, phrase, word = m.group("neg"), m.group("field"), m.group("phrase"), m.group("word")
        if fld is not None and fld.lower() not in FIELDS:
            # Unknown field prefix: keep the whole thing as literal text.
            if phrase is None:
                word = f"{fld}:{word}"
            else:
                phrase = f"{fld}:{phrase}"
            fld = None
        if word == "OR" and not neg and fld is None:
            pending_or = bool(result.groups)
            continue
        if word is not None and word == "-" * len(word):
            continue   # a lone '-'
        text = phrase if phrase is not None else word
        if not text or not text.strip():
            continue
        clause = Clause(text=text, phrase=phrase is not None, field=fld.lower() if fld else None,
                        negated=bool(neg))
        if clause.negated:
            result.excluded.append(clause)
            pending_or = False
        elif pending_or:
            result.groups[-1].append(clause)
            pending_or = False
        else:
            result.groups.append([clause])
    return result


def public_form(parsed: ParsedQuery) -> str | None:
    """What a query may offer to others (popular queries, suggestions): its words and
    phrases without negations, or None for queries with OR or a field. Negated text
    never matched anything, so it is the one part of a query that need not come from
    the index; dropping it only widens what the query finds."""
    if parsed.is_empty or any(len(g) > 1 or g[0].field for g in parsed.groups):
        return None
    return " ".join(f'"{c.text}"' if c.phrase else c.text for c in parsed.positive_clauses())


def render(parsed: ParsedQuery, replace: dict[Clause, str] | None = None) -> str:
    """The query written back in its own language, clauses in ``replace`` by their new text
    (the query as the engine corrected it)."""
    replace = replace or {}

    def clause(c: Clause) -> str:
        text = replace.get(c, c.text)
        text = f'"{text}"' if c.phrase else text
        return ("-" if c.negated else "") + (f"{c.field}:" if c.field else "") + text
    return " ".join([" OR ".join(clause(c) for c in g) for g in parsed.groups]
                    + [clause(c) for c in parsed.excluded])
