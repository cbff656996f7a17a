"""End to end: `searchsvc serve` as a real gunicorn process, queried over a socket."""

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, serving
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.jieba_adapter import load_or_build
from searchsvc.store import IndexStore
from writeutil import cli


@pytest.fixture()
def server(tmp_path):
    with serving(tmp_path / "ix", env={"SEARCHSVC_RELOAD_INTERVAL": "0.2"}) as (base, proc):
        yield base, tmp_path / "ix", proc


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, json.loads(r.read())


def test_serve_builds_the_example_index_and_answers(server):
    base, _, _ = server
    status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
    assert status == 200 and body["total"] >= 1
    assert body["hits"][0]["id"] == "study-session"


def test_serve_with_the_compact_dictionary_built_never_loads_jiebas_own(tmp_path, analysis, config):
    """The master (which here also builds the missing example index) and its workers keep
    jieba's dictionary compact, read from the cache directory: jieba's own dict (~53 MB of
    Python objects every worker would count in its RSS) never loads, so its cache file
    never appears. (Without the compact file, the master loads jieba's dict once to build
    it and lets it go before forking.)"""
    cache = tmp_path / "cache"
    cache.mkdir()
    load_or_build(cache, config.userdict, lambda: analysis.segmenter._jieba)
    with serving(tmp_path / "ix", workers=2, env={"SEARCHSVC_CACHE_DIR": str(cache)}) as (base, _):
        status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
        assert status == 200 and body["hits"][0]["id"] == "study-session"
    assert list(cache.glob("jieba-*.freq")) and not list(cache.glob("jieba*.cache"))


def test_no_gunicorn_control_socket_is_shared_with_other_services(tmp_path):
    """gunicorn's control socket has one default path for every gunicorn of the user: each
    master would take it over from the last, and remove it when it stops (a USR2 upgrade's
    old master too). serve opens none."""
    run = tmp_path / "run"          # where gunicorn would put it: $XDG_RUNTIME_DIR/gunicorn.ctl
    run.mkdir()
    with serving(tmp_path / "ix", workers=1, env={"XDG_RUNTIME_DIR": str(run)}):
        deadline = time.time() + 3  # (it is opened in a thread after the first workers start)
        while time.time() < deadline and not (run / "gunicorn.ctl").exists():
            time.sleep(0.1)
        assert not (run / "gunicorn.ctl").exists()


def _index_files(ix: Path) -> set[str]:
    return {str(p.resolve()) for p in ix.rglob("*") if p.is_file()}


def _open_files(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            out.add(os.readlink(fd))
    return out


def test_workers_pick_up_a_new_index_version_without_restart(server):
    """Every worker, not just one of them, serves the new version: each is seen holding
    the new segment's files open (the service keeps a view's descriptors open)."""
    base, ix, proc = server
    before = _index_files(ix)
    new = ix.parent / "new.jsonl"
    new.write_text(json.dumps({"id": "late-1", "title": "新发布的文章", "body": "服务运行中写入的独特词汇甲乙丙"},
                              ensure_ascii=False) + "\n", "utf-8")
    subprocess.run([sys.executable, "-m", "searchsvc", "index", "--index", str(ix), str(new)], check=True)
    added = _index_files(ix) - before
    assert added
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(workers) == 2
    deadline, reloaded = time.time() + 20, set()
    while time.time() < deadline and len(reloaded) < len(workers):
        status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "独特词汇甲乙丙"}))
        assert body["total"] in (0, 1)
        reloaded |= {pid for pid in workers if _open_files(int(pid)) & added}
        time.sleep(0.05)
    assert reloaded == set(workers)
    for _ in range(10):        # and from then on, whichever worker answers finds it
        assert get(base + "/search?" + urllib.parse.urlencode({"q": "独特词汇甲乙丙"}))[1]["total"] == 1


