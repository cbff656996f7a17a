"""Index files read with pread behave like ordinary files to Whoosh and to pickle."""

import pickle
import threading

from searchsvc.filestore import READAHEAD, PreadFileStorage


def _write(tmp_path, objects):
    storage = PreadFileStorage(str(tmp_path))
    f = storage.create_file("data")
    f.write(b"HEAD")
    for obj in objects:
        f.write_int(len(obj))
        f.write_pickle(obj, protocol=2)
    f.write(b"line one\nline two\n")
    f.close()
    return storage


def test_pickles_ints_and_lines_read_back_in_order(tmp_path):
    objects = [tuple(range(i, i + 128)) for i in range(0, 300 * 128, 128)]   # > READAHEAD in total
    storage = _write(tmp_path, objects)
    f = storage.open_file("data")
    assert f.read(4) == b"HEAD"
    for obj in objects:                      # pickle.load prefetches with peek()
        assert f.read_int() == len(obj)
        assert f.read_pickle() == obj
    assert f.file.readline() == b"line one\n" and f.file.readline() == b"line two\n"
    assert f.read(10) == b"" and f.file.peek() == b""
    f.seek(10**9)                            # past the end: nothing, no error
    assert f.read(1) == b"" and f.file.peek() == b""


def test_positional_reads_and_subfiles_need_no_shared_position(tmp_path):
    storage = _write(tmp_path, [tuple(range(64))])
    f = storage.open_file("data")
    whole = f.get(0, READAHEAD * 4)
    sub = f.subset(4, len(whole) - 4)
    assert sub.get(0, 4) == whole[4:8] and sub.read(4) == whole[4:8]
    errors = []

    def reader():
        for _ in range(2000):
            if f.get(0, len(whole)) != whole:
                errors.append("torn read")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert pickle.loads(whole[8:]) == tuple(range(64))
