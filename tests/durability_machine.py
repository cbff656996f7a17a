"""A Hypothesis state machine that drives the real write API and CLI against a plain
dict model: puts, deletes, bulk requests with mixed and repeated ids, rebuilds,
`searchsvc delete`, `snapshot` + writes + `restore`, restarts, concurrent writers, a full disk (RLIMIT_FSIZE in a writer process) and
kill -9 of a writer process at a random moment. After every step every id the
model holds is served with the model's content, and no other id is.

Writer processes are forked from the test (jieba already loaded), so a fault
costs milliseconds, not an interpreter start. Used by tests/test_durability_stateful.py (bounded) and bench/durability_soak.py (long).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import tempfile
import threading
import traceback
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from searchsvc import cli
from searchsvc.config import Config
from writeutil import AUTH, app_client, bulk, gen_article, make_config, put, rebuild, served, write_corpus

BASE = 4                                          # articles in the generated corpus
IDS = ["a", "b", "c/d", "base-0", "base-1", "x y"]
UNIVERSE = sorted(set(IDS) | {f"base-{i}" for i in range(BASE)})
DATES = st.sampled_from(["2026-11-20T09:30", "0001-01-01", "0999-05-05T10:00", "9999-12-31T23:59", None])
OPS = st.one_of(st.tuples(st.just("put"), st.sampled_from(IDS), st.integers(0, 99), DATES),
                st.tuples(st.just("delete"), st.sampled_from(IDS)))

def expected(article: dict) -> tuple:
    """How the service shows an article put with these fields: (title, body, date)."""
    return article["title"], article["body"], article["date"]    # a date stays a date (no invented time)


def request_of(op) -> tuple[str, str, str | None]:
    if op[0] == "put":
        return "PUT", op[1], json.dumps(gen_article(op[1], op[2], op[3]), ensure_ascii=False)
    return "DELETE", op[1], None


class Figures:
    """What a run did (bench/durability_soak.py prints these)."""
    steps = faults = checked = acked = rejected = interrupted = 0


class DurableWrites(RuleBasedStateMachine):
    analysis = None        # set by the test / the bench (one jieba load per process)
    base_config: Config | None = None

    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="durable-"))
        self.cfg = make_config(self.base_config, self.dir, lock_wait=5.0)
        self.corpus = write_corpus(self.dir / "corpus.jsonl", BASE)
        self.model: dict[str, tuple] = {}

    @initialize()
    def build(self):
        rebuild(self.cfg, self.analysis, self.corpus)
        self.model = {f"base-{i}": expected(gen_article(f"base-{i}", i)) for i in range(BASE)}
        self.client = app_client(self.cfg, self.analysis)

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ the model
    def apply(self, op) -> str:
        """Apply one op to the model; the result the service must answer."""
        if op[0] == "put":
            result = "updated" if op[1] in self.model else "created"
            self.model[op[1]] = expected(gen_article(op[1], op[2], op[3]))
            return result
        return "deleted" if self.model.pop(op[1], None) is not None else "not_found"

    def apply_answer(self, op, status: int) -> None:
        """A single PUT/DELETE answered ``status``: 2xx was applied, an error was not."""
        if status in (200, 201) or op[0] == "delete" and status == 404:
            result = self.apply(op)
            assert status == {"created": 201, "updated": 200, "deleted": 200, "not_found": 404}[result]
            Figures.acked += 1
        else:
            assert status in (500, 503, 507), status
            Figures.rejected += 1

    def apply_bulk_answer(self, ops, status: int, body) -> None:
        if status == 200:
            assert [r["result"] for r in body["results"]] == [self.apply(op) for op in ops], body
            Figures.acked += 1
        else:
            assert status in (500, 503, 507), (status, body)
            Figures.rejected += 1

    # ------------------------------------------------------------ rules
    @rule(op=OPS)
    def single(self, op):
        method, doc_id, body = request_of(op)
        if method == "PUT":
            r = put(self.client, json.loads(body))
        else:
            r = self.client.simulate_delete(f"/articles/{doc_id}", headers=AUTH)
        self.apply_answer(op, r.status_code)

    @rule(ops=st.lists(OPS, min_size=1, max_size=8))
    def bulk(self, ops):
        r = bulk(self.client, [gen_article(op[1], op[2], op[3]) if op[0] == "put" else {"delete": op[1]}
                               for op in ops])
        self.apply_bulk_answer(ops, r.status_code, r.json)

    @rule()
    def rebuild(self):
        rebuild(self.cfg, self.analysis, self.corpus)

    @rule(doc_id=st.sampled_from(IDS))
    def cli_delete(self, doc_id):
        status = cli.main(["delete", "--index", str(self.cfg.index_dir), doc_id])
        assert status == (0 if self.apply(("delete", doc_id)) == "deleted" else 1)

    @rule(ops=st.lists(OPS, max_size=3))
    def snapshot_write_restore(self, ops):
        """`searchsvc snapshot`, then writes, then `searchsvc restore`: back to the snapshot."""
        snap = Path(tempfile.mkdtemp(dir=self.dir)) / "snap"
        assert cli.main(["snapshot", "--index", str(self.cfg.index_dir), str(snap)]) == 0
        saved = dict(self.model)
        for op in ops:
            self.single(op)
        assert cli.main(["restore", "--index", str(self.cfg.index_dir), str(snap)]) == 0
        self.model = saved

    @rule()
    def restart(self):
        self.client = app_client(self.cfg, self.analysis)

    @rule(writes=st.lists(st.tuples(st.sampled_from(IDS[:3]), st.integers(0, 99)), min_size=2, max_size=6))
    def concurrent(self, writes):
        """Threads PUT at once; each id ends as one of the values written to it (the last
        committed), and from then on that value must survive everything."""
        answers = []

        def one(doc_id, n):
            answers.append(put(self.client, gen_article(doc_id, n)).status_code)
        threads = [threading.Thread(target=one, args=w) for w in writes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(s in (200, 201) for s in answers), answers
        for doc_id in {w[0] for w in writes}:
            now = served(self.client, doc_id)
            assert now in [expected(gen_article(doc_id, n)) for i, n in writes if i == doc_id], (doc_id, now)
            self.model[doc_id] = now
        Figures.acked += len(writes)

    @rule(ops=st.lists(OPS, min_size=1, max_size=4), headroom=st.integers(0, 30_000), as_bulk=st.booleans())
    def full_disk(self, ops, headroom, as_bulk):
        """A writer process whose files may not grow past the journal's size + headroom."""
        limit = (self.cfg.index_dir / "journal.log").stat().st_size + headroom
        if as_bulk:
            lines = [gen_article(op[1], op[2], op[3]) if op[0] == "put" else {"delete": op[1]} for op in ops]
            requests = [("POST", "", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines))]
        else:
            requests = [request_of(op) for op in ops]
        answers = self._writer_process(requests, limit=limit)
        assert len(answers) == len(requests), answers
        if as_bulk:
            self.apply_bulk_answer(ops, answers[0][1], answers[0][2])
        else:
            for op, (_, status, _) in zip(ops, answers):
                self.apply_answer(op, status)
        Figures.faults += 1

    @rule(ops=st.lists(OPS, min_size=1, max_size=6), delay=st.floats(0.0, 0.8))
    def kill_9(self, ops, delay):
        """A writer process killed with SIGKILL at a random moment. Answered writes are in
        the model; the one in flight (never answered) may have happened or not, and the
        next writer settles which (a journaled write is rolled forward)."""
        answers = self._writer_process([request_of(op) for op in ops], kill_after=delay)
        for op, (_, status, _) in zip(ops, answers):
            self.apply_answer(op, status)
        if len(answers) < len(ops):
            Figures.interrupted += 1
            self.client.simulate_delete("/articles/never-there", headers=AUTH)    # the next writer
            op = ops[len(answers)]
            now = served(self.client, op[1])
            after = expected(gen_article(op[1], op[2], op[3])) if op[0] == "put" else None
            assert now in (self.model.get(op[1]), after), (op, now)
            if now != self.model.get(op[1]):
                self.apply(op)
        Figures.faults += 1

    def _writer_process(self, requests, limit: int | None = None, kill_after: float | None = None) -> list:
        """Answer ``requests`` (method, id, body) in a forked writer process (its own app,
        engine and writer; jieba already loaded): [index, status, JSON] per answer given."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                    # the child: never returns
            status = 0
            try:
                os.close(read_end)
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # EFBIG instead of being killed
                if limit is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
                client = app_client(self.cfg, self.analysis)
                with os.fdopen(write_end, "w") as out:
                    for i, (method, doc_id, body) in enumerate(requests):
                        path = "/articles/bulk" if method == "POST" else f"/articles/{doc_id}"
                        r = client.simulate_request(method, path, body=body, headers=AUTH)
                        out.write(json.dumps([i, r.status_code, r.json]) + "\n")
                        out.flush()
            except BaseException:
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        timer = threading.Timer(kill_after, os.kill, (pid, signal.SIGKILL)) if kill_after is not None else None
        if timer:
            timer.start()
        with os.fdopen(read_end) as answers:
            lines = [json.loads(line) for line in answers]
        if timer:
            timer.cancel()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 or (
            os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL), status
        return lines

    # ------------------------------------------------------------ the invariant
    @invariant()
    def served_as_modelled(self):
        if not hasattr(self, "client"):
            return
        Figures.steps += 1
        for doc_id in UNIVERSE:
            assert served(self.client, doc_id) == self.model.get(doc_id), (doc_id, self.model.get(doc_id))
        assert self.client.simulate_get("/healthz").json["documents"] == len(self.model)
        Figures.checked += len(self.model)

