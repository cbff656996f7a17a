"""Writes from the CMS (and `searchsvc delete`): upserts and deletes that survive rebuilds.

One write (a PUT, a DELETE, a whole bulk request) runs under the write gate
(shared; a rebuild's swap takes it exclusively) and the journal lock (one
writer at a time in every process), and there:

1. a write left without outcome by a dead process is rolled forward;
2. its operations are applied in order to the current state to get each
   line's result and the final state per id;
3. the effective operations are appended to the journal (fsynced) with the
   next sequence number, then committed to the index in one Whoosh commit
   (files fsynced); a failed commit cuts the journal record off again;
4. the outcome is journaled and the write acknowledged.

So sequence order is commit order, the journal holds only writes that were
applied (a delete of a missing id changes nothing and is not journaled), and
replaying it in a rebuild reproduces the live index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .analysis import Analysis
from .config import Config
from .indexing import Indexer
from .journal import Journal
from .parsing import Article
from .store import IndexMissing, IndexStore, fsync_tree

log = logging.getLogger("searchsvc.writes")


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
        return self.apply([("put", a) for a in articles])

    def delete(self, ids: list[str]) -> list[WriteResult]:
        return self.apply([("delete", i) for i in ids])

    def apply(self, ops: list[tuple[str, Article | str]]) -> list[WriteResult]:
        """Apply ``("put", article)`` / ``("delete", id)`` in order as one write; a result per op.
        Raises (and nothing was applied) on a busy index, a full disk, a missing index for deletes."""
        if not ops:
            return []
        if all(kind == "delete" for kind, _ in ops) and not self.store.exists():
            raise IndexMissing(f"no index in {self.store.root} (build one with: searchsvc index PATH)")
        if any(kind == "put" for kind, _ in ops):
            self.indexer.analysis.initialize()         # idempotent; the user dictionary is loaded
        wait = self.config.write_lock_wait
        with self.store.write_gate(timeout=wait), self.journal.locked(timeout=wait) as journal:
            self.indexer.roll_forward(journal, wait)
            live = self._existing({x.id if kind == "put" else x for kind, x in ops})
            results, state, effective = [], {}, []
            for kind, x in ops:
                doc_id = x.id if kind == "put" else x
                there = state[doc_id] is not None if doc_id in state else doc_id in live
                if kind == "put":
                    results.append(WriteResult(doc_id, "updated" if there else "created"))
                    state[doc_id] = x
                    effective.append({"op": "put", "article": x.to_json()})
                elif there:
                    results.append(WriteResult(doc_id, "deleted"))
                    state[doc_id] = None
                    effective.append({"op": "delete", "id": doc_id})
                else:
                    results.append(WriteResult(doc_id, "not_found"))
            if effective:
                self._commit(journal, effective, state, wait)
        return results

    def _commit(self, journal, ops: list[dict], state: dict, wait: float) -> None:
        record = journal.intent(ops)
        try:
            if self.store.exists():
                ix = self.store.open()
            else:
                ix = self.store.open_or_create(self.indexer.analysis.index_meta())
            self.indexer.apply_state(ix, state, wait)     # raises only when nothing was committed
        except BaseException:
            journal.cut(record)                          # so the journal must not keep it
            raise
        try:
            self._sync()
        except OSError:   # committed: the write happened, so the answer is no error
            log.exception("write seq %d committed, but fsyncing the index failed", record.seq)
        journal.done(record)

    def _existing(self, ids: set[str]) -> set[str]:
        if not self.store.exists():
            return set()
        ix = self.store.open()
        with ix.searcher() as s:
            return {i for i in ids if s.document_number(id=i) is not None}

    def _sync(self) -> None:
        path = self.store.current_path()
        if path is not None:
            fsync_tree(path)
