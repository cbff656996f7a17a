"""Pinyin keys of Chinese text, for completion and homophone correction.

pypinyin supplies the readings. A character with several readings (行: xing,
hang) contributes each, so a word has a few keys rather than one guessed one:
typing ``yinhang`` must find 银行 whatever the default reading of 行 is.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from .config import environ_defaults

# pypinyin's documented switches, read from the environment at its import: we only look
# up single characters, so its phrase table (~45 MB in every worker) and its defensive
# dict copies are not needed. Single-character readings are the same with and without them.
PYPINYIN_SWITCHES = {"PYPINYIN_NO_PHRASES": "1", "PYPINYIN_NO_DICT_COPY": "1"}

with environ_defaults(PYPINYIN_SWITCHES):     # where the environment does not set them
    from pypinyin import Style, pinyin

MAX_KEYS = 4     # reading combinations kept per text (memory: most words have one)


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@lru_cache(maxsize=65536)
def readings(ch: str) -> tuple[str, ...]:
    """Toneless readings of one character (the character itself if not Han)."""
    if not is_han(ch):
        return (ch.lower(),)
    return tuple(dict.fromkeys(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])) or (ch,)


def keys(text: str, initials: bool = False) -> list[str]:
    """Pinyin spellings of ``text`` (spaces dropped), full or initials only."""
    parts = [readings(ch) for ch in text if not ch.isspace()]
    if initials:
        parts = [tuple(dict.fromkeys(r[0] for r in p)) for p in parts]
    out = []
    for combo in itertools.islice(itertools.product(*parts), MAX_KEYS):
        out.append("".join(combo))
    return out


def looks_like_pinyin(text: str) -> bool:
    return bool(text) and text.isascii() and text.replace(" ", "").isalpha()