def test_a_worker_that_exits_is_replaced_and_the_service_keeps_counting(server):
    """gunicorn replaces a worker that left (a timeout, max_requests, a crash): the others and
    the new one keep answering and counting. The worker's exit once removed the metrics
    directory under them, and every request after it failed."""
    base, _, proc = server
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    workers = set(children.read_text().split())
    leaving = workers.pop()
    deadline, sent = time.time() + 60, 0.0
    while time.time() < deadline:
        now = set(children.read_text().split())
        if leaving not in now and len(now) == 2:
            break
        if leaving in now and time.time() - sent > 2:
            # Again if need be: /healthz answered from one worker, and the other may still be
            # starting, with the master's signal handlers, which queue a TERM for nobody
            # (gunicorn installs the worker's own in init_process). Once failed in CI.
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(leaving), signal.SIGTERM)
            sent = time.time()
        time.sleep(0.1)
    else:
        pytest.fail(f"worker {leaving} was not replaced: {now}")
    for _ in range(20):        # whichever worker answers: searches and a scrape
        status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
        assert status == 200 and body["total"] >= 1
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    count = [line for line in text.splitlines()
             if line.startswith('searchsvc_http_requests_total{method="GET",route="/search",status="200"}')]
    assert count and float(count[0].rsplit(" ", 1)[1]) >= 20


def _holding(pid: int, name: str) -> bool:
    """Whether the process holds a file whose path has ``name`` open or mapped."""
    with contextlib.suppress(OSError):
        return any(name in path for path in _open_files(pid)) or name in Path(f"/proc/{pid}/maps").read_text()
    return False


def test_no_process_of_the_service_keeps_a_deleted_generation(server):
    """Rebuilds delete the generation the service started with (the previous one is kept):
    its files must not stay allocated on disk because the master, which serves nothing and so
    never reopens, still holds them. A worker started after that answers from the current one."""
    base, ix, proc = server
    first = IndexStore(ix).current_path().name
    for _ in range(2):
        assert cli("index", "--rebuild", "--index", ix, EXAMPLE_CORPUS).returncode == 0
    assert not (ix / first).exists()
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.time() + 20
    while time.time() < deadline:
        get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))     # (workers reopen on a request)
        holders = [pid for pid in [proc.pid, *map(int, children.read_text().split())] if _holding(pid, first)]
        if not holders:
            break
        time.sleep(0.2)
    assert not holders, f"{holders} (master {proc.pid}) still hold {first}"
    before = set(children.read_text().split())
    leaving = before.pop()
    os.kill(int(leaving), signal.SIGTERM)
    current, deadline = IndexStore(ix).current_path().name, time.time() + 30
    while time.time() < deadline and (leaving in children.read_text().split()
                                      or len(children.read_text().split()) < 2):
        time.sleep(0.1)
    started = set(children.read_text().split()) - before - {leaving}
    assert started, f"worker {leaving} was not replaced"
    new = int(started.pop())
    while time.time() < deadline and not _holding(new, current):
        time.sleep(0.1)     # no request sent: the new worker opens the current version before serving
    assert _holding(new, current)
    for _ in range(10):
        status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
        assert status == 200 and body["hits"][0]["id"] == "study-session"


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def _metrics_dir(workers) -> str:
    """The metrics directory whose counter files the workers have mapped."""
    for pid in workers:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if "/searchsvc-metrics-" in line:
                return os.path.dirname(line.split(None, 5)[5].removesuffix(" (deleted)"))
    pytest.fail(f"workers {workers} map no metrics file")


