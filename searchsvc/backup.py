"""Snapshots (the backup path): a consistent, verified copy of the live generation
plus the journal, taken while the service runs, and bringing one back.

A snapshot directory holds ``index/`` (the Whoosh files of the live generation),
``journal.log`` and ``snapshot.json`` (documents, journal size and last sequence
number, checksums of every file). It is taken holding the write gate exclusively
and the journal lock, so no write or rebuild swap lands mid-copy (writes wait,
or get 503 + Retry-After past ``SEARCHSVC_WRITE_LOCK_WAIT``), then verified by
opening the copy and comparing its document count and journal with the live ones.

Restoring is also how a read replica takes a new generation from the writer host:
the snapshot is shipped (rsync, scp), then restored on the replica while it serves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from whoosh import index as whoosh_index

from .analysis import ANALYSIS_VERSION
from .journal import JOURNAL, LEGACY, Journal, parse
from .schema import SCHEMA_VERSION
from .store import IndexMissing, IndexStore, fsync_dir, fsync_tree

MANIFEST = "snapshot.json"


class BackupError(Exception):
    """A snapshot that cannot be written, read or verified."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy_files(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file():
            shutil.copyfile(p, dest / p.name)
    fsync_tree(dest)


def _documents(index_dir: Path) -> int:
    ix = whoosh_index.open_dir(str(index_dir))
    try:
        return ix.doc_count()
    finally:
        ix.close()


def _journal_figures(path: Path) -> tuple[int, int]:
    data = path.read_bytes() if path.exists() else b""
    records, end = parse(data, name=str(path))
    if end != len(data):
        raise BackupError(f"{path}: {len(data) - end} bytes after the last valid record")
    return len(data), max((r.seq for r in records if r.seq is not None), default=0)


def verify(snap: Path) -> dict:
    """The manifest of the snapshot in ``snap`` after checking every file against it."""
    try:
        manifest = json.loads((snap / MANIFEST).read_text("utf-8"))
        files = dict(manifest["files"])
        int(manifest["documents"]), int(manifest["journal_bytes"]), int(manifest["journal_last_seq"])
    except (OSError, ValueError):
        raise BackupError(f"no snapshot in {snap} (its {MANIFEST} is missing or unreadable)") from None
    except (KeyError, TypeError):
        raise BackupError(f"no snapshot in {snap} (its {MANIFEST} is not a snapshot manifest)") from None
    if JOURNAL not in files or not any(name.startswith("index/") for name in files):
        raise BackupError(f"no snapshot in {snap} (its {MANIFEST} lists no index or no journal)")
    for name, digest in files.items():
        path = snap / name
        if not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"snapshot {snap}: {name} is missing or differs from the manifest")
    try:
        documents = _documents(snap / "index")
    except Exception as e:   # whoosh raises several types for damaged files
        raise BackupError(f"snapshot {snap}: its index cannot be opened: {e}") from None
    if documents != manifest["documents"]:
        raise BackupError(f"snapshot {snap}: {documents} documents, the manifest says {manifest['documents']}")
    if _journal_figures(snap / JOURNAL) != (manifest["journal_bytes"], manifest["journal_last_seq"]):
        raise BackupError(f"snapshot {snap}: the journal differs from the manifest")
    return manifest


def snapshot(root: Path, dest: Path, timeout: float) -> dict:
    """Copy the live generation and journal of the index at ``root`` into ``dest``
    (new or empty), verified; returns the manifest."""
    store, journal, dest = IndexStore(root), Journal(root), Path(dest)
    if not store.exists():
        raise IndexMissing(f"no index in {root}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not empty (a snapshot goes into a new directory)")
    tmp = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex[:6]}")
    try:
        with store.write_gate(exclusive=True, timeout=timeout), journal.locked(timeout=timeout) as log:
            live = store.current_path()
            documents = _documents(live)
            _copy_files(live, tmp / "index")
            if journal.path.exists():
                shutil.copyfile(journal.path, tmp / JOURNAL)
            else:
                (tmp / JOURNAL).touch()
            expected = (log.end, log.seq)
        files = {f"index/{p.name}": _sha256(p) for p in sorted((tmp / "index").iterdir())}
        files[JOURNAL] = _sha256(tmp / JOURNAL)
        manifest = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "source": str(live), "documents": documents, "journal_bytes": expected[0],
                    "journal_last_seq": expected[1], "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
        fsync_tree(tmp)
        verify(tmp)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _servable(store: IndexStore, snap: Path, analysis_meta: dict) -> list[str]:
    """Refuse a snapshot this code cannot read (another schema or analysis chain); return
    what else differs (the user dictionary or the normal forms: queries would be analysed
    unlike the index)."""
    meta = store.meta(snap / "index")
    found = (meta.get("schema_version"), meta.get("analysis_version"))
    if found != (SCHEMA_VERSION, ANALYSIS_VERSION):
        raise BackupError(
            f"snapshot {snap}: its index has schema version {found[0]} and analysis version {found[1]}, "
            f"this searchsvc reads {SCHEMA_VERSION} and {ANALYSIS_VERSION} (run the same searchsvc version "
            f"on every host, or rebuild with this one and take a new snapshot)")
    return store.rebuild_reasons(analysis_meta, snap / "index")


def _copy_checked(snap: Path, files: dict[str, str], dest: Path) -> None:
    """Copy the snapshot's index files named in its manifest into ``dest``, each checked
    against its checksum as it is written (a shipment still being written is refused)."""
    for name, digest in files.items():
        if not name.startswith("index/"):
            continue
        h = hashlib.sha256()
        with open(snap / name, "rb") as src, open(dest / Path(name).name, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != digest:
            raise BackupError(f"snapshot {snap}: {name} changed while it was copied")
    fsync_tree(dest)


def restore(root: Path, snap: Path, timeout: float, analysis_meta: dict | None = None) -> dict:
    """Make the snapshot in ``snap`` the live generation and journal of the index at ``root``.

    Returns its manifest plus ``replaced`` (the generation and journal sequence it took
    the place of) and ``warnings`` (how the snapshot's analysis differs from ``analysis_meta``,
    :meth:`Analysis.index_meta`; none looked for without it)."""
    snap = Path(snap)
    manifest = verify(snap)
    store, journal = IndexStore(root), Journal(root)
    warnings = _servable(store, snap, analysis_meta or {})
    journal_data = (snap / JOURNAL).read_bytes()
    if hashlib.sha256(journal_data).hexdigest() != manifest["files"][JOURNAL]:
        raise BackupError(f"snapshot {snap}: {JOURNAL} changed while it was read")
    Path(root).mkdir(parents=True, exist_ok=True)
    with store.rebuild_lock(timeout=timeout), store.write_gate(exclusive=True, timeout=timeout), \
            journal.locked(timeout=timeout) as log:
        previous = store.current_path()
        replaced = {"generation": previous.name if previous else None, "journal_last_seq": log.seq}
        path = store.new_generation_dir()
        try:
            _copy_checked(snap, manifest["files"], path)
            journal.replace_with(journal_data)
            legacy = Path(root) / LEGACY        # would otherwise be migrated into the restored journal
            if legacy.exists():
                os.replace(legacy, legacy.with_name(LEGACY + ".replaced"))
            fsync_dir(Path(root))
            store.swap(path)
        except BaseException:
            if store.current_path() != path:
                shutil.rmtree(path, ignore_errors=True)
            raise
        log.reload()
        store.remove_stale_generations()
    return {**manifest, "generation": path.name, "replaced": replaced, "warnings": warnings}
