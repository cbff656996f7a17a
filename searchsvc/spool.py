"""Articles parked in a temporary file between reading the input and indexing it.

A rebuild reads every input before it indexes (a later line with the same id wins,
and workers get contiguous shares). Held in memory, the articles grew the indexing
parent with the archive (0.76 GB at ten times the shared corpus, ~4 GB at 10^6
articles); parked here, the parent keeps only ids and file offsets, and the workers
read their batches from the file themselves.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from .parsing import Article

_LENGTH = 8     # bytes of the length before each record


class Spool(Sequence):
    """A sequence of articles in an unlinked temporary file under ``directory``
    (nothing is left behind, even by kill -9). ``add`` an article; one whose id was
    added before replaces it in its place (a later line wins). Reading, from any
    process that inherited the file (fork), goes by offset (``os.pread``).

    Writes are unbuffered: a forked process inherits no pending bytes to write again.
    ``len()`` fixes the order of the records; call it before forking readers, so that
    they share that array instead of each building its own."""

    def __init__(self, directory: str | os.PathLike):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory, prefix=".spool-", buffering=0)
        self._end = 0
        self._at: dict[str, int] = {}       # id -> offset of its latest record
        self._record_offsets: array | None = None

    def add(self, article: Article) -> None:
        data = pickle.dumps(article, pickle.HIGHEST_PROTOCOL)
        record = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
        while record:
            record = record[self._file.write(record):]
        self._at[article.id] = self._end
        self._end += _LENGTH + len(data)
        self._record_offsets = None

    @property
    def ids(self) -> list[str]:
        return list(self._at)

    def __len__(self) -> int:
        return len(self._frozen())

    def __getitem__(self, index):
        offsets = self._frozen()[index]
        if isinstance(index, slice):
            return [self._read(offset) for offset in offsets]
        return self._read(offsets)

    def __iter__(self) -> Iterator[Article]:
        for offset in self._frozen():
            yield self._read(offset)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _frozen(self) -> array:
        if self._record_offsets is None:      # (an array: no reference counts for forked readers to copy)
            self._record_offsets = array("q", self._at.values())
        return self._record_offsets

    def _read(self, offset: int) -> Article:
        fd = self._file.fileno()
        header = os.pread(fd, _LENGTH, offset)
        size = int.from_bytes(header, "little")
        data = os.pread(fd, size, offset + _LENGTH)
        if len(header) != _LENGTH or len(data) != size:
            raise OSError(f"spooled article at {offset} is truncated")
        return pickle.loads(data)
