"""The HTTP API: ``create_app(config)`` builds a Falcon WSGI app.

Resources are small classes with ``on_get``; the search engine is injected.
Every error is JSON ``{"error": {"code", "message", "param"}}``; nothing a
client sends produces a traceback.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import logging
import time
from urllib.parse import quote

import falcon
import orjson

from . import web
from .analysis import Analysis
from .config import Config
from .openapi import openapi_document
from .params import MAX_QUERY_CHARS, ApiError, bad, int_param, search_request, single
from .querylog import QueryLog
from .searching import BadRequest, Engine, SearchRequest
from .store import IndexMissing, IndexStore
from .suggest import suggest
from .synonyms import Synonyms

log = logging.getLogger("searchsvc.access")
MIN_POPULAR = 2          # a query must be searched this often to be offered to others


# ----------------------------------------------------------------- resources

class _Cached:
    """ETag/Cache-Control tied to the index version, 304 on a match."""

    def __init__(self, engine: Engine, config: Config):
        self.engine = engine
        self.config = config

    def etag(self, req, resp) -> bool:
        """Set validators; True when the client's copy is current (304 sent)."""
        version = self.engine.view().version
        tag = hashlib.sha1(f"{version}|{req.relative_uri}".encode()).hexdigest()[:20]
        resp.etag = f'W/"{tag}"'
        resp.cache_control = [f"public, max-age={self.config.cache_seconds}"]
        if req.if_none_match and any(t == "*" or str(t) == tag for t in req.if_none_match):
            resp.status = falcon.HTTP_304
            return True
        return False


class SearchResource(_Cached):
    def __init__(self, engine: Engine, config: Config, query_log: QueryLog):
        super().__init__(engine, config)
        self.query_log = query_log

    def on_get(self, req, resp):
        sreq = search_request(req, self.config)
        fmt = single(req, "format") or "json"
        if fmt not in ("json", "csv"):
            raise bad("format", "format must be json or csv")
        if self.etag(req, resp):
            return
        if fmt == "csv":
            return self._csv(sreq, resp)
        try:
            result = self.engine.search(sreq)
        except BadRequest as e:
            raise bad(e.param, str(e)) from None
        if sreq.page == 1 and result.total and not result.relaxed and sreq.q.strip():
            self.query_log.record(sreq.q)
        resp.media = search_response(sreq, result)

    def _csv(self, sreq, resp):
        try:
            rows = self.engine.export(sreq, self.config.max_export_rows)
            first = next(rows, None)
        except BadRequest as e:
            raise bad(e.param, str(e)) from None
        resp.content_type = "text/csv; charset=utf-8"
        name = f"search-{dt.date.today().isoformat()}.csv"
        label = "".join(c for c in sreq.q if c.isalnum())[:40]
        resp.set_header("Content-Disposition", f'attachment; filename="{name}"; '
                        f"filename*=UTF-8''{quote(('search-' + label + '-' if label else 'search-') + name[7:])}")
        resp.stream = csv_rows(first, rows)


def search_response(sreq: SearchRequest, result) -> dict:
    return {"query": sreq.q, "total": result.total, "page": sreq.page, "per_page": sreq.per_page,
            "took_ms": result.took_ms, "relaxed": result.relaxed, "suggestion": result.suggestion,
            "expansions": result.expansions, "hits": result.hits, "facets": result.facets}


CSV_COLUMNS = ("id", "title", "date", "section", "source", "url")


