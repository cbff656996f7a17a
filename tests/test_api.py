"""The HTTP API through falcon.testing: contract, errors, caching, CORS, OpenAPI."""

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

Q = "残疾人就业"


def test_search_response_contract(client):
    r = client.simulate_get("/search", params={"q": Q, "per_page": 5})
    assert r.status_code == 200
    body = r.json
    assert set(body) == {"query", "total", "page", "per_page", "took_ms", "relaxed", "suggestion", "corrected",
                         "expansions", "hits", "facets"}
    assert body["suggestion"] is None and body["corrected"] is None and body["per_page"] == 5 and len(body["hits"]) == 5
    hit = body["hits"][0]
    assert set(hit) == {"id", "title", "title_html", "snippet_html", "section", "date", "source", "author",
                        "url", "score"}
    assert "<mark>" in hit["title_html"] + hit["snippet_html"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_document_is_valid_and_describes_responses(client):
    spec = client.simulate_get("/openapi.json").json
    validate(spec)
    schema = spec["paths"]["/search"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = OAS31Validator({**schema, "components": spec["components"]})
    validator.validate(client.simulate_get("/search", params={"q": Q}).json)
    error_schema = {**spec["components"]["schemas"]["Error"], "components": spec["components"]}
    OAS31Validator(error_schema).validate(client.simulate_get("/search", params={"page": "x"}).json)


@pytest.mark.parametrize("path,params", [
    ("/suggest", {"q": "dangjian"}), ("/popular", {"days": 3}),
    ("/articles/{id}/related", {"limit": 3}), ("/articles/{id}", {"q": "党建"}),
])
def test_feature_endpoints_match_their_documented_schemas(client, corpus, path, params):
    spec = client.simulate_get("/openapi.json").json
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    url = path.replace("{id}", corpus[1][0]["id"])
    r = client.simulate_get(url, params=params)
    assert r.status_code == 200, r.text
    OAS31Validator({**schema, "components": spec["components"]}).validate(r.json)


@pytest.mark.parametrize("params,param", [
    ({"page": "0"}, "page"), ({"page": "abc"}, "page"), ({"per_page": "101"}, "per_page"),
    ({"per_page": "100", "page": "101"}, "page"), ({"from": "2024-13-01"}, "from"), ({"to": "yesterday"}, "to"),
    ({"sort": "random"}, "sort"),
    ({"q": "x" * 1001}, "q"), ({"format": "xml"}, "format"),
])
def test_bad_parameters_are_400_naming_the_parameter(client, params, param):
    r = client.simulate_get("/search", params=params)
    assert r.status_code == 400
    assert r.json["error"]["param"] == param and r.json["error"]["message"]


def test_from_after_to_selects_nothing(client):
    r = client.simulate_get("/search", params={"from": "2024-02-01", "to": "2024-01-01"})
    assert r.status_code == 200 and r.json["total"] == 0 and r.json["hits"] == []


def test_articles_with_slashes_and_unknown_ids(client):
    r = client.simulate_get("/articles/study-session")      # a page file's id is its name
    assert r.status_code == 200 and r.json["section"] == "思想建设 > 思政工作" and r.json["editor"] == "张明"
    assert client.simulate_get("/articles/en/jsonl-006").json["id"] == "en/jsonl-006"
    for path in ("/articles/nope", "/articles/../../etc/passwd", "/articles/%2e%2e/%2e%2e/etc/passwd"):
        r = client.simulate_get(path)
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_unknown_routes_and_methods_are_json(client):
    assert client.simulate_get("/nope").json["error"]["code"] == "not_found"
    r = client.simulate_delete("/search")
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_sections_tree_and_health(client, corpus):
    tree = client.simulate_get("/sections").json["sections"]
    names = {n["name"]: n for n in tree}
    assert names["新闻联播"]["count"] == sum(c["count"] for c in names["新闻联播"]["children"])
    h = client.simulate_get("/healthz").json
    assert h["status"] == "ok" and h["documents"] == len(corpus[1]) + 12 and h["index_version"]


def test_etag_gives_304_and_cors_allows_configured_origins(client):
    r = client.simulate_get("/search", params={"q": Q})
    assert r.headers["ETag"] and "max-age" in r.headers["Cache-Control"]
    again = client.simulate_get("/search", params={"q": Q}, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    cors = client.simulate_get("/search", params={"q": Q}, headers={"Origin": "https://example.gov.cn"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://example.gov.cn"
    other = client.simulate_get("/search", params={"q": Q}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_hostile_queries_never_fail(client):
    for q in ['"unbalanced', "-", "OR", "title:", '""', "\x00\x01", "a" * 1000, "😀" * 50, "<script>alert(1)</script>",
              "*?~[]{}()/\\", "- - OR -OR title:\"", "%ff%fe"]:
        r = client.simulate_get("/search", params={"q": q})
        assert r.status_code == 200, q
        assert r.json["query"] == q or "\x00" in q    # echoed as JSON data, never as markup
        assert all("<script>" not in h["title_html"] + h["snippet_html"] for h in r.json["hits"])


@pytest.mark.parametrize("path,params,status", [
    ("/search", {"q": Q, "per_page": 3}, 200), ("/sections", {}, 200), ("/articles/study-session", {}, 200),
    ("/search", {"q": Q, "page": 10_000}, 400),    # the engine's BadRequest (the result window)
    ("/search", {"sort": "sideways"}, 400),        # the edge's own check
])
def test_json_bodies_are_orjson_s_bytes(client, path, params, status):
    """The media handler sends orjson's output unchanged: compact UTF-8, Chinese not escaped,
    the bytes the service sent when it decoded them for Falcon to encode again."""
    import orjson
    r = client.simulate_get(path, params=params)
    assert r.status_code == status and r.headers["Content-Type"].startswith("application/json")
    assert r.content == orjson.dumps(orjson.loads(r.content))
    if status == 400:   # one error shape for both
        assert r.json["error"]["code"] == "invalid_parameter" and r.json["error"]["param"] in ("page", "sort")
