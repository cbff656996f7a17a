"""A grep oracle for the query language, written from the README, not from the engine.

It keeps articles as plain dicts and answers a query by scanning every article's
normalised text: ``t2s(NFKC(text).lower())`` with traditional -> simplified applied
one character at a time (OpenCC), the text the README promises grep semantics on.
Words are what jieba makes of them (each must occur); everything else is
substring tests. It knows nothing of indexes, grams, posting lists or caches.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from dataclasses import dataclass

import jieba
import opencc

from searchsvc.config import DEFAULT_USERDICT

_T2S = opencc.OpenCC("t2s")
_JIEBA = jieba.Tokenizer()
_JIEBA.load_userdict(str(DEFAULT_USERDICT))


@functools.lru_cache(maxsize=None)
def _t2s_char(ch: str) -> str:
    return _T2S.convert(ch)


def norm(text: str) -> str:
    return "".join(_t2s_char(c) for c in unicodedata.normalize("NFKC", text).lower())


def words(text: str) -> list[str]:
    """The words a query word stands for: jieba's tokens of it that hold a letter or digit."""
    return [w for w, _, _ in _JIEBA.tokenize(norm(text), mode="default", HMM=True)
            if any(c.isalnum() for c in w)]


def bigrams(text: str) -> list[str]:
    """A word found nowhere stands for its character pairs (README: relaxed matching)."""
    chars = [c for c in text if not c.isspace()]
    pairs = ["".join(chars[i:i + 2]) for i in range(len(chars) - 1)]
    return pairs if len(pairs) > 1 else [text]


@dataclass
class Doc:
    title: str      # normalised
    text: str       # normalised "title\nbody"
    section: str | None
    day: dt.date | None


def doc(article: dict) -> Doc:
    title = " ".join(article["title"].split())           # README: titles are one line
    sec = article.get("section")
    section = " > ".join(p.strip() for p in sec.split(">") if p.strip()) or None if sec else None
    date = article.get("date")
    return Doc(norm(title), norm(title) + "\n" + norm(article["body"]), section,
               dt.date.fromisoformat(date[:10]) if date else None)


# The query language (README): "phrase", -word, -"phrase", a OR b, title:word.
_TOKEN = re.compile(r'(-(?=[^\s-]))?(?:([A-Za-z_]+):)?(?:"([^"]*)(?:"|$)|([^\s"]+))')


@dataclass
class Clause:
    text: str
    phrase: bool
    title: bool


def parse(q: str):
    """(groups of alternatives, excluded clauses)."""
    groups, excluded, pending_or, pos = [], [], False, 0
    while pos < len(q):
        if q[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:
            pos += 1
            continue
        pos = m.end()
        neg, field, phrase, word = m.groups()
        if field is not None and field.lower() != "title":
            phrase, word = (None, f"{field}:{word}") if phrase is None else (f"{field}:{phrase}", None)
            field = None
        if word == "OR" and not neg and field is None:
            pending_or = bool(groups)
            continue
        if word is not None and set(word) == {"-"}:
            continue
        text = phrase if phrase is not None else word
        if not text or not text.strip():
            continue
        clause = Clause(text, phrase is not None, field is not None)
        if neg:
            excluded.append(clause)
            pending_or = False
        elif pending_or:
            groups[-1].append(clause)
            pending_or = False
        else:
            groups.append([clause])
    return groups, excluded


def units(clause: Clause) -> list[str]:
    """What must occur for a clause: the normalised phrase, or each of the word's words."""
    if clause.phrase:
        text = norm(clause.text)
        return [text] if text.strip() else []
    return list(dict.fromkeys(words(clause.text)))


def holds(d: Doc, texts: list[str], title: bool) -> bool:
    where = d.title if title else d.text
    return all(t in where for t in texts)


def in_filters(d: Doc, sections, date_from, date_to) -> bool:
    if sections and not (d.section and any(d.section == p or d.section.startswith(p + " > ")
                                           for p in sections)):
        return False
    if date_from or date_to:
        if d.day is None or (date_from and d.day < date_from) or (date_to and d.day > date_to):
            return False
    return True


def search(articles: dict[str, dict], q: str, sections=(), date_from=None, date_to=None) -> tuple[set, bool]:
    """(ids the query selects, whether it was relaxed)."""
    docs = {i: doc(a) for i, a in articles.items()}
    groups, excluded = parse(q)
    alternatives = [[(units(c), c.title) for c in g] for g in groups]
    alternatives = [[a for a in g if a[0]] for g in alternatives]
    if groups and not any(alternatives):                        # only punctuation
        return set(), False
    alternatives = [g for g in alternatives if g]
    ok = {i for i, d in docs.items() if in_filters(d, sections, date_from, date_to)}

    def strict(i):
        return all(any(holds(docs[i], u, t) for u, t in g) for g in alternatives)

    chosen = {i for i in ok if strict(i)}
    relaxed = False
    if alternatives and not chosen and not any(strict(i) for i in docs):
        # Relaxed (README): phrases, OR groups must still match; at least half the words do.
        plain, required = [], []
        for g, raw in zip(alternatives, [g for g in groups if any(units(c) for c in g)]):
            if len(g) == 1 and not raw[0].phrase:
                plain += [(w, g[0][1]) for w in g[0][0]]
            else:
                required.append(g)
        expanded = []
        for w, title in plain:
            found = any(holds(d, [w], title) for d in docs.values())
            expanded += [(w, title)] if found else [(b, title) for b in bigrams(w)]
        if len(expanded) >= 2:
            need = max(1, math.ceil(len(expanded) / 2))
            chosen = {i for i in ok
                      if all(any(holds(docs[i], u, t) for u, t in g) for g in required)
                      and sum(holds(docs[i], [w], t) for w, t in expanded) >= need}
            relaxed = True
    for c in excluded:
        u = units(c)
        if u:
            chosen = {i for i in chosen if not holds(docs[i], u, c.title)}
    return chosen, relaxed