def csv_rows(first, rows):
    """Encoded CSV lines, a BOM first so spreadsheet programs read UTF-8 Chinese correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buf.getvalue()).encode("utf-8")
    for doc in itertools.chain([first] if first else [], rows):
        buf.seek(0)
        buf.truncate()
        writer.writerow([_csv_cell(doc.get(c)) for c in CSV_COLUMNS])
        yield buf.getvalue().encode("utf-8")


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class ArticleResource(_Cached):
    """``/articles/{id}`` and ``/articles/{id}/related`` (ids may contain '/', so one route)."""

    def on_get(self, req, resp, doc_id):
        q = single(req, "q") or ""
        if len(q) > MAX_QUERY_CHARS:
            raise bad("q", f"q may be at most {MAX_QUERY_CHARS} characters")
        if self.etag(req, resp):
            return
        article = self.engine.article(doc_id, q)
        if article is None and doc_id.endswith("/related"):
            return self._related(req, resp, doc_id[:-len("/related")])
        if article is None:
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = article

    def _related(self, req, resp, doc_id):
        limit = int_param(req, "limit", 5, 1, 50)
        found = self.engine.related(doc_id, limit)
        if found is None:
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = {"id": doc_id, "related": found}


class SuggestResource:
    def __init__(self, engine: Engine, query_log: QueryLog):
        self.engine, self.query_log = engine, query_log

    def on_get(self, req, resp):
        q = single(req, "q")
        if q is None or not q.strip():
            raise bad("q", "q is required")
        if len(q) > 100:
            raise bad("q", "q may be at most 100 characters")
        limit = int_param(req, "limit", 8, 1, 20)
        lexicon = self.engine.lexicon()
        popular = [(q, n) for q, n in self.query_log.popular(days=30, limit=200) if n >= MIN_POPULAR]
        found = suggest(q, limit, lexicon, popular, self.engine.analysis.normalizer) if lexicon else []
        resp.cache_control = ["public, max-age=60"]
        resp.media = {"query": q, "suggestions": found}


class PopularResource:
    def __init__(self, query_log: QueryLog):
        self.query_log = query_log

    def on_get(self, req, resp):
        days = int_param(req, "days", 7, 1, 365)
        limit = int_param(req, "limit", 10, 1, 100)
        resp.cache_control = ["public, max-age=60"]
        resp.media = {"days": days, "queries": [{"q": q, "count": n}
                                                for q, n in self.query_log.popular(days, limit)]}


class SectionsResource(_Cached):
    def on_get(self, req, resp):
        if self.etag(req, resp):
            return
        resp.media = {"sections": self.engine.section_tree()}


class HealthResource:
    def __init__(self, engine: Engine):
        self.engine = engine

    def on_get(self, req, resp):
        resp.cache_control = ["no-store"]
        try:
            view = self.engine.view()
        except IndexMissing as e:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "reason": str(e), "documents": 0, "index_version": None}
            return
        resp.media = {"status": "ok", "documents": view.doc_count, "index_version": view.version}


class OpenAPIResource:
    def __init__(self, document: dict):
        self.body = orjson.dumps(document)

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body


# ----------------------------------------------------------------- plumbing

class AccessLog:
    """One structured (JSON) line per request; security headers on every response."""

    def process_request(self, req, resp):
        req.context.t0 = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        took = (time.perf_counter() - getattr(req.context, "t0", time.perf_counter())) * 1000
        if log.isEnabledFor(logging.INFO):
            log.info(json.dumps({"method": req.method, "path": req.path, "status": int(resp.status_code),
                                 "took_ms": round(took, 2)}, ensure_ascii=False))


def _error_body(code, message, param=None):
    return {"error": {"code": code, "message": message, "param": param}}


def _handle_api_error(req, resp, ex, params):
    resp.status = ex.status
    resp.media = _error_body(ex.code, ex.message, ex.param)
    for k, v in ex.headers.items():
        resp.set_header(k, v)


def _handle_http_error(req, resp, ex, params):
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        ex.status_code, "http_error")
    resp.status = ex.status
    message = ex.description or ex.title or "error"
    resp.media = _error_body(code, message, getattr(ex, "param", None))
    for k, v in (ex.headers or {}).items():
        resp.set_header(k, v)


def _handle_index_missing(req, resp, ex, params):
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", "5")
    resp.media = _error_body("index_unavailable", str(ex))


def _handle_unexpected(req, resp, ex, params):
    logging.getLogger("searchsvc").exception("unhandled error on %s %s", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.media = _error_body("internal_error", "internal error")


def _json_handler():
    dumps = lambda obj: orjson.dumps(obj).decode()   # noqa: E731  (orjson: 5-10x faster than json)
    return falcon.media.JSONHandler(dumps=dumps, loads=orjson.loads)


class SearchApp(falcon.App):
    """falcon.App that also carries its engine (for gunicorn hooks and tests)."""

    engine: Engine
    query_log: QueryLog


def create_app(config: Config | None = None, engine: Engine | None = None, analysis: Analysis | None = None):
    """Build the WSGI app. ``engine`` may be injected (tests share one)."""
    config = config or Config.from_env()
    if engine is None:
        analysis = analysis or Analysis(config.userdict, config.cache_dir).initialize()
        engine = Engine(IndexStore(config.index_dir), analysis, config.reload_interval,
                        config.max_result_window, config.result_cache_size,
                        Synonyms(config.synonyms, analysis.normalizer))
    query_log = QueryLog(config.query_log_path)
    middleware = [AccessLog()]
    if config.cors_origins:
        middleware.insert(0, falcon.CORSMiddleware(
            allow_origins="*" if "*" in config.cors_origins else list(config.cors_origins),
            expose_headers=["ETag"]))
    app = SearchApp(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.keep_blank_qs_values = False
    handler = _json_handler()
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler

    app.add_route("/search", SearchResource(engine, config, query_log))
    app.add_route("/articles/{doc_id:path}", ArticleResource(engine, config))
    app.add_route("/suggest", SuggestResource(engine, query_log))
    app.add_route("/popular", PopularResource(query_log))
    app.add_route("/sections", SectionsResource(engine, config))
    env = web.templates()
    app.add_route("/", web.SearchPage(engine, config, env))
    app.add_route("/a/{doc_id:path}", web.ArticlePage(engine, env))
    app.add_static_route("/static", str(web.STATIC_DIR))
    app.add_route("/healthz", HealthResource(engine))
    app.add_route("/openapi.json", OpenAPIResource(openapi_document(config)))

    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    app.add_error_handler(IndexMissing, _handle_index_missing)
    app.add_error_handler(ApiError, _handle_api_error)
    app.engine = engine
    app.query_log = query_log
    return app
