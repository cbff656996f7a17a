"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from . import __version__
from .contract import ARTICLE, POPULAR, RELATED, SEARCH, SUGGEST, article_id_schema, article_input_schema, bulk_schema

# Answers any operation may get: from the HTTP server (a malformed request line, one over
# its length limit, too large headers) or from routing.
COMMON = {"400": "malformed request or invalid parameter (error.param names it)",
          "405": "method not allowed on this path", "414": "request line too long (use POST /search)",
          "431": "request headers too large"}


def _params(table, config) -> list[dict]:
    """OpenAPI query parameters from a contract table."""
    out = []
    for p in table:
        param = {"name": p.name, "in": "query", "required": p.required, "description": p.description,
                 "schema": p.schema(config)}
        if p.type == "array":
            param |= {"style": "form", "explode": True}
        out.append(param)
    return out


def _body_schema(table, config) -> dict:
    """A JSON object of a contract table's parameters (POST /search)."""
    return {"type": "object", "additionalProperties": False,
            "properties": {p.name: p.schema(config) | {"description": p.description} for p in table}}


def _error_response(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _write_response(what):
    return {"description": what, "content": {"application/json": {"schema": {
        "type": "object", "required": ["id", "result"],
        "properties": {"id": {"type": "string"}, "result": {"type": "string"}}}}}}


def openapi_document(config) -> dict:
    hit = {
        "type": "object",
        "required": ["id", "title", "title_html", "snippet_html", "section", "date", "source", "author",
                     "url", "score"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "title_html": {"type": "string", "description": "escaped title, matches in <mark>"},
            "snippet_html": {"type": "string", "description": "escaped ~140-char body window, matches in <mark>"},
            "section": {"type": ["string", "null"], "examples": ["新闻联播 > 国内新闻"]},
            "date": {"type": ["string", "null"], "description": "YYYY-MM-DDTHH:MM"},
            "source": {"type": ["string", "null"]},
            "author": {"type": ["string", "null"]},
            "url": {"type": ["string", "null"]},
            "score": {"type": "number"},
            "explain": {"type": "object", "description": "with explain=true: the score's parts (see README, Ranking)",
                        "required": ["score", "formula", "words", "title_boost", "equal_title_boost"],
                        "properties": {"score": {"type": "number"}, "formula": {"type": "string"},
                                       "words": {"type": "object", "additionalProperties": {"type": "number"},
                                                 "description": "BM25F of each query word"},
                                       "coverage": {"type": "number", "description": "relaxed: share of words held"},
                                       "title": {"type": "number", "description": "1: the title holds the "
                                                 "query; 0.8: holds it as read with typos fixed"},
                                       "equal_title": {"type": "number", "description": "1: the title is the "
                                                       "query; 0.8: is it as read with typos fixed"},
                                       "phrase": {"type": "number", "description": "multi-word clauses, contiguous"},
                                       "title_boost": {"type": "number"}, "equal_title_boost": {"type": "number"}}},
        },
    }
    search_result = {
        "type": "object",
        "required": ["query", "total", "page", "per_page", "took_ms", "relaxed", "suggestion", "corrected",
                     "expansions", "hits", "facets"],
        "properties": {
            "query": {"type": "string"}, "total": {"type": "integer"},
            "page": {"type": "integer"}, "per_page": {"type": "integer"},
            "took_ms": {"type": "number"}, "relaxed": {"type": "boolean"},
            "suggestion": {"type": ["string", "null"], "description": "did you mean: a correction that finds "
                                                                      "many more articles, never applied by itself"},
            "corrected": {"type": ["string", "null"],
                          "description": "the query as probably meant, when words of it looked like pinyin typos "
                                         "and their homophones were searched too (ranked below the text typed); "
                                         "typos=off searches the text as typed only"},
            "expansions": {"type": "object", "description": "synonyms the query was expanded with",
                           "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
            "facets": {"type": "object", "required": ["section", "year"],
                       "properties": {"section": {"$ref": "#/components/schemas/Facet"},
                                      "year": {"$ref": "#/components/schemas/Facet"}}},
        },
    }
    facet = {"type": "array", "items": {"type": "object", "required": ["value", "count"],
                                        "properties": {"value": {"type": "string"},
                                                       "count": {"type": "integer"}}}}
    article = {
        "type": "object", "required": ["id", "title", "body"],
        "properties": {k: {"type": ["string", "null"]} for k in
                       ("section", "date", "source", "author", "editor", "url")} | {
            "id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"},
            "title_html": {"type": "string", "description": "with ?q=: escaped title, matches in <mark>"},
            "body_html": {"type": "string", "description": "with ?q=: escaped body, matches in <mark>"}},
    }
    section = {"type": "object", "required": ["name", "path", "count", "children"],
               "properties": {"name": {"type": "string"}, "path": {"type": "string"},
                              "count": {"type": "integer"},
                              "children": {"type": "array", "items": {"$ref": "#/components/schemas/Section"}}}}
    errors = {"400": _error_response("invalid parameter (error.param names it)"),
              "503": _error_response("no usable index, or the query ran over its time budget (Retry-After)")}
    path_id = {"name": "id", "in": "path", "required": True, "schema": article_id_schema()}
    write_errors = {"400": _error_response("invalid JSON"), "401": _error_response("missing or wrong bearer token"),
                    "403": _error_response("the write API is disabled (no token configured)"),
                    "408": _error_response("the request body stopped arriving (nothing applied)"),
                    "413": _error_response("request body too large"),
                    "422": _error_response("invalid article (error.param names the field)"),
                    "503": _error_response("index busy (Retry-After)"), "507": _error_response("disk full")}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "searchsvc", "version": __version__,
                 "description": "Full-text search over a Chinese news archive (jieba + Whoosh)."},
        "paths": {
            "/search": {"get": {
                "operationId": "search",
                "summary": "Ranked, highlighted, filtered search",
                "description": ("Words typed with or without spaces must all occur (AND); when nothing "
                                "matches, most words must (relaxed=true). \"phrase\" matches exactly like "
                                "grep on normalised text; -word excludes; a OR b; title:word. Plain words that "
                                "look like pinyin typos are also searched as the homophones the index holds, "
                                "ranked below the text typed (corrected; never for phrases, title: or with "
                                "filters; typos=off turns it off). Without q, lists the filtered articles "
                                "newest first."),
                "parameters": _params(SEARCH, config),
                "responses": {"200": {"description": "results (JSON, or CSV with format=csv)", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SearchResult"}},
                    "text/csv": {"schema": {"type": "string"}}}},
                              "304": {"description": "not modified (If-None-Match)"}, **errors},
            }, "post": {
                "operationId": "searchPost",
                "summary": "The same search with its parameters in a JSON body (long queries, scripts)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _body_schema(SEARCH, config)}}},
                "responses": {"200": {"description": "results (JSON, or CSV with format=csv)", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SearchResult"}},
                    "text/csv": {"schema": {"type": "string"}}}},
                              "408": _error_response("the request body stopped arriving"),
                              "413": _error_response("request body too large"), **errors},
            }},
            "/articles/{id}": {"get": {
                "operationId": "getArticle",
                "summary": "One stored article",
                "parameters": [path_id, *_params(ARTICLE, config)],
                "responses": {"200": {"description": "the article", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Article"}}}},
                              "304": {"description": "not modified"},
                              "404": _error_response("no such article"), "503": errors["503"]},
            },
                "put": {
                    "operationId": "putArticle", "summary": "Create or replace an article (write API)",
                    "security": [{"bearer": []}],
                    "parameters": [path_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/ArticleInput"}}}},
                    "responses": {"200": _write_response("replaced"), "201": _write_response("created"),
                                  **write_errors},
                },
                "delete": {
                    "operationId": "deleteArticle", "summary": "Delete an article (write API)",
                    "security": [{"bearer": []}],
                    "parameters": [path_id],
                    "responses": {"200": _write_response("deleted"), "404": _error_response("no such article"),
                                  **write_errors},
                }},
            "/articles/bulk": {"post": {
                "operationId": "bulkWrite",
                "summary": "Upsert and delete many articles: JSON Lines of articles or {\"delete\": id}, "
                           "applied in line order as one write",
                "security": [{"bearer": []}],
                "description": "One JSON object a line; each line's outcome is reported, an invalid line "
                               "does not fail the others.",
                "requestBody": {"required": False, "description": "an empty body does nothing",
                                "content": {"application/x-ndjson": {"schema": bulk_schema()}}},
                "responses": {"200": {"description": "what was done per line", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["errors", "results"], "properties": {
                        "errors": {"type": "integer"},
                        "results": {"type": "array", "items": {"type": "object", "required": ["line", "id", "result"],
                                                               "properties": {
                            "line": {"type": "integer"}, "id": {"type": ["string", "null"]},
                            "result": {"type": "string", "enum": ["created", "updated", "deleted", "not_found",
                                                                  "error"]},
                            "error": {"$ref": "#/components/schemas/Error/properties/error"}}}}}}}}},
                              **write_errors},
            }},
            "/articles/{id}/related": {"get": {
                "operationId": "relatedArticles",
                "summary": "More like this: articles sharing the article's key terms, same section and recent first",
                "parameters": [path_id, *_params(RELATED, config)],
                "responses": {"200": {"description": "related articles", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["id", "related"], "properties": {
                        "id": {"type": "string"},
                        "related": {"type": "array", "items": {"$ref": "#/components/schemas/Related"}}}}}}},
                              "404": _error_response("no such article"), **errors},
            }},
            "/suggest": {"get": {
                "operationId": "suggest",
                "summary": "As-you-type completions: popular queries, frequent words, titles",
                "description": "Completes Chinese prefixes, full pinyin (dangjian) and pinyin initials (djw).",
                "parameters": _params(SUGGEST, config),
                "responses": {"200": {"description": "completions", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["query", "suggestions"], "properties": {
                        "query": {"type": "string"},
                        "suggestions": {"type": "array", "items": {
                            "type": "object", "required": ["text", "kind"], "properties": {
                                "text": {"type": "string"},
                                "kind": {"type": "string", "enum": ["query", "term", "title"]}}}}}}}}},
                              **errors},
            }},
            "/popular": {"get": {
                "operationId": "popularQueries",
                "summary": "The most searched queries of the last days (queries and counts only)",
                "parameters": _params(POPULAR, config),
                "responses": {"200": {"description": "popular queries", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["days", "queries"], "properties": {
                        "days": {"type": "integer"},
                        "queries": {"type": "array", "items": {
                            "type": "object", "required": ["q", "count"], "properties": {
                                "q": {"type": "string"}, "count": {"type": "integer"}}}}}}}}},
                              "400": errors["400"]},
            }},
            "/sections": {"get": {
                "operationId": "listSections",
                "summary": "The section tree with article counts",
                "responses": {"200": {"description": "sections", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sections"],
                    "properties": {"sections": {"type": "array",
                                                "items": {"$ref": "#/components/schemas/Section"}}}}}}},
                              "304": {"description": "not modified"}, "503": errors["503"]},
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Service and index status",
                "responses": {code: {"description": desc, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Health"}}}}
                    for code, desc in (("200", "ready"), ("503", "no usable index"))},
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics (text exposition format)",
                "responses": {"200": {"description": "metrics of all workers", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": {
            "ArticleInput": article_input_schema(),
            "SearchResult": search_result, "Hit": hit, "Facet": facet, "Article": article, "Section": section,
            "Related": {"type": "object", "required": ["id", "title", "score"],
                        "properties": {k: {"type": ["string", "null"]} for k in
                                       ("section", "date", "source", "author", "url")} | {
                            "id": {"type": "string"}, "title": {"type": "string"}, "score": {"type": "number"}}},
            "Health": {"type": "object", "required": ["status", "documents", "index_version", "latest_version"],
                       "properties": {"status": {"type": "string", "enum": ["ok", "stale", "unavailable"]},
                                      "documents": {"type": "integer"},
                                      "index_version": {"type": ["string", "null"],
                                                        "description": "the version this worker serves"},
                                      "latest_version": {"type": ["string", "null"],
                                                         "description": "the latest committed version; "
                                                                        "503 when it differs"},
                                      "reason": {"type": "string"}}},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "param"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "param": {"type": ["string", "null"]}}}}},
        }},
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            for code, description in COMMON.items():
                operation["responses"].setdefault(code, _error_response(description))
    return document
