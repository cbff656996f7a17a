"""Where indexes live on disk: generations, the ``current`` link and metadata.

Layout of an index directory (default ``index/``)::

    index/current -> gen-20261126T132000-1a2b   # symlink, swapped atomically
    index/gen-…/                                # a Whoosh index + searchsvc.json
    index/rebuild.lock                          # one rebuild at a time
    index/write.lock, journal.lock              # writers (shared) vs a swap; one committing writer
    index/journal.log                           # the write journal (journal.py)

``--rebuild`` fills a fresh generation and only then points ``current`` at it,
so readers never see a partial index and a killed rebuild leaves the previous
one in place (its own generation, still marked ``building``, is deleted by the
next). Readers open ``current`` and notice a new generation or a new Whoosh
commit through :meth:`IndexStore.version`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from whoosh import index as whoosh_index

from .analysis import ANALYSIS_VERSION
from .filestore import PreadFileStorage
from .schema import SCHEMA_VERSION, build_schema
from .whoosh_adapter import latest_generation

META = "searchsvc.json"
CURRENT = "current"
BUILDING = "building"     # in a generation until it is swapped in: a killed build's leftovers have it
# Why an index no longer matches the analysis chains (Analysis.index_meta's keys).
CHANGED = {
    "userdict_sha256": "the user dictionary changed",
    "normal_forms_sha256": "the normal forms changed (another Unicode or OpenCC version: the index's "
                           "character grams and stored normal forms differ from the queries')",
}
UNRECORDED = {    # keys an index built by an earlier searchsvc lacks
    "normal_forms_sha256": "the index does not record its normal forms (built by an earlier searchsvc)",
}


class IndexMissing(Exception):
    """No usable index at the configured location."""


class IndexStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------ reading
    def current_path(self) -> Path | None:
        link = self.root / CURRENT
        if link.is_symlink() or link.is_dir():
            target = link.resolve()
            return target if target.is_dir() else None
        if whoosh_index.exists_in(str(self.root)):  # a plain Whoosh directory
            return self.root
        return None

    def exists(self) -> bool:
        path = self.current_path()
        return path is not None and whoosh_index.exists_in(str(path))

    def open(self):
        path = self.current_path()
        if path is None or not whoosh_index.exists_in(str(path)):
            raise IndexMissing(f"no index in {self.root} (build one with: searchsvc index PATH)")
        try:
            return PreadFileStorage(str(path)).open_index()
        except Exception as e:  # whoosh raises several types for damaged files
            raise IndexMissing(f"index in {path} cannot be opened: {e} "
                               f"(rebuild it with: searchsvc index --rebuild PATH)") from e

    def version(self) -> str | None:
        """'<generation dir>:<whoosh commit>', cheap enough to poll every second."""
        path = self.current_path()
        if path is None:
            return None
        gen = latest_generation(path)
        return None if gen < 0 else f"{path.name}:{gen}"

    def meta(self, path: Path | None = None) -> dict:
        path = path or self.current_path()
        try:
            meta = json.loads((path / META).read_text("utf-8")) if path else {}
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}     # (a hand-edited file: as if unreadable)

    def rebuild_reasons(self, analysis_meta: dict, path: Path | None = None) -> list[str]:
        """Why the current index (or the generation in ``path``) does not match this code
        and configuration (``analysis_meta``: :meth:`Analysis.index_meta`)."""
        meta = self.meta(path)
        reasons = []
        if meta.get("schema_version") != SCHEMA_VERSION:
            reasons.append("the index schema changed")
        if meta.get("analysis_version") != ANALYSIS_VERSION:
            reasons.append("the analysis chain changed")
        for key, value in analysis_meta.items():
            if key not in meta and key in UNRECORDED:
                reasons.append(UNRECORDED[key])
            elif meta.get(key) != value:
                reasons.append(CHANGED[key])
        return reasons

    def serving_warnings(self, analysis_meta: dict) -> list[str]:
        """What a server starting on the current index says (``searchsvc serve``, plain
        gunicorn) when it does not match this code and configuration: it starts anyway."""
        if not self.exists():
            return []
        return [f"warning: {reason}: rebuild with 'searchsvc index --rebuild' (the service starts on this index)"
                for reason in self.rebuild_reasons(analysis_meta)]

    # ------------------------------------------------------------ writing
    def create_generation(self, analysis_meta: dict):
        """A new empty Whoosh index in a fresh generation directory (not yet current);
        ``analysis_meta`` (:meth:`Analysis.index_meta`) is recorded in its meta file."""
        path = self.new_generation_dir()
        meta = {"schema_version": SCHEMA_VERSION, "analysis_version": ANALYSIS_VERSION, **analysis_meta,
                "created": dt.datetime.now(dt.timezone.utc).isoformat()}
        (path / META).write_text(json.dumps(meta, indent=1), "utf-8")
        # Read through pread like every index this store opens: Whoosh's mmap path copies what it
        # opens, which a rebuild's read-back of its new segments (view.verify) took 1.4 GB + 2 GB for at x10.
        ix = PreadFileStorage(str(path)).create_index(build_schema())
        return path, ix

    def new_generation_dir(self) -> Path:
        """An empty generation directory, marked as being built until :meth:`swap`."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = self.root / f"gen-{stamp}-{uuid.uuid4().hex[:6]}"
        path.mkdir()
        (path / BUILDING).touch()
        return path

    def open_or_create(self, analysis_meta: dict):
        if self.exists():
            return self.open()
        path, ix = self.create_generation(analysis_meta)
        self.swap(path)
        return ix

    def swap(self, path: Path) -> None:
        """Point ``current`` at ``path`` atomically (rename of a new symlink)."""
        (path / BUILDING).unlink(missing_ok=True)
        fsync_tree(path)
        tmp = self.root / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
        os.symlink(path.name, tmp)
        os.replace(tmp, self.root / CURRENT)
        fsync_dir(self.root)

    def remove_stale_generations(self, keep: int = 1) -> list[Path]:
        """Delete generations never swapped in (a killed build's; call with the rebuild lock
        held), and those other than the current one and the ``keep`` newest before it (a
        worker may still read the previous one for a moment)."""
        current = self.current_path()
        gens = sorted((p for p in self.root.glob("gen-*") if p.is_dir() and p.resolve() != current),
                      key=lambda p: ((p / BUILDING).exists(), _created(p), p.name), reverse=True)
        unfinished = sum((p / BUILDING).exists() for p in gens)
        removed = []
        for p in gens[:unfinished] + gens[unfinished + keep:]:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        return removed

    @contextmanager
    def rebuild_lock(self, timeout: float = 10.0):
        """One rebuild at a time; released by the kernel if the process dies."""
        with self._flock("rebuild.lock", fcntl.LOCK_EX, timeout, "another rebuild of this index is running"):
            yield

    @contextmanager
    def write_gate(self, exclusive: bool = False, timeout: float = 10.0):
        """Shared by writers, exclusive while a rebuild replays the journal and swaps."""
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        with self._flock("write.lock", mode, timeout, "the index is being swapped by a rebuild"):
            yield

    @contextmanager
    def journal_lock(self, timeout: float = 10.0):
        """One writer at a time, in every process: held from the journal record to the commit."""
        with self._flock("journal.lock", fcntl.LOCK_EX, timeout, "another write is being committed"):
            yield

    @contextmanager
    def _flock(self, name: str, mode: int, timeout: float, busy: str):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / name, "a") as f:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise IndexBusy(busy) from None
                    time.sleep(0.05)
            yield

    def size_bytes(self) -> int:
        path = self.current_path()
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path else 0


def _created(gen: Path) -> int:
    """When a generation was created (names have one-second stamps: rebuilds can share one)."""
    try:
        return (gen / META).stat().st_mtime_ns
    except OSError:
        return 0


class IndexBusy(Exception):
    """The index is locked by another writer."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for p in path.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(path)
