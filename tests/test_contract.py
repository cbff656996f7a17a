"""The one contract: the OpenAPI document derived from contract.py, checked by Schemathesis
against a real `searchsvc serve` (gunicorn) with the write API on, and the validation
derived from the same tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from falcon import testing
from conftest import serving

from searchsvc import contract
from searchsvc.openapi import openapi_document

HERE = Path(__file__).resolve().parent / "schemathesis"
TOKEN = "contract-test-token"


def test_schemathesis_finds_no_failures(tmp_path):
    """Every check (`--checks all`: status codes, content types, response schemas, positive
    and negative data, undeclared methods, auth, stateful use-after-free and resource
    availability) on every operation, bounded to 5 examples each (writes take ~80 ms); the one check disabled
    for one operation is in schemathesis/schemathesis.toml with its reason."""
    # Reload interval 0: a worker checks the index version on every request, so a read on one
    # worker sees a write just made on another (by default it may lag up to 1 s).
    with serving(tmp_path / "ix", env={"SEARCHSVC_WRITE_TOKEN": TOKEN, "SEARCHSVC_RELOAD_INTERVAL": "0"}) \
            as (base, _):
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
             base + "/openapi.json", "--max-examples", "5", "--seed", "15",
             "--header", f"Authorization: Bearer {TOKEN}", "--max-time", "60", "--no-color"],
            env={**os.environ, "SCHEMATHESIS_HOOKS": "hooks", "PYTHONPATH": str(HERE)},
            capture_output=True, text=True, timeout=300, cwd=tmp_path)      # its example database: not in the repo
    assert run.returncode == 0, run.stdout[run.stdout.find("FAILURES"):][:12000] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-3000:]


def _operation_params(doc, path, method="get"):
    return {p["name"]: p for p in doc["paths"][path][method].get("parameters", []) if p["in"] == "query"}


@pytest.mark.parametrize("path,table", [("/search", contract.SEARCH), ("/suggest", contract.SUGGEST),
                                        ("/popular", contract.POPULAR), ("/articles/{id}/related", contract.RELATED),
                                        ("/articles/{id}", contract.ARTICLE)])
def test_the_document_lists_each_table_parameter_with_its_limits(config, path, table):
    doc = openapi_document(config)
    params = _operation_params(doc, path)
    assert list(params) == [p.name for p in table]
    for p in table:
        schema = params[p.name]["schema"]
        if p.type == "integer":
            assert (schema["minimum"], schema["maximum"]) == (p.minimum, p.upper(config))
        if p.max_length:
            assert schema["maxLength"] == p.max_length
    assert set(doc["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
               ["properties"]) == {p.name for p in contract.SEARCH}


@pytest.fixture(scope="module")
def strict(config, engine):
    from searchsvc.app import create_app
    return testing.TestClient(create_app(config.with_(max_per_page=20), engine=engine))


def test_limits_follow_the_config_in_both_validation_and_document(strict):
    doc = strict.simulate_get("/openapi.json").json
    assert _operation_params(doc, "/search")["per_page"]["schema"]["maximum"] == 20
    assert strict.simulate_get("/search", params={"per_page": 20}).status_code == 200
    r = strict.simulate_get("/search", params={"per_page": 21})
    assert r.status_code == 400 and r.json["error"]["message"] == "per_page must be between 1 and 20"


@pytest.mark.parametrize("query,param", [
    ("page=", "page"), ("page=1_0", "page"), ("page=%D9%A3", "page"), ("per_page=1.5", "per_page"),
    ("from=2024-W01-1", "from"), ("sort=", "sort"),
])
def test_query_values_are_checked_as_declared(client, query, param):
    r = client.simulate_get("/search", query_string=query)
    assert r.status_code == 400 and r.json["error"]["param"] == param, r.text


def test_not_blank_means_what_python_s_whitespace_means():
    """The declared pattern, a class of literal escapes ECMA-262 and Python read alike, takes
    a character for text exactly when Python does not count it as whitespace (the server
    strips and splits with Python): checked on every code point."""
    text = re.compile(contract.NOT_BLANK)
    assert all((text.fullmatch(chr(c)) is None) == chr(c).isspace() for c in range(sys.maxunicode + 1))


def test_suggest_needs_a_non_blank_q_as_declared(client):
    doc = client.simulate_get("/openapi.json").json
    q = _operation_params(doc, "/suggest")["q"]
    assert q["required"] and q["schema"]["minLength"] == 1 and q["schema"]["pattern"] == contract.NOT_BLANK
    for value in ("", "   ", "\x85", "\u3000"):
        r = client.simulate_get("/suggest", params={"q": value} if value else None, query_string=None
                                if value else "q=")
        assert r.status_code == 400 and r.json["error"]["param"] == "q"


def test_post_search_takes_the_same_parameters_as_json(client):
    got = client.simulate_get("/search", params={"q": "残疾人就业", "per_page": 3, "sort": "newest"}).json
    posted = client.simulate_post("/search", json={"q": "残疾人就业", "per_page": 3, "sort": "newest"})
    assert posted.status_code == 200 and posted.headers["Cache-Control"] == "no-store"
    assert [h["id"] for h in posted.json["hits"]] == [h["id"] for h in got["hits"]]
    assert posted.json["total"] == got["total"]
    long_q = "党建" * 500          # the documented limit: 1,000 characters
    assert client.simulate_post("/search", json={"q": long_q, "section": ["新闻联播"]}).status_code == 200


@pytest.mark.parametrize("body,param", [
    ({"q": "x" * 1001}, "q"), ({"page": "2"}, "page"), ({"per_page": 0}, "per_page"), ({"sort": None}, "sort"),
    ({"section": "新闻联播"}, "section"), ({"qq": "typo"}, "qq"), (["q"], "body"), ({"page": True}, "page"),
])
def test_post_search_refuses_what_the_contract_refuses(client, body, param):
    r = client.simulate_post("/search", json=body)
    assert r.status_code == 400 and r.json["error"]["param"] == param, r.text


def test_post_search_with_broken_json_is_a_json_400(client):
    r = client.simulate_post("/search", body=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json"
