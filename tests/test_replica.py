"""Read replicas: a generation shipped from the writer host (`searchsvc snapshot`, a copy of
the directory, as rsync would make it) and installed with `searchsvc restore` while the
replica serves under real gunicorn; bad shipments are refused and change nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import serving
from writeutil import app_client, gen_article, make_config, put, rebuild, served, write_corpus

from searchsvc import cli
from searchsvc.backup import MANIFEST
from searchsvc.journal import Journal
from searchsvc.schema import SCHEMA_VERSION
from searchsvc.store import IndexStore

RELOAD = 0.3        # the replica's SEARCHSVC_RELOAD_INTERVAL
OPEN_SLACK = 3.0    # opening the new generation on a shared 2-core machine, on top of it


def run(*args) -> tuple[int, str, str]:
    """``searchsvc ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def get(base: str, path: str, **params) -> tuple[int, dict | str]:
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" else body
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:                      # refused, reset, timed out: a failed request too
        return 0, repr(e)


class Site:
    """One writer index and one replica index directory; ``base`` is the replica's URL."""

    def __init__(self, tmp: Path, writer_cfg, analysis):
        self.tmp, self.writer, self.analysis = tmp, writer_cfg, analysis
        self.root = tmp / "replica" / "index"
        self.shipments = 0
        self.base = ""

    def publish(self, doc_id: str, title: str) -> None:
        """The CMS writes to the writer host, through the write API."""
        article = {**gen_article(doc_id, 3), "title": title}
        assert put(app_client(self.writer, self.analysis), article).status_code == 201

    def ship(self) -> Path:
        """`searchsvc snapshot` on the writer, then the copy to the replica (rsync's part)."""
        self.shipments += 1
        out = self.tmp / "writer-out" / f"ship-{self.shipments}"
        status, stdout, stderr = run("snapshot", "--index", self.writer.index_dir, out)
        assert status == 0 and "verified" in stdout, stderr
        inbox = self.tmp / "replica" / "inbox" / out.name
        shutil.copytree(out, inbox)
        return inbox

    def install(self, shipped: Path) -> tuple[int, str, str]:
        return run("restore", "--index", self.root, shipped)

    def state(self) -> tuple[str, bytes, set[str]]:
        """The serving generation, the journal and every generation directory."""
        return (IndexStore(self.root).current_path().name, (self.root / "journal.log").read_bytes(),
                {p.name for p in self.root.glob("gen-*")})


