"""The write journal: every API write (and `searchsvc delete`), appended and fsynced.

``--rebuild`` replays it into the new generation, so writes survive rebuilds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .parsing import Article, article_from_dict

JOURNAL = "journal.jsonl"


class Journal:
    """Append-only JSON Lines of ``{"op": "put", "article": {...}}`` / ``{"op": "delete", "id": ...}``."""

    def __init__(self, root: Path):
        self.path = Path(root) / JOURNAL

    def append(self, records: list[dict]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def final_state(self, start: int = 0) -> tuple[dict[str, Article | None], int]:
        """(id -> the last article written under it, or None when it was deleted last;
        the offset after the last complete line read). Reading stops before a line still
        being appended; a torn line left by a crash (never acknowledged) is skipped."""
        state: dict[str, Article | None] = {}
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return state, start
        data = data[:data.rfind(b"\n") + 1]
        for line in data.splitlines():
            try:
                rec = json.loads(line)
                if rec["op"] == "put":
                    article = article_from_dict(rec["article"])
                    state[article.id] = article
                elif rec["op"] == "delete":
                    state[rec["id"]] = None
            except (ValueError, KeyError, TypeError):
                continue
        return state, start + len(data)
