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

from dataclasses import dataclass

from .analysis import Analysis
from .config import Config
from .indexing import Indexer
from .journal import Journal
from .parsing import Article
from .store import IndexStore, fsync_tree


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
