"""The HTTP API: ``create_app(config)`` builds a Falcon WSGI app.

Resources are small classes with ``on_get``; the search engine is injected.
Every error is JSON ``{"error": {"code", "message", "param"}}``; nothing a
client sends produces a traceback.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import hashlib
import hmac
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
from .params import MAX_QUERY_CHARS, MAX_SUGGEST_CHARS, ApiError, bad, int_param, search_request, single
from .querylog import QueryLog
from .searching import BadRequest, Engine, SearchRequest, SearchTimeout
from .parsing import Article, ArticleError, article_from_dict
from .store import IndexBusy, IndexMissing, IndexStore
from .suggest import suggest
from .synonyms import Synonyms
from .writes import Writer

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


class WriteAccess:
    """Bearer-token check of the write API (constant-time), and request bodies within limits."""

    def __init__(self, writer: Writer | None, config: Config):
        self.writer, self.config = writer, config

    def authorize(self, req) -> Writer:
        token = self.config.write_token
        if not token or self.writer is None:
            raise ApiError(falcon.HTTP_403, "writes_disabled",
                           "the write API is disabled (set SEARCHSVC_WRITE_TOKEN to enable it)")
        scheme, _, given = (req.auth or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(falcon.HTTP_401, "unauthorized", "a valid bearer token is required",
                           "Authorization", headers={"WWW-Authenticate": 'Bearer realm="searchsvc"'})
        return self.writer

    def body(self, req) -> bytes:
        limit = self.config.max_body_bytes
        if req.content_length is not None and req.content_length > limit:
            raise ApiError(falcon.HTTP_413, "payload_too_large", f"request bodies may be at most {limit} bytes")
        data = req.bounded_stream.read(limit + 1)
        if len(data) > limit:
            raise ApiError(falcon.HTTP_413, "payload_too_large", f"request bodies may be at most {limit} bytes")
        return data

    def run(self, action, *args):
        """Run a write; a busy index is 503 + Retry-After, a failing disk a 507/500 JSON error."""
        try:
            return action(*args)
        except IndexBusy as e:
            raise ApiError(falcon.HTTP_503, "index_busy", str(e), headers={"Retry-After": "2"}) from None
        except OSError as e:
            logging.getLogger("searchsvc").exception("write failed")
            status = falcon.HTTP_507 if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else falcon.HTTP_500
            raise ApiError(status, "write_failed", f"the write was not applied: {e.strerror or e}") from None


def _json_body(data: bytes, param: str = "body"):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ApiError(falcon.HTTP_400, "invalid_json", f"invalid JSON: {e}", param) from None


def _article(record, doc_id: str | None = None) -> Article:
    if isinstance(record, dict) and doc_id is not None:
        if record.get("id") not in (None, doc_id):
            raise ApiError(falcon.HTTP_422, "invalid_article", "id in the body differs from the URL", "id")
        record = {**record, "id": doc_id}
    try:
        return article_from_dict(record)
    except ArticleError as e:
        raise ApiError(falcon.HTTP_422, "invalid_article", str(e), e.field or "body") from None


class ArticleResource(_Cached):
    """``/articles/{id}`` and ``/articles/{id}/related`` (ids may contain '/', so one route).
    PUT and DELETE are the write API (bearer token)."""

    def __init__(self, engine: Engine, config: Config, access: WriteAccess):
        super().__init__(engine, config)
        self.access = access

    def on_put(self, req, resp, doc_id):
        writer = self.access.authorize(req)
        article = _article(_json_body(self.access.body(req)), doc_id)
        try:
            result = self.access.run(writer.upsert, [article])[0]
        finally:
            self.engine.invalidate()     # read-your-write: this worker reopens on its next request
        resp.status = falcon.HTTP_201 if result.result == "created" else falcon.HTTP_200
        resp.media = {"id": result.id, "result": result.result}

    def on_delete(self, req, resp, doc_id):
        writer = self.access.authorize(req)
        try:
            result = self.access.run(writer.delete, [doc_id])[0]
        finally:
            self.engine.invalidate()
        if result.result == "not_found":
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = {"id": result.id, "result": result.result}

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


class BulkResource:
    """``POST /articles/bulk``: JSON Lines of articles (upserts) and ``{"delete": id}`` lines."""

    def __init__(self, engine: Engine, access: WriteAccess):
        self.engine, self.access = engine, access

    def on_post(self, req, resp):
        writer = self.access.authorize(req)
        results, ops = [], []            # ops: (line, kind, article or id), applied in line order
        for n, line in enumerate(self.access.body(req).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = _json_body(line, f"line {n}")
                if isinstance(record, dict) and set(record) == {"delete"}:
                    if not isinstance(record["delete"], str) or not record["delete"]:
                        raise ApiError(falcon.HTTP_422, "invalid_article", "delete needs an id", "delete")
                    ops.append((n, "delete", record["delete"]))
                else:
                    ops.append((n, "put", _article(record)))
            except ApiError as e:
                results.append({"line": n, "id": None, "result": "error",
                                "error": {"code": e.code, "message": e.message, "param": e.param}})
        try:
            done = self.access.run(writer.apply, [(kind, x) for _, kind, x in ops])
        finally:
            self.engine.invalidate()
        results += [{"line": n, "id": r.id, "result": r.result} for (n, _, _), r in zip(ops, done)]
        results.sort(key=lambda r: r["line"])
        resp.media = {"errors": sum(r["result"] == "error" for r in results), "results": results}


class SuggestResource:
    def __init__(self, engine: Engine, query_log: QueryLog):
        self.engine, self.query_log = engine, query_log

    def on_get(self, req, resp):
        q = single(req, "q")
        if q is None or not q.strip():
            raise bad("q", "q is required")
        if len(q) > MAX_SUGGEST_CHARS:
            raise bad("q", f"q may be at most {MAX_SUGGEST_CHARS} characters")
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
    resp.cache_control = ["no-store"]     # a 404 may be a 200 a moment later (read-your-write)
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


def _handle_timeout(req, resp, ex, params):
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", "1")
    resp.media = _error_body("timeout", f"{ex}; narrow the query (a longer phrase, a section or dates)")


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


def create_app(config: Config | None = None, engine: Engine | None = None, analysis: Analysis | None = None,
               writer: Writer | None = None):
    """Build the WSGI app. ``engine`` may be injected (tests share one)."""
    config = config or Config.from_env()
    if engine is None:
        analysis = analysis or Analysis(config.userdict, config.cache_dir).initialize()
        engine = Engine(IndexStore(config.index_dir), analysis, config.reload_interval,
                        config.max_result_window, config.result_cache_size,
                        Synonyms(config.synonyms, analysis.normalizer), config.search_budget,
                        config.postings_cache_mb)
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
    access = WriteAccess(writer or (Writer(config, engine.analysis) if config.write_token else None), config)
    app.add_route("/articles/bulk", BulkResource(engine, access))
    app.add_route("/articles/{doc_id:path}", ArticleResource(engine, config, access))
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
    app.add_error_handler(SearchTimeout, _handle_timeout)
    app.engine = engine
    app.query_log = query_log
    return app
