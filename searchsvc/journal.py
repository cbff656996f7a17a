"""The write journal: a crash-safe log of API writes (and `searchsvc delete`) in commit order.

``index/journal.log`` is a sequence of frames, like a LevelDB log::

    <u32 payload length> <u32 crc32 of the length> <u32 crc32 of the payload> <payload: JSON>

Payloads: ``{"t": "head", "id"}`` (first frame; names this file), ``{"t": "w", "seq", "ops"}``
(a write, appended and fsynced *before* its index commit), ``{"t": "ok", "seq"}`` (its outcome:
committed), ``{"t": "cp", "seq", "ops"}`` (checkpoint: the final state per id of every write up
to ``seq``, written by a rebuild) and ``{"t": "abort", "seq"}``. ``ops`` are
``{"op": "put", "article": {...}}`` / ``{"op": "delete", "id": ...}`` in the order applied.

The rule: a ``w`` record is appended under the journal lock, then committed; a failed commit
cuts the record off again before the error is answered; a record left without outcome (the
process died, nothing was answered) is *rolled forward* by the next writer or rebuild. So the
journal holds exactly the writes applied, in commit order, and replay reproduces the live index.

A torn or corrupt tail (a crash or a full disk mid-append) is cut at open and logged; a bad
frame followed by valid ones is corruption and stops replay with :class:`JournalCorrupt`
naming its byte offset. The unframed ``journal.jsonl`` of older versions is migrated on first
use into a checkpoint (renamed ``journal.jsonl.migrated``; lines it cannot read are logged).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import struct
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .parsing import Article, ArticleError, article_from_dict
from .store import IndexStore, fsync_dir

JOURNAL = "journal.log"
LEGACY = "journal.jsonl"
HEADER = struct.Struct("<III")
MAX_RECORD = 1 << 30
CHECKPOINT_OPS = 1000        # ops per checkpoint frame (keeps frames a few MB at most)
log = logging.getLogger("searchsvc.journal")


class JournalCorrupt(Exception):
    """A record in the middle of the journal fails its checksum (not a torn tail)."""


@dataclass
class Record:
    offset: int
    end: int
    kind: str            # head | w | ok | cp | abort
    seq: int | None = None
    ops: list | None = None


def frame(payload: dict) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    length = struct.pack("<I", len(data))
    return HEADER.pack(len(data), zlib.crc32(length), zlib.crc32(data)) + data


def _frame_at(data: bytes, pos: int) -> tuple[dict, int] | None:
    """The valid frame at ``pos`` as (payload, end), or None."""
    if pos + HEADER.size > len(data):
        return None
    length, hcrc, crc = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + length
    if hcrc != zlib.crc32(data[pos:pos + 4]) or length > MAX_RECORD or end > len(data):
        return None
    body = data[pos + HEADER.size:end]
    if zlib.crc32(body) != crc:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return (payload, end) if isinstance(payload, dict) and "t" in payload else None


def parse(data: bytes, base: int = 0, name: str = JOURNAL) -> tuple[list[Record], int]:
    """Records of ``data`` (read from byte ``base`` of the file) and the end of the last valid one.

    A bad frame with a valid one somewhere after it is corruption: :class:`JournalCorrupt`.
    A bad frame with nothing valid after it is a torn tail: parsing stops before it.
    """
    records, pos = [], 0
    while pos < len(data):
        found = _frame_at(data, pos)
        if found is None:
            if any(_frame_at(data, p) for p in range(pos + 1, len(data) - HEADER.size + 1)):
                last = next((r.seq for r in reversed(records) if r.seq is not None), None)
                raise JournalCorrupt(f"{name}: record at byte {base + pos} (after seq {last}) is corrupt "
                                     f"(checksum mismatch) and valid records follow it; restore the "
                                     f"journal from a snapshot (searchsvc restore) or cut it there by hand")
            break
        payload, end = found
        records.append(Record(base + pos, base + end, payload["t"], payload.get("seq"), payload.get("ops")))
        pos = end
    return records, base + pos


def final_state(ops_lists) -> dict[str, Article | None]:
    """id -> the last article put under it, or None when deleted last (ops applied in order)."""
    state: dict[str, Article | None] = {}
    for ops in ops_lists:
        for op in ops:
            if op["op"] == "put":
                article = article_from_dict(op["article"])
                state[article.id] = article
            else:
                state[op["id"]] = None
    return state


def state_ops(state: dict[str, Article | None]) -> list[dict]:
    return [{"op": "put", "article": a.to_json()} if a is not None else {"op": "delete", "id": i}
            for i, a in state.items()]


class Journal:
    """The journal of the index directory ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / JOURNAL
        self._cache: tuple[str | None, int, int, Record | None] | None = None   # head id, end, seq, pending

    # ------------------------------------------------------------ reading
    def _read(self, start: int = 0, size: int = -1) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                return f.read(size)
        except FileNotFoundError:
            return b""

    def records(self, start: int = 0) -> list[Record]:
        """Every valid record from byte ``start`` (a torn tail is left out)."""
        return parse(self._read(start), start)[0]

    def stats(self) -> tuple[int, int]:
        """(size in bytes, last sequence number; 0 when empty). Decoded again only when the
        file changed (a metrics scrape asks every few seconds)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return 0, 0
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if getattr(self, "_stats", (None,))[0] != key:
            self._stats = key, (st.st_size, max((r.seq for r in self.records() if r.seq is not None), default=0))
        return self._stats[1]

    def replay(self, start: int = 0) -> tuple[dict[str, Article | None], int]:
        """(final state of the committed writes and checkpoints from byte ``start``, where to
        go on next time). Stops before a write without outcome: it may still be committing."""
        records = self.records(start)
        outcome = {r.seq: r.kind for r in records if r.kind in ("ok", "abort")}
        state, end = {}, start
        for r in records:
            if r.kind == "w" and r.seq not in outcome:
                break
            if r.kind == "cp" or r.kind == "w" and outcome[r.seq] == "ok":
                try:
                    state.update(final_state([r.ops]))
                except (ArticleError, KeyError, TypeError) as e:
                    raise JournalCorrupt(f"{self.path}: record at byte {r.offset} (seq {r.seq}) "
                                         f"cannot be replayed: {e!r}") from None
            end = r.end
        return state, end

    # ------------------------------------------------------------ writing
    @contextmanager
    def locked(self, timeout: float = 10.0):
        """The journal lock (every writer, in every process), with the log recovered:
        legacy file migrated, torn tail cut. Yields an :class:`Appender`."""
        with IndexStore(self.root).journal_lock(timeout):
            self._migrate_legacy()
            appender = Appender(self, *self._recover())
            try:
                yield appender
            finally:
                self._cache = (appender.head, appender.end, appender.seq, appender.pending)

    def _head_id(self) -> str | None:
        found = _frame_at(self._read(0, 4096), 0)
        return found[0].get("id") if found and found[0]["t"] == "head" else None

    def _recover(self) -> tuple[str | None, int, int, Record | None]:
        """(head id, end of the valid records, last seq, the write without outcome if any);
        a torn tail is cut here. Incremental when this process saw the file last."""
        head = self._head_id()
        size = self.path.stat().st_size if self.path.exists() else 0
        if self._cache is not None and self._cache[0] == head and head is not None and self._cache[1] <= size:
            _, start, seq, pending = self._cache
        else:
            start, seq, pending = 0, 0, None
        records, end = parse(self._read(start), start)
        for r in records:
            if r.seq is not None:
                seq = max(seq, r.seq)
            if r.kind == "w":
                pending = r
            elif r.kind in ("ok", "abort") and pending is not None and r.seq == pending.seq:
                pending = None
        if size > end:
            log.warning("%s: cut a torn tail of %d bytes at byte %d (a write that was never "
                        "acknowledged; last seq %d)", self.path, size - end, end, seq)
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        return head, end, seq, pending

    def _migrate_legacy(self) -> None:
        legacy = self.root / LEGACY
        if not legacy.exists():
            return
        self._recover()                # a torn tail of the new log is cut (and logged) first
        state: dict[str, Article | None] = {}
        for n, line in enumerate(legacy.read_bytes().splitlines(), 1):
            try:
                rec = json.loads(line)
                if rec["op"] == "put":
                    art = dict(rec["article"])
                    if isinstance(art.get("date"), str):     # old writes stored year 1 as "1-01-01"
                        art["date"] = re.sub(r"^(\d{1,3})-", lambda m: m[1].zfill(4) + "-", art["date"])
                    article = article_from_dict(art)
                    state[article.id] = article
                elif rec["op"] == "delete":
                    state[str(rec["id"])] = None
                else:
                    raise ValueError(f"unknown op {rec['op']!r}")
            except (ValueError, KeyError, TypeError, ArticleError) as e:
                log.warning("%s:%d: not migrated (%s)", legacy, n, e)
        self._rewrite(state, 0, prepend=True)
        os.replace(legacy, legacy.with_name(LEGACY + ".migrated"))
        fsync_dir(self.root)
        log.warning("%s: migrated %d ids into %s", legacy, len(state), self.path)

    def _rewrite(self, state: dict[str, Article | None], seq: int, prepend: bool = False) -> None:
        """Atomically replace the log by a new head and checkpoint frames of ``state``
        (followed by the current records when ``prepend``: a migration)."""
        ops = state_ops(state)
        data = b"".join(frame({"t": "cp", "seq": seq, "ops": ops[i:i + CHECKPOINT_OPS]})
                        for i in range(0, len(ops), CHECKPOINT_OPS))
        self.replace_with(data + (self._read() if prepend else b""))

    def replace_with(self, data: bytes) -> None:
        """Atomically make the frames of ``data`` the log, under a new head (a process that
        knew the old file reads the new one from its start)."""
        records = parse(data)[0]
        data = frame({"t": "head", "id": uuid.uuid4().hex, "format": 1}) + b"".join(
            data[r.offset:r.end] for r in records if r.kind != "head")
        tmp = self.path.with_name(JOURNAL + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.root)
        self._cache = None


class Appender:
    """The journal while its lock is held: append writes and their outcomes."""

    def __init__(self, journal: Journal, head: str | None, end: int, seq: int, pending: Record | None):
        self.journal, self.head, self.end, self.seq, self.pending = journal, head, end, seq, pending

    def intent(self, ops: list[dict]) -> Record:
        """Append a write (fsynced) before it is committed; returns its record."""
        if self.head is None:
            head = uuid.uuid4().hex
            self._append(frame({"t": "head", "id": head, "format": 1}))
            self.head = head
        offset = self.end
        self._append(frame({"t": "w", "seq": self.seq + 1, "ops": ops}))
        self.seq += 1
        self.pending = Record(offset, self.end, "w", self.seq, ops)
        return self.pending

    def done(self, rec: Record) -> None:
        """Record that ``rec`` was committed. When even that fails the write stays pending
        and is rolled forward (again: idempotent) by the next writer."""
        try:
            self._append(frame({"t": "ok", "seq": rec.seq}))
            self.pending = None
        except OSError as e:
            log.warning("%s: outcome of seq %d not recorded (%s): it is rolled forward next time",
                        self.journal.path, rec.seq, e)

    def cut(self, rec: Record) -> None:
        """Remove a write whose commit failed (truncate needs no free space)."""
        try:
            with open(self.journal.path, "r+b") as f:
                f.truncate(rec.offset)
                os.fsync(f.fileno())
            self.end, self.seq = rec.offset, rec.seq - 1
        except OSError:
            try:
                self._append(frame({"t": "abort", "seq": rec.seq}))
            except OSError as e:   # the one case a failed write could come back: say so loudly
                log.error("%s: failed write seq %d could not be cut nor marked aborted (%s)",
                          self.journal.path, rec.seq, e)
        self.pending = None

    def checkpoint(self, state: dict[str, Article | None]) -> None:
        """Compact the log to ``state`` (the final state per id of every write in it)."""
        self.journal._rewrite(state, self.seq)
        self.reload()

    def reload(self) -> None:
        """Read the log again (after it was replaced under this lock)."""
        self.journal._cache = None
        self.head, self.end, self.seq, self.pending = self.journal._recover()

    def _append(self, data: bytes) -> None:
        fd = os.open(self.journal.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            written = os.pwrite(fd, data, self.end)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write to {self.journal.path} ({written} of {len(data)} bytes)")
            os.fsync(fd)
        except OSError:
            try:                       # leave no torn frame behind (ftruncate needs no space)
                os.ftruncate(fd, self.end)
            except OSError:
                pass                   # cut at the next open
            raise
        finally:
            os.close(fd)
        if self.end == 0:              # a new file: its directory entry must survive a crash too
            fsync_dir(self.journal.root)
        self.end += len(data)

