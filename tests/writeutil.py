"""Helpers of the durability tests: generated articles, a writable app over a
temporary index, rebuilds from a generated corpus file (never ../shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from falcon import testing

import corpus_gen

from whoosh import fields

from searchsvc.app import create_app
from searchsvc.indexing import Indexer
from searchsvc.schema import build_schema
from searchsvc.searching import Engine
from searchsvc.store import IndexStore

TOKEN = "durable-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORDS = "党建 乡村振兴 基层 治理 教育 医疗 交通 文化 科技 农业 水利 生态".split()


def gen_article(doc_id: str, n: int = 0, date: str | None = "2026-11-20T09:30") -> dict:
    """A small article whose content depends on ``n`` (so versions differ)."""
    w = WORDS[n % len(WORDS)]
    return {"id": doc_id, "title": f"{w}工作简报第{n}期", "body": f"{w}相关内容，版本{n}。" * 3,
            "section": "工作动态 > 综合", "date": date, "source": "测试"}


def write_corpus(path: Path, n: int = 20) -> Path:
    """A generated JSONL corpus of ``n`` articles (ids base-0 … base-n-1)."""
    return corpus_gen.write_jsonl([gen_article(f"base-{i}", i) for i in range(n)], path)


def make_config(config, tmp_path: Path, **kw):
    return config.with_(index_dir=tmp_path / "ix", write_token=TOKEN, write_lock_wait=kw.pop("lock_wait", 2.0),
                        query_log=tmp_path / "q.jsonl", **kw)


def app_client(cfg, analysis) -> testing.TestClient:
    """A fresh app (its own engine) over ``cfg.index_dir``: a restarted worker."""
    engine = Engine.from_config(cfg.with_(reload_interval=0.0, synonyms=None), analysis)
    return testing.TestClient(create_app(cfg, engine=engine))


def rebuild(cfg, analysis, corpus: Path):
    return Indexer(cfg, analysis).index_paths([corpus], rebuild=True, workers=1)


def put(client, doc: dict, headers=AUTH):
    return client.simulate_put(f"/articles/{doc['id']}", body=json.dumps(doc, ensure_ascii=False),
                               headers={**headers, "Content-Type": "application/json"})


def bulk(client, lines: list[dict]):
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode()
    return client.simulate_post("/articles/bulk", body=body, headers=AUTH)


def served(client, doc_id: str):
    """The article as served (title, body, date), or None on 404."""
    r = client.simulate_get(f"/articles/{doc_id}")
    assert r.status_code in (200, 404), (r.status_code, r.text[:200])
    return None if r.status_code == 404 else (r.json["title"], r.json["body"], r.json["date"])


def schema_4():
    """The schema before version 5: the article record one of Whoosh's stored fields."""
    schema = build_schema()
    schema.remove("doc")
    schema.add("doc", fields.STORED())
    return schema


def stored_articles(index_dir: Path) -> list[dict]:
    """Every live article's stored record, read straight from the index (Whoosh's reader)."""
    with IndexStore(index_dir).open().reader() as r:
        records = r.column_reader("doc", translate=False)
        return [records[d] for d in r.all_doc_ids()]


def stored_ids(index_dir: Path) -> Counter:
    """How many stored documents each id has, read straight from the index."""
    return Counter(doc["id"] for doc in stored_articles(index_dir))


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """``searchsvc ARGS`` in a new process, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "searchsvc", *map(str, args)], capture_output=True,
                          text=True, **kw)


def open_fds() -> int:
    """File descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))
