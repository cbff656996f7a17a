"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from . import __version__


def _param(name, description, schema, required=False, explode=None):
    p = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if explode is not None:
        p["explode"] = explode
        p["style"] = "form"
    return p


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
    write_errors = {"400": _error_response("invalid JSON"), "401": _error_response("missing or wrong bearer token"),
                    "403": _error_response("the write API is disabled (no token configured)"),
                    "413": _error_response("request body too large"),
                    "422": _error_response("invalid article (error.param names the field)"),
                    "503": _error_response("index busy (Retry-After)"), "507": _error_response("disk full")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "searchsvc", "version": __version__,
                 "description": "Full-text search over a Chinese news archive (jieba + Whoosh)."},
        "paths": {
            "/search": {"get": {
                "operationId": "search",
                "summary": "Ranked, highlighted, filtered search",
                "description": ("Words typed with or without spaces must all occur (AND); when nothing "
                                "matches, most words must (relaxed=true). \"phrase\" matches exactly like "
                                "grep on normalised text; -word excludes; a OR b; title:word. Without q, "
                                "lists the filtered articles newest first."),
                "parameters": [
                    _param("q", "query", {"type": "string", "maxLength": 1000}),
                    _param("section", "section path or leading part of it; repeat for OR",
                           {"type": "array", "items": {"type": "string"}}, explode=True),
                    _param("from", "first day (inclusive)", {"type": "string", "format": "date"}),
                    _param("to", "last day (inclusive)", {"type": "string", "format": "date"}),
                    _param("sort", "order", {"type": "string", "enum": ["relevance", "newest", "oldest"],
                                             "default": "relevance"}),
                    _param("page", "1-based page", {"type": "integer", "minimum": 1, "default": 1}),
                    _param("per_page", "hits per page", {"type": "integer", "minimum": 1,
                                                         "maximum": config.max_per_page, "default": 10}),
                    _param("format", "json, or csv: every hit (up to %d rows) as id,title,date,section,source,url, "
                           "UTF-8 with BOM, as an attachment" % config.max_export_rows,
                           {"type": "string", "enum": ["json", "csv"], "default": "json"}),
                ],
                "responses": {
                    "200": {"description": "results", "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["query", "total", "page", "per_page", "took_ms", "relaxed", "suggestion",
                                     "expansions", "hits", "facets"],
                        "properties": {
                            "query": {"type": "string"}, "total": {"type": "integer"},
                            "page": {"type": "integer"}, "per_page": {"type": "integer"},
                            "took_ms": {"type": "number"}, "relaxed": {"type": "boolean"},
                            "suggestion": {"type": ["string", "null"],
                                           "description": "did you mean: a correction that finds many more "
                                                          "articles, never applied by itself"},
                            "expansions": {"type": "object", "description": "synonyms the query was expanded with",
                                           "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                            "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                            "facets": {"type": "object", "required": ["section", "year"],
                                       "properties": {"section": {"$ref": "#/components/schemas/Facet"},
                                                      "year": {"$ref": "#/components/schemas/Facet"}}},
                        }}}}},
                    "304": {"description": "not modified (If-None-Match)"},
                    **errors,
                },
            }},
            "/articles/{id}": {"get": {
                "operationId": "getArticle",
                "summary": "One stored article",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "article id; may contain '/'"},
                               _param("q", "mark this query's matches in title_html and body_html",
                                      {"type": "string", "maxLength": 1000})],
                "responses": {"200": {"description": "the article", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Article"}}}},
                              "304": {"description": "not modified"},
                              "404": _error_response("no such article"), "503": errors["503"]},
            },
                "put": {
                    "operationId": "putArticle", "summary": "Create or replace an article (write API)",
                    "security": [{"bearer": []}],
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/ArticleInput"}}}},
                    "responses": {"200": _write_response("replaced"), "201": _write_response("created"),
                                  **write_errors},
                },
                "delete": {
                    "operationId": "deleteArticle", "summary": "Delete an article (write API)",
                    "security": [{"bearer": []}],
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _write_response("deleted"), "404": _error_response("no such article"),
                                  **write_errors},
                }},
            "/articles/bulk": {"post": {
                "operationId": "bulkWrite",
                "summary": "Upsert and delete many articles: JSON Lines of articles or {\"delete\": id}, "
                           "applied in line order as one write",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
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
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                               _param("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 50,
                                                            "default": 5})],
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
                "parameters": [_param("q", "what was typed so far", {"type": "string", "maxLength": 100},
                                      required=True),
                               _param("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 20,
                                                            "default": 8})],
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
                "parameters": [_param("days", "look back this many days", {"type": "integer", "minimum": 1,
                                                                          "maximum": 365, "default": 7}),
                               _param("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 100,
                                                            "default": 10})],
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
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": {
            "ArticleInput": {"type": "object", "required": ["title", "body"],
                             "properties": {k: {"type": ["string", "null"]} for k in
                                            ("section", "date", "source", "author", "editor", "url")} | {
                                 "id": {"type": "string", "description": "must equal the path id if given"},
                                 "title": {"type": "string"}, "body": {"type": "string"}}},
            "Hit": hit, "Facet": facet, "Article": article, "Section": section,
            "Related": {"type": "object", "required": ["id", "title", "score"],
                        "properties": {k: {"type": ["string", "null"]} for k in
                                       ("section", "date", "source", "author", "url")} | {
                            "id": {"type": "string"}, "title": {"type": "string"}, "score": {"type": "number"}}},
            "Health": {"type": "object", "required": ["status", "documents", "index_version"],
                       "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                                      "documents": {"type": "integer"},
                                      "index_version": {"type": ["string", "null"]},
                                      "reason": {"type": "string"}}},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "param"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "param": {"type": ["string", "null"]}}}}},
        }},
    }
