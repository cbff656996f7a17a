"""Query-time synonyms from a file in Solr's format, reloaded when it changes.

    残联, 残疾人联合会            # equivalent: each finds the others
    党建 => 党的建设              # one-way: 党建 also finds 党的建设
    # comments and blank lines are ignored

Entries are normalised like queries (traditional script, full width, case).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("searchsvc")


def parse_synonyms(text: str, normalize=lambda s: s) -> dict[str, tuple[str, ...]]:
    """``{word: (alternatives...)}`` from the file's text."""
    table: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            left, right = line.split("=>", 1)
            sources = [normalize(w.strip()) for w in left.split(",") if w.strip()]
            targets = [normalize(w.strip()) for w in right.split(",") if w.strip()]
        else:
            sources = targets = [normalize(w.strip()) for w in line.split(",") if w.strip()]
        for s in sources:
            alts = table.setdefault(s, [])
            alts.extend(t for t in targets if t != s and t not in alts)
    return {k: tuple(v) for k, v in table.items() if v}


class Synonyms:
    """The table of one file; ``table()`` rereads the file at most every ``interval`` s if it changed."""

    def __init__(self, path: Path | None, normalize=lambda s: s, interval: float = 1.0):
        self.path, self.normalize, self.interval = path, normalize, interval
        self._table: dict[str, tuple[str, ...]] = {}
        self._stamp = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.table()

    def table(self) -> dict[str, tuple[str, ...]]:
        if self.path is None or time.monotonic() - self._checked < self.interval:
            return self._table
        with self._lock:
            self._checked = time.monotonic()
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8") if stamp else ""
                    self._table = parse_synonyms(text, self.normalize)
                    self._stamp = stamp
                except (OSError, UnicodeDecodeError) as e:   # keep the last good table
                    log.warning("synonyms file %s not reloaded: %s", self.path, e)
        return self._table
