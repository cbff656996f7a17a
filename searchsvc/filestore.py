"""Whoosh file storage that reads with ``os.pread`` instead of mmap.

Whoosh 2.7.4 opens each compound segment with mmap and then wraps every file
in it as ``BufferFile(memoryview)``, whose ``BytesIO`` *copies* the slice: a
reader of the full corpus held a private copy of all postings, terms and
columns (~215 MB per gunicorn worker). Even without that copy, mmap'd pages
count in every worker's RSS. Positional reads share the kernel's page cache
between workers without either cost, and, unlike Whoosh's seek-then-read
``SubFile``, are safe when several threads read one file.
"""

from __future__ import annotations

import os

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import StructFile


class _Fd:
    """An open descriptor closed when its last user is gone (a reader being
    replaced may still be answering a request when its index closes)."""

    fd = None

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass


READAHEAD = 16384    # small sequential reads (pickled block headers) come from one pread


class _PreadIO:
    """File-like view of ``length`` bytes at ``offset``, with its own position and a
    read-ahead buffer (``pickle.load`` reads a byte or a line at a time)."""

    def __init__(self, fd: _Fd, offset: int, length: int):
        self._fd, self._offset, self._length, self._pos = fd, offset, length, 0
        self._buf, self._buf_pos = b"", 0

    def read(self, n: int | None = -1) -> bytes:
        left = self._length - self._pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0:
            return b""
        i = self._pos - self._buf_pos
        if not (0 <= i and i + n <= len(self._buf)):
            if n >= READAHEAD:
                data = os.pread(self._fd.fd, n, self._offset + self._pos)
                self._pos += len(data)
                return data
            i = self._fill()
        data = self._buf[i:i + n]
        self._pos += len(data)
        return data

    def peek(self, n: int = 1) -> bytes:
        """Buffered bytes from the position on, without moving it. ``pickle.load`` uses
        it to prefetch and then reads what it consumed: two calls per pickled block
        header instead of one ``read`` per opcode (about twenty)."""
        i = self._pos - self._buf_pos
        if not (0 <= i < len(self._buf)):
            i = self._fill()
        return self._buf[i:]

    def _fill(self) -> int:
        """Read ahead from the position (never past the end); the position's index in the buffer."""
        self._buf = os.pread(self._fd.fd, max(0, min(READAHEAD, self._length - self._pos)),
                             self._offset + self._pos)
        self._buf_pos = self._pos
        return 0

    def readline(self, size: int = -1) -> bytes:   # pickle.load needs it
        out = b""
        while size < 0 or len(out) < size:
            chunk = self.read(256 if size < 0 else min(256, size - len(out)))
            if not chunk:
                break
            i = chunk.find(b"\n")
            if i >= 0:
                self._pos -= len(chunk) - i - 1
                return out + chunk[:i + 1]
            out += chunk
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = max(0, (0, self._pos, self._length)[whence] + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        pass


class PreadFile(StructFile):
    """A read-only StructFile whose ``get`` is one positional read."""

    def __init__(self, fd: _Fd, offset: int, length: int, name=None):
        super().__init__(_PreadIO(fd, offset, length), name=name)
        self._fd, self._offset, self._length, self._label = fd, offset, length, name

    def get(self, position: int, length: int) -> bytes:
        length = max(0, min(length, self._length - position))
        return os.pread(self._fd.fd, length, self._offset + position)

    def subset(self, position: int, length: int, name=None) -> "PreadFile":
        return PreadFile(self._fd, self._offset + position, length, name=name or self._label)


class PreadFileStorage(FileStorage):
    """FileStorage whose files open as :class:`PreadFile` (writes are unchanged)."""

    supports_mmap = False

    def __init__(self, path, readonly=False, debug=False):
        super().__init__(path, supports_mmap=False, readonly=readonly, debug=debug)

    def open_file(self, name, **kwargs):
        path = os.path.abspath(os.path.join(self.folder, name))   # as FileStorage._fpath
        return PreadFile(_Fd(path), 0, os.path.getsize(path), name=name)