def _wait(condition, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(what)


def test_usr2_upgrades_the_running_service_in_place(server):
    """gunicorn's binary upgrade, as its docs give it: USR2 starts a new master (the same
    command) beside the old one, then the old one is stopped. The new master counts in its
    own metrics directory: inheriting the old one's, it deleted the old workers' counters,
    and the old master removed the directory under it when it stopped."""
    base, ix, proc = server
    old_workers = _wait(lambda: len(_children(proc.pid)) == 2 and _children(proc.pid), 60,
                        "the fixture's two workers did not start")     # (/healthz answers with the first)
    get(base + "/search?q=x")          # (a worker maps its counter files when it first counts)
    old_metrics = _metrics_dir(old_workers)
    os.kill(proc.pid, signal.SIGUSR2)

    def new_master():
        for pid in _children(proc.pid):
            if pid not in old_workers and len(_children(int(pid))) == len(old_workers):
                return int(pid)     # the re-executed master, once it has forked all its workers
    master = None
    try:
        master = _wait(new_master, 60, "no new master with workers after USR2")
        new_workers = _children(master)
        current = IndexStore(ix).current_path().name
        _wait(lambda: all(_holding(int(w), current) for w in new_workers), 60, "new workers did not open the index")
        for _ in range(10):         # old and new workers both answer now
            status, _ = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
            assert status == 200
        proc.terminate()            # the old master stops with its workers
        proc.wait(timeout=30)
        os.kill(master, signal.SIGHUP)      # and later, new workers (a reload, a replaced worker)
        new_workers = _wait(lambda: set(now := _children(master)).isdisjoint(new_workers)
                            and len(now) == len(new_workers) and now, 60, "the workers were not replaced after HUP")
        for _ in range(20):
            status, body = get(base + "/search?" + urllib.parse.urlencode({"q": "创先争优"}))
            assert status == 200 and body["hits"][0]["id"] == "study-session"
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        count = [line for line in text.splitlines()
                 if line.startswith('searchsvc_http_requests_total{method="GET",route="/search",status="200"}')]
        assert count and float(count[0].rsplit(" ", 1)[1]) >= 20
        assert not Path(old_metrics).exists()
        new_metrics = _metrics_dir(new_workers)
        assert new_metrics != old_metrics and Path(new_metrics).is_dir()
    finally:    # the new master, whatever happened (the fixture stops only the old one)
        started = _descendants(proc.pid) - set(map(int, old_workers))
        for pid in started | ({master} if master else set()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if master:
            _wait(lambda: not Path(f"/proc/{master}").exists()
                  or "zombie" in Path(f"/proc/{master}/status").read_text(), 30, "the new master did not stop")
    assert not Path(new_metrics).exists()


def _descendants(pid: int) -> set[int]:
    """Every process started by ``pid``, and by those (an exited one is left out)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            kids = [int(k) for k in _children(p)]
            out.update(kids)
            todo.extend(kids)
    return out


@pytest.mark.parametrize("settings", [[], ["-c", "python:searchsvc.gunicorn_conf"]], ids=["defaults", "our-conf"])
def test_the_app_runs_under_plain_gunicorn_and_says_when_the_index_needs_a_rebuild(tmp_path, settings):
    """gunicorn's own worker, or ours from gunicorn_conf (which wraps the WSGI app in the
    bridge itself): raw UTF-8 in the URL needs ours."""
    from searchsvc.cli import EXAMPLE_CORPUS, main
    from searchsvc.store import META, IndexStore
    assert main(["index", "--quiet", "--index", str(tmp_path / "ix"), str(EXAMPLE_CORPUS)]) == 0
    meta_file = IndexStore(tmp_path / "ix").current_path() / META       # as an index built before it was recorded
    meta = json.loads(meta_file.read_text("utf-8"))
    del meta["normal_forms_sha256"]
    meta_file.write_text(json.dumps(meta), "utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *settings, "-b", f"127.0.0.1:{port}", "-w", "1",
                             "searchsvc.wsgi:app"], env={**os.environ, "SEARCHSVC_INDEX": str(tmp_path / "ix")},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/search?" + urllib.parse.urlencode({"q": "两学一做"}))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 200 and body["hits"][0]["id"] == "two-learn"
        if settings:
            out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/search?q=两学一做"], capture_output=True,
                                 timeout=30, check=True).stdout
            assert json.loads(out)["hits"][0]["id"] == "two-learn"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert "does not record its normal forms" in output and "searchsvc index --rebuild" in output, output


def test_gunicorn_limits_url_and_header_length(server):
    import http.client
    base, _, _ = server
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/search?q=" + "a" * 20000)
    r = conn.getresponse()
    assert r.status == 414 and json.loads(r.read())["error"]["code"] == "uri_too_long"
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/search?q=x", headers={"X-Big": "b" * 9000})
    r = conn.getresponse()
    assert r.status == 431 and json.loads(r.read())["error"]["code"] == "headers_too_large"


TRIM_PROBE = """
import os
from searchsvc import server
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
blocks = [bytes(1024) for _ in range(40_000)]   # past Python's small-object allocator: glibc's heap
kept = blocks[::64]                              # ...pinned here and there, so the heap cannot shrink by itself
del blocks
before = resident()
released = server._release_free_memory()
print(released, (before - resident()) >> 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_pages_go_back_to_the_system():
    """What ``serve``'s master calls before its workers fork (they would count the heap
    pages glibc keeps free in their RSS): ~40 MB freed in small pieces among live ones
    go back to the system. (A fresh process: the test's own heap is left alone.)"""
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True).stdout
    released, dropped_mb = out.split()
    assert released == "True" and int(dropped_mb) >= 20, out
