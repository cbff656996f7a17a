"""Writes from the CMS (and `searchsvc delete`): upserts and deletes that survive rebuilds.

Every write is appended to a journal (``index/journal.jsonl``, fsynced) and
then committed to the live index (segment files and TOC fsynced) before it is
acknowledged. ``--rebuild`` indexes its input files into a new generation,
then, holding the write gate exclusively, replays the whole journal into it
and swaps: a write accepted before or during a rebuild reaches the rebuilt
index. Writers in any process share the gate and are serialised by Whoosh's
own write lock; both waits are bounded (:class:`~searchsvc.store.IndexBusy`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .analysis import Analysis
from .config import Config
from .indexing import Indexer
from .parsing import Article, article_from_dict
from .store import IndexStore, fsync_tree

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


@dataclass
class WriteResult:
    id: str
    result: str          # created | updated | deleted | not_found


class Writer:
    """Upserts and deletes against the index at ``config.index_dir``."""

    def __init__(self, config: Config, analysis: Analysis):
        self.config = config
        self.store = IndexStore(config.index_dir)
        self.indexer = Indexer(config, analysis)
        self.journal = Journal(config.index_dir)

    def upsert(self, articles: list[Article]) -> list[WriteResult]:
        latest = {a.id: a for a in articles}          # the last of repeated ids wins
        with self.store.write_gate(timeout=self.config.write_lock_wait):
            self.journal.append([{"op": "put", "article": a.to_json()} for a in latest.values()])
            existing = self._existing(latest)
            self.indexer.index_articles(list(latest.values()), workers=1,
                                        lock_wait=self.config.write_lock_wait)
            self._sync()
        return [WriteResult(a.id, "updated" if a.id in existing else "created") for a in latest.values()]

    def delete(self, ids: list[str]) -> list[WriteResult]:
        ids = list(dict.fromkeys(ids))
        with self.store.write_gate(timeout=self.config.write_lock_wait):
            self.journal.append([{"op": "delete", "id": i} for i in ids])
            deleted, _ = self.indexer.delete(ids, lock_wait=self.config.write_lock_wait)
            self._sync()
        done = set(deleted)
        return [WriteResult(i, "deleted" if i in done else "not_found") for i in ids]

    def _existing(self, articles: dict) -> set[str]:
        if not self.store.exists():
            return set()
        ix = self.store.open()
        with ix.searcher() as s:
            return {i for i in articles if s.document_number(id=i) is not None}

    def _sync(self) -> None:
        path = self.store.current_path()
        if path is not None:
            fsync_tree(path)
