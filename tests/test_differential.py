"""The engine against the grep oracle (tests/oracle.py) on articles nobody curated.

Hypothesis writes batches of generated articles (empty, punctuation- and
whitespace-only, emoji and astral characters, combining marks, traditional
script, Latin, full-width and digits mixed, long, repeated ids, updates and
deletes) through the write API or the command line, reopens the index after
every batch, and checks that the full result set of queries built from the
articles' own text (all pages) is the oracle's, through the API and the CLI.
Articles over ``view.LONG_TEXT_BYTES`` (searched through their pair tables) get a test
of their own. The longer run is ``bench/differential.py``.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from falcon import testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import oracle
from searchsvc import cli
from searchsvc.app import create_app
from searchsvc.config import Config
from searchsvc.searching import Engine
from searchsvc.view import LONG_TEXT_BYTES

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

# Small pools, so that generated queries find generated articles.
HAN = "党建工作学习中国人民会议发展经济的是在了"
TRADITIONAL = "國學會議經濟發黨們"
OTHER = "aAbZ09ＡＢ１２，。…、！-:\"😀𠀀\u0301Σσé"
SPACE = " \n\u3000\t"
chars = st.sampled_from(list(HAN * 3 + TRADITIONAL + OTHER + SPACE))
text = st.text(chars, max_size=60)
body = st.one_of(text, st.sampled_from(["", "……", "   \n ", "😀😀"]),
                 st.builds(lambda t, n: (t + "\n") * n, st.text(chars, min_size=1, max_size=40),
                           st.integers(200, 600)))         # up to ~25k characters
title = st.text(chars, min_size=1, max_size=20).filter(lambda t: t.strip())
IDS = ["a", "b", "c/d", "中文 编号", "e"]
SEED = {"id": "seed", "title": "种子", "body": "第一篇"}
article = st.fixed_dictionaries({
    "id": st.sampled_from(IDS), "title": title, "body": body,
    "section": st.sampled_from([None, "甲", "甲 > 乙", "丙>丁"]),
    "date": st.sampled_from([None, "2024-01-01", "2024-06-30T12:00", "2025-12-31"]),
})


def query_from(draw_text: str, draw) -> str:
    """A query built from an article's own text: a word, a phrase, their negations,
    OR, title:, or a word found nowhere (relaxed matching)."""
    pieces = [p for p in draw_text.split() if p] or ["党建"]
    piece = draw(st.sampled_from(pieces))
    start = draw(st.integers(0, max(0, len(piece) - 1)))
    frag = piece[start:start + draw(st.integers(1, 4))].replace('"', "")
    other = draw(st.sampled_from(["党建", "会议", "國學", "zz", "发展 经济"]))
    return draw(st.sampled_from([
        frag, f'"{frag}"', f"{frag} {other}", f"{frag} -{other}", f'-"{frag}"', f"{frag} OR {other}",
        f"title:{frag}", f'"{frag} {other}"', f"{frag}{other}", f"{frag} 无此词语", "……", f'{frag} -"的 是"',
    ]))


WRITE_PATHS = ("bulk", "put/delete", "cli")


class Service:
    """The real service on a fresh index, a dict model of its articles beside it."""

    def __init__(self, root: str):
        self.config = Config.from_env(environ={}, index_dir=f"{root}/ix", reload_interval=0.0,
                                      write_token=TOKEN, query_log_enabled=False).with_(synonyms=None)
        self.client = testing.TestClient(create_app(self.config))
        self.root = root
        self.model: dict[str, dict] = {}
        self.write("put/delete", [SEED])     # deletes and searches need an index to exist

    def write(self, path: str, batch: list) -> None:
        """Apply a batch of articles (upserts) and ids (deletes) in order, by one path."""
        if path == "bulk":
            lines = [json.dumps({"delete": x} if isinstance(x, str) else x, ensure_ascii=False) for x in batch]
            r = self.client.simulate_post("/articles/bulk", body="\n".join(lines), headers=AUTH)
            assert r.status_code == 200 and r.json["errors"] == 0, r.text
        elif path == "put/delete":
            for x in batch:
                if isinstance(x, str):
                    r = self.client.simulate_delete(f"/articles/{x}", headers=AUTH)
                    assert r.status_code == (200 if x in self.model else 404), r.text
                else:
                    r = self.client.simulate_put(f"/articles/{x['id']}", body=json.dumps(x, ensure_ascii=False),
                                                 headers=AUTH)
                    assert r.status_code in (200, 201), r.text
                self.apply([x])
            return
        else:
            puts = [x for x in batch if not isinstance(x, str)]
            with open(f"{self.root}/batch.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(a, ensure_ascii=False) + "\n" for a in puts)
            if puts:
                assert run_cli("index", "--quiet", "--index", str(self.config.index_dir), f.name)[0] == 0
            gone = [x for x in batch if isinstance(x, str)]
            if gone:
                self.apply(puts)
                batch = gone
                status, out = run_cli("delete", "--index", str(self.config.index_dir), *gone)
                assert status == (0 if set(gone) & set(self.model) else 1), out
        self.apply(batch)

    def apply(self, batch) -> None:
        for x in batch:
            if isinstance(x, str):
                self.model.pop(x, None)
            else:
                self.model[x["id"]] = x

    def check_reopens(self) -> None:
        served = Engine.from_config(self.config).view().doc_count
        assert served == len(self.model), (served, sorted(self.model))

    def api_ids(self, q: str, filters: dict) -> tuple[set, dict]:
        got, body = set(), None
        for page in range(1, 100):
            r = self.client.simulate_get("/search", params={"q": q, "per_page": 100, "page": page, "typos": "off",
                                                            **filters})
            assert r.status_code == 200, r.text
            body = r.json
            got |= {h["id"] for h in body["hits"]}
            if page * 100 >= body["total"]:
                return got, body
        raise AssertionError("too many pages")


FILTERS = [{}, {"section": "甲"}, {"from": "2024-03-01", "to": "2025-12-31"}, {"section": "丙", "to": "2024-12-31"}]


def check_queries(service: Service, draw, n_api: int = 4) -> None:
    """Queries from the articles' own text: the API's and the CLI's result sets are grep's
    (with typos=off: homophones of probable typos are searched beyond grep by design;
    test_typos.py checks that they never touch phrases, title:, filters or negations)."""
    for _ in range(n_api):
        q = query_from_model(service.model, draw)
        filters = draw(st.sampled_from(FILTERS))
        want, relaxed = oracle.search(service.model, q, sections=tuple(filter(None, [filters.get("section")])),
                                      date_from=_day(filters.get("from")), date_to=_day(filters.get("to")))
        event(f"api: {'some' if want else 'no'} hits{', relaxed' if relaxed else ''}")
        got, body = service.api_ids(q, filters)
        assert got == want and body["total"] == len(want), (q, filters, got, want)
        assert body["relaxed"] == relaxed, (q, body["relaxed"], relaxed)
    q = query_from_model(service.model, draw)
    want, _ = oracle.search(service.model, q)
    status, out = run_cli("search", "--index", str(service.config.index_dir), "--json", "-n", "100", "--typos",
                          "off", "--", q)
    assert status == 0, out
    body = json.loads(out)
    api = service.client.simulate_get("/search", params={"q": q, "per_page": 100, "typos": "off"}).json
    assert {h["id"] for h in body["hits"]} == want and body["total"] == len(want), (q, body, want)
    for response in (body, api):        # the CLI prints the API's body
        response.pop("took_ms")
    assert body == api


def query_from_model(model: dict, draw) -> str:
    a = model[draw(st.sampled_from(sorted(model)))]
    return query_from(draw(st.sampled_from([a["title"], a["body"] or a["title"]])), draw)


operation = st.one_of(article, st.sampled_from(IDS))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=st.lists(st.tuples(st.sampled_from(WRITE_PATHS), st.lists(operation, min_size=1, max_size=5)),
                        min_size=1, max_size=3),
       data=st.data())
def test_the_engine_agrees_with_grep(tmp_path_factory, batches, data):
    service = Service(str(tmp_path_factory.mktemp("diff")))
    for path, batch in batches:
        service.write(path, batch)
        service.check_reopens()
        check_queries(service, data.draw)


# Articles over view.LONG_TEXT_BYTES, whose texts are searched through pair tables (longtext.py):
# a line repeated, then text found only at the end.
long_article = st.fixed_dictionaries({
    "id": st.sampled_from(IDS), "title": title,
    "body": st.builds(lambda line, tail: (line + "\n") * (LONG_TEXT_BYTES // len((line + "\n").encode()) + 1) + tail,
                      st.text(chars, min_size=1, max_size=40), text),
})


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(path=st.sampled_from(WRITE_PATHS), batch=st.lists(st.one_of(long_article, article), min_size=1, max_size=3),
       data=st.data())
def test_long_articles_agree_with_grep(tmp_path_factory, path, batch, data):
    service = Service(str(tmp_path_factory.mktemp("diff-long")))
    service.write(path, [data.draw(long_article)] + batch)
    service.check_reopens()
    check_queries(service, data.draw, n_api=6)


def _day(value):
    import datetime as dt
    return dt.date.fromisoformat(value) if value else None


def run_cli(*argv) -> tuple[int, str]:
    """The command line in this process, configured like the app above (no synonyms)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.MonkeyPatch.context() as env:
        env.setenv("SEARCHSVC_SYNONYMS", "")
        try:
            status = cli.main(list(argv))
        except SystemExit as e:
            status = e.code
    return status, out.getvalue() + err.getvalue()