@pytest.fixture(scope="module")
def site(config, analysis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    writer = make_config(config, tmp / "writer")
    rebuild(writer, analysis, write_corpus(tmp / "corpus.jsonl"))
    site = Site(tmp, writer, analysis)
    status, _, stderr = site.install(site.ship())       # before `serve`, which would index the examples
    assert status == 0, stderr
    with serving(site.root, workers=2, env={"SEARCHSVC_RELOAD_INTERVAL": str(RELOAD)}) as (base, _):
        site.base = base
        yield site


def flip_while_querying(site: Site, q: str) -> tuple[list, float]:
    """Install a new shipment while a thread queries ``q`` (and an old article) without
    pause; returns every answer (start time, status, total of ``q``) and when the flip
    returned. Stops once 20 answers in a row found ``q`` (or after 20 s)."""
    shipped = site.ship()
    answers: list[tuple[float, object, int | None]] = []
    stop = threading.Event()

    def query():
        while not stop.is_set():
            t = time.monotonic()
            status, body = get(site.base, "/search", q=q, typos="off")
            old_status, old = get(site.base, "/search", q="工作简报", typos="off")
            ok = status == old_status == 200 and old["total"] >= 20
            answers.append((t, status if ok else (status, old_status, body, old), body["total"] if ok else None))
            if len(answers) >= 20 and all(a[2] == 1 for a in answers[-20:]):
                return

    thread = threading.Thread(target=query)
    thread.start()
    deadline = time.monotonic() + 10
    while len(answers) < 3 and time.monotonic() < deadline:    # answers from the old generation first
        time.sleep(0.05)
    status, stdout, stderr = site.install(shipped)
    flipped = time.monotonic()
    assert status == 0 and "restored" in stdout and not stderr, stderr
    thread.join(timeout=20)
    stop.set()
    thread.join()
    return answers, flipped


def test_a_shipped_generation_is_flipped_in_while_the_replica_serves(site):
    """The CMS writes on the writer; the shipped generation is installed on the replica
    under load: no request fails, the new article is found on every answer within the
    reload interval (plus the time to open it), and two generations remain on disk."""
    served = [site.state()[0]]
    for n, word in enumerate(("副本同步甲乙", "副本同步丙丁")):
        site.publish(f"replica-new-{n}", f"{word}发布的文章")
        answers, flipped = flip_while_querying(site, f'"{word}"')     # a phrase: no relaxed matches
        failed = [a for a in answers if a[2] is None]
        assert not failed, failed[:3]
        assert {a[2] for a in answers} == {0, 1}            # old generation before, new after
        consistent = next(i for i in range(len(answers)) if all(a[2] == 1 for a in answers[i:]))
        assert len(answers) - consistent >= 20
        assert answers[consistent][0] - flipped <= RELOAD + OPEN_SLACK
        served.append(site.state()[0])
    assert site.state()[2] == set(served[-2:])      # the previous generation is kept, older ones deleted
    status, health = get(site.base, "/healthz")
    assert status == 200 and health["index_version"].startswith(served[-1])
    assert health["documents"] == IndexStore(site.writer.index_dir).open().doc_count()
    # The replica serves the writer's journal as of the snapshot: its sequence shows how far it is.
    writer_seq = Journal(site.writer.index_dir).stats()[1]
    assert writer_seq >= 2 and Journal(site.root).stats()[1] == writer_seq
    _, metrics = get(site.base, "/metrics")
    assert f"searchsvc_journal_last_sequence {float(writer_seq)}" in metrics
    # A replica takes no writes: without a write token they are refused.
    req = urllib.request.Request(site.base + "/articles/x", method="DELETE",
                                 headers={"Authorization": "Bearer anything"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403


def _flip_a_byte(shipped: Path) -> str:
    victim = max((p for p in (shipped / "index").iterdir()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    return "differs from the manifest"


def _lose_a_file(shipped: Path) -> str:          # an rsync cut short
    next(p for p in (shipped / "index").iterdir() if p.suffix != ".json").unlink()
    return "is missing or differs from the manifest"


def _cut_the_manifest(shipped: Path) -> str:
    manifest = shipped / MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:100])
    return "missing or unreadable"


def _no_manifest(shipped: Path) -> str:
    (shipped / MANIFEST).unlink()
    return "no snapshot in"


def _nothing_shipped(shipped: Path) -> str:
    shutil.rmtree(shipped)
    return "no snapshot in"


def _another_schema(shipped: Path) -> str:
    """A consistent snapshot made by another searchsvc version (its manifest matches)."""
    meta_path = shipped / "index" / "searchsvc.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["schema_version"] = SCHEMA_VERSION - 1
    meta_path.write_text(json.dumps(meta), "utf-8")
    manifest = json.loads((shipped / MANIFEST).read_text("utf-8"))
    manifest["files"]["index/searchsvc.json"] = hashlib.sha256(meta_path.read_bytes()).hexdigest()
    (shipped / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    return f"schema version {SCHEMA_VERSION - 1}"


@pytest.mark.parametrize("damage", [_flip_a_byte, _lose_a_file, _cut_the_manifest, _no_manifest,
                                    _nothing_shipped, _another_schema])
def test_a_bad_shipment_is_refused_and_the_replica_keeps_serving(site, damage):
    site.publish(f"refused-{damage.__name__}", "不应出现的副本文章戊己")
    shipped = site.ship()
    expected = damage(shipped)
    before = site.state()
    status, stdout, stderr = site.install(shipped)
    assert status == 2 and expected in stderr and "Traceback" not in stderr, stderr
    assert str(shipped) in stderr and not stdout
    assert site.state() == before                   # same generation, journal and directories
    status, body = get(site.base, "/search", q="不应出现的副本文章戊己", typos="off")
    assert status == 200 and body["total"] == 0
    status, health = get(site.base, "/healthz")
    assert status == 200 and health["status"] == "ok" and health["index_version"].startswith(before[0])


def test_a_snapshot_indexed_with_another_user_dictionary_is_installed_with_a_warning(site, tmp_path):
    """Queries would be segmented unlike the index (fewer matches), as on a writer whose
    dictionary changed without a rebuild: a warning naming the fix, not a refusal."""
    other = tmp_path / "userdict.txt"
    other.write_text("副本同步 5 n\n", "utf-8")
    status, stdout, stderr = run("restore", "--index", tmp_path / "ix", "--userdict", other, site.ship())
    assert status == 0 and "restored" in stdout
    assert "user dictionary changed" in stderr and "searchsvc index --rebuild" in stderr


def test_a_write_made_on_a_replica_is_gone_at_the_next_installation(site, tmp_path, analysis):
    """What the README warns of: a replica given a write token keeps the write in its own
    journal and generation, and the next shipment from the writer replaces both."""
    root = tmp_path / "ix"
    assert run("restore", "--index", root, site.ship())[0] == 0
    replica = app_client(site.writer.with_(index_dir=root), analysis)
    assert put(replica, gen_article("written-on-the-replica", 4)).status_code == 201
    assert served(replica, "written-on-the-replica") is not None
    assert run("restore", "--index", root, site.ship())[0] == 0
    assert served(replica, "written-on-the-replica") is None
    assert served(app_client(site.writer, analysis), "written-on-the-replica") is None   # never on the writer


def test_the_previous_generation_is_kept_when_the_index_path_is_relative(site, tmp_path, monkeypatch):
    """`--index index` (the default is relative too): the previous generation stays for the
    requests still reading it, and the one before it goes."""
    monkeypatch.chdir(tmp_path)
    installed = []
    for _ in range(3):
        assert run("restore", "--index", "index", site.ship())[0] == 0
        installed.append(IndexStore(tmp_path / "index").current_path().name)
    assert {p.name for p in (tmp_path / "index").glob("gen-*")} == set(installed[1:])
