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
import re
import time
import uuid
from urllib.parse import quote

import falcon
import orjson

from . import contract, metrics, web
from .analysis import Analysis
from .asgi_bridge import BodyIncomplete
from .cache import LOOKUP_FLUSH_SECONDS, flush_lookups
from .config import Config
from .contract import MAX_QUERY_CHARS
from .openapi import openapi_document
from .params import ApiError, bad, int_param, read, read_body, single, to_search_request
from .query import parse, public_form
from .querylog import QueryLog
from .searching import BadRequest, Engine, SearchTimeout, UnreadableIndex
from .parsing import RESERVED_LAST_SEGMENT, Article, ArticleError, article_from_dict, check_id
from .store import IndexBusy, IndexMissing
from .suggest import suggest
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
        if req.if_none_match and any(str(t) == tag for t in req.if_none_match):
            resp.status = falcon.HTTP_304
            return True
        return False


class SearchResource(_Cached):
    def __init__(self, engine: Engine, config: Config, query_log: QueryLog):
        super().__init__(engine, config)
        self.query_log = query_log

    def on_get(self, req, resp):
        values = read(req, contract.SEARCH, self.config)
        sreq = to_search_request(values, self.config)
        if self.etag(req, resp):
            return
        self._answer(req, sreq, values["format"], resp)

    def on_post(self, req, resp):
        """The same search, its parameters a JSON object (no request-line limit, no escaping)."""
        values = read_body(_json_body(read_body_bytes(req, self.config.max_body_bytes)), contract.SEARCH,
                           self.config)
        resp.cache_control = ["no-store"]
        self._answer(req, to_search_request(values, self.config), values["format"], resp)

    def _answer(self, req, sreq, fmt, resp):
        if fmt == "csv":
            return self._csv(sreq, resp)
        result = self.engine.search(sreq)
        after_response(req, metrics.count_search, result)
        if sreq.page == 1 and result.total and not result.relaxed:
            # Never the negated text (planting), nor a typo: what it was read as (every word occurs).
            offered = public_form(parse(result.corrected or sreq.q))
            if offered:
                after_response(req, self.query_log.record, offered)
        resp.media = result.to_json(sreq)

    def _csv(self, sreq, resp):
        rows = self.engine.export(sreq, self.config.max_export_rows)
        first = next(rows, None)
        resp.content_type = "text/csv; charset=utf-8"
        name = f"search-{dt.date.today().isoformat()}.csv"
        label = "".join(c for c in sreq.q if c.isalnum())[:40]
        resp.set_header("Content-Disposition", f'attachment; filename="{name}"; '
                        f"filename*=UTF-8''{quote(('search-' + label + '-' if label else 'search-') + name[7:])}")
        resp.stream = csv_rows(first, rows)


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
        return read_body_bytes(req, self.config.max_body_bytes)

    def run(self, action, *args):
        """Run a write; a busy index is 503 + Retry-After, a failing disk a 507/500 JSON error.
        Each article's outcome is counted (searchsvc_writes)."""
        operation = getattr(action, "__name__", "write")
        try:
            results = action(*args)
        except IndexBusy as e:
            metrics.WRITES.labels(operation, "busy").inc(len(args[0]) if args else 1)
            raise ApiError(falcon.HTTP_503, "index_busy", str(e), headers={"Retry-After": "2"}) from None
        except UnreadableIndex as e:
            logging.getLogger("searchsvc").exception("write not published")
            raise ApiError(falcon.HTTP_500, "write_failed", str(e)) from None
        except OSError as e:
            metrics.WRITES.labels(operation, "failed").inc(len(args[0]) if args else 1)
            logging.getLogger("searchsvc").exception("write failed")
            status = falcon.HTTP_507 if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else falcon.HTTP_500
            raise ApiError(status, "write_failed", f"the write was not applied: {e.strerror or e}") from None
        for result in results:
            metrics.WRITES.labels(operation, result.result).inc()
        return results


def read_body_bytes(req, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (else 413), with a Content-Length or chunked
    (no length: falcon's bounded stream would read nothing, the server's stream ends the body)."""
    too_large = ApiError(falcon.HTTP_413, "payload_too_large", f"request bodies may be at most {limit} bytes")
    if req.content_length is not None and req.content_length > limit:
        raise too_large
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream = req.stream if req.content_length is None and chunked else req.bounded_stream
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data


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
            result = self.access.run(writer.delete, [_checked_id(doc_id)])[0]
        finally:
            self.engine.invalidate()
        if result.result == "not_found":
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = {"id": result.id, "result": result.result}

    def on_get(self, req, resp, doc_id):
        q = single(req, "q") or ""
        if len(q) > MAX_QUERY_CHARS:
            raise bad("q", f"q may be at most {MAX_QUERY_CHARS} characters")
        if doc_id.endswith(RELATED):     # no id ends so (the id grammar reserves it)
            return self._related(req, resp, doc_id[:-len(RELATED)])
        if self.etag(req, resp):
            return
        article = self.engine.article(doc_id, q)
        if article is None:
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = article

    def _related(self, req, resp, doc_id):
        limit = int_param(req, "limit", 5, 1, 50)
        if self.etag(req, resp):
            return
        found = self.engine.related(doc_id, limit)
        if found is None:
            raise ApiError(falcon.HTTP_404, "not_found", f"no article with id {doc_id!r}", "id")
        resp.media = {"id": doc_id, "related": found}


RELATED = "/" + RESERVED_LAST_SEGMENT


def _checked_id(doc_id: str) -> str:
    try:
        return check_id(doc_id)
    except ArticleError as e:
        raise ApiError(falcon.HTTP_422, "invalid_article", str(e), "id") from None


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
        values = read(req, contract.SUGGEST, None)
        q, limit = values["q"], values["limit"]
        lexicon = self.engine.lexicon()
        popular = [(q, n) for q, n in self.query_log.popular(days=30, limit=200) if n >= MIN_POPULAR]
        found = suggest(q, limit, lexicon, popular, self.engine.analysis.normalizer) if lexicon else []
        resp.cache_control = ["public, max-age=60"]
        resp.media = {"query": q, "suggestions": found}


class PopularResource:
    def __init__(self, query_log: QueryLog):
        self.query_log = query_log

    def on_get(self, req, resp):
        values = read(req, contract.POPULAR, None)
        days, limit = values["days"], values["limit"]
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
        self.engine.invalidate()      # look for a newer version now, not within the reload interval
        try:
            view = self.engine.view()
        except IndexMissing as e:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "reason": str(e), "documents": 0, "index_version": None,
                          "latest_version": None}
            return
        latest = self.engine.store.version()
        body = {"status": "ok", "documents": view.doc_count, "index_version": view.version,
                "latest_version": latest}
        if latest != view.version:   # a committed version this worker cannot open: serving old data
            resp.status = falcon.HTTP_503
            body.update(status="stale", reason=self.engine.error or "the latest index version is not served")
        resp.media = body


class MetricsResource:
    """``/metrics``: Prometheus text format, every worker's counts (see metrics.py)."""

    def __init__(self, engine: Engine, config: Config):
        self.engine, self.config = engine, config

    def on_get(self, req, resp):
        flush_lookups()
        resp.data, resp.content_type = metrics.exposition(self.engine, self.config.index_dir,
                                                          self.config.metrics_dir)
        resp.cache_control = ["no-store"]


class OpenAPIResource:
    """The document, built on first request: its id pattern scans every code point (0.3 s),
    which a test app need not pay (``serve`` builds the pattern before forking workers)."""

    def __init__(self, config: Config):
        self.config = config
        self._body: bytes | None = None

    def on_get(self, req, resp):
        if self._body is None:
            self._body = orjson.dumps(openapi_document(self.config))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


# ----------------------------------------------------------------- plumbing

AFTER_RESPONSE = "searchsvc.after_response"     # the environ's list of work for after the answer


def after_response(req, fn, *args) -> None:
    """Call ``fn(*args)`` once the answer was sent: bookkeeping (metrics, the access line,
    the query log) that the client need not wait for. WSGI servers close the response
    after writing it (PEP 3333), and :class:`SearchApp` runs the work then."""
    req.env.setdefault(AFTER_RESPONSE, []).append((fn, args))

REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")    # printable ASCII: safe in a header and a log line


class AccessLog:
    """A request id (the client's X-Request-Id, else a new one, echoed), one JSON access line
    and the request metrics per request; on every response the security headers, ``Vary:
    Origin`` when CORS is on, and validators only on answers about an existing resource."""

    def __init__(self, cors: bool = False):
        self.cors = cors

    def process_request(self, req, resp):
        req.context.t0 = time.perf_counter()
        given = req.get_header("X-Request-Id")
        req.context.request_id = given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    def process_response(self, req, resp, resource, req_succeeded):
        request_id = getattr(req.context, "request_id", None) or uuid.uuid4().hex
        resp.set_header("X-Request-Id", request_id)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        if self.cors and "origin" not in (resp.get_header("Vary") or "").lower():
            resp.append_header("Vary", "Origin")      # the allow-origin answer depends on it: caches must key on it
        status = int(resp.status_code)
        if status >= 400:
            resp.delete_header("ETag")                 # no validator for what does not exist
        elif status == 200 and req.method in ("GET", "HEAD") and "*" in (req.if_none_match or ()):
            resp.status, resp.media, resp.data, resp.text, resp.stream = falcon.HTTP_304, None, None, None, None
            status = 304
        took = time.perf_counter() - getattr(req.context, "t0", time.perf_counter())
        route = req.uri_template or ("/static" if req.path.startswith("/static/") else "unmatched")
        method = req.method if req.method in falcon.COMBINED_METHODS else "other"
        line = {"ts": dt.datetime.now(dt.timezone.utc), "request_id": request_id, "method": req.method,
                "path": req.path, "status": status, "took_ms": round(took * 1000, 2)}
        after_response(req, _account, route, method, took, line)


def _account(route: str, method: str, took: float, line: dict) -> None:
    """A request's metrics and its JSON access line (``line``, its time as a datetime)."""
    flush_lookups(max_age=LOOKUP_FLUSH_SECONDS)
    metrics.REQUESTS.labels(route, method, str(line["status"])).inc()
    metrics.LATENCY.labels(route, method, str(line["status"])).observe(took)
    if log.isEnabledFor(logging.INFO):
        line["ts"] = line["ts"].isoformat(timespec="milliseconds")
        log.info(json.dumps(line, ensure_ascii=False))


class ArticleWrites:
    """``/articles/{id}/related`` shares the article route (ids may contain '/'), but only GET
    and HEAD apply to it: writing there is 405, not an attempt to write an article (the id
    grammar, :func:`searchsvc.parsing.check_id`, reserves the suffix)."""

    def process_resource(self, req, resp, resource, params):
        if req.method not in ("PUT", "DELETE") or not isinstance(resource, ArticleResource):
            return
        if params.get("doc_id", "").endswith(RELATED):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])

    def process_response(self, req, resp, resource, req_succeeded):
        if req.method == "OPTIONS" and isinstance(resource, ArticleResource) and req.path.endswith(RELATED):
            resp.set_header("Allow", "GET, HEAD")


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
    metrics.SEARCHES.labels("timeout").inc()
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", "1")
    resp.media = _error_body("timeout", f"{ex}; narrow the query (a longer phrase, a section or dates)")


def _handle_body_incomplete(req, resp, ex, params):
    """The body stopped arriving (``serve``'s worker: the client left, or sent nothing for
    the worker's timeout): nothing was applied."""
    resp.status = falcon.HTTP_408
    resp.set_header("Connection", "close")
    resp.media = _error_body("request_timeout", str(ex))


def _handle_bad_request(req, resp, ex, params):
    """The engine's own parameter checks (sort, the result window): a 400 like the edge's."""
    _handle_api_error(req, resp, bad(ex.param, str(ex)), params)


def _handle_unexpected(req, resp, ex, params):
    logging.getLogger("searchsvc").exception("unhandled error on %s %s", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.media = _error_body("internal_error", "internal error")


def _json_handler():
    # orjson: 5-10x faster than json; its bytes go out as they are (Falcon encodes only a str)
    return falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)


class SearchApp(falcon.App):
    """falcon.App that also carries its engine (for gunicorn hooks and tests), and runs each
    request's :func:`after_response` work when the server closes the response."""

    engine: Engine
    query_log: QueryLog

    def __call__(self, env, start_response):
        body = super().__call__(env, start_response)
        work = env.pop(AFTER_RESPONSE, None)
        if not work:
            return body
        if isinstance(body, list):      # (not a file wrapper: the server may send that file itself)
            return _ClosingBody(body, work)
        _run(work)
        return body


class _ClosingBody:
    """A response body whose ``close()`` runs the request's after-response work."""

    def __init__(self, body: list, work: list):
        self._body, self._work = body, work

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        work, self._work = self._work, []       # once, however often a server closes it
        _run(work)


def _run(work: list) -> None:
    for fn, args in work:
        try:
            fn(*args)
        except Exception:      # bookkeeping must not fail an answer already given
            logging.getLogger("searchsvc").exception("after-response work failed")


def _route(app, template: str, resource) -> None:
    """add_route, with HEAD answered like GET wherever GET is (falcon sends no body for HEAD)."""
    if hasattr(resource, "on_get") and not hasattr(resource, "on_head"):
        resource.on_head = resource.on_get
    app.add_route(template, resource)


def create_app(config: Config | None = None, engine: Engine | None = None, analysis: Analysis | None = None,
               writer: Writer | None = None):
    """Build the WSGI app. ``engine`` may be injected (tests share one)."""
    config = config or Config.from_env()
    if engine is None:
        engine = Engine.from_config(config, analysis)
    query_log = QueryLog(config.query_log_path)
    middleware = [AccessLog(cors=bool(config.cors_origins)), ArticleWrites()]
    if config.cors_origins:
        middleware.insert(0, falcon.CORSMiddleware(
            allow_origins="*" if "*" in config.cors_origins else list(config.cors_origins),
            expose_headers=["ETag"]))
    app = SearchApp(middleware=middleware)
    # No trailing-slash stripping: 'a/b/' is not the id 'a/b' (nor a valid id at all).
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.keep_blank_qs_values = True      # `page=` is a bad page, not the default (contract)
    handler = _json_handler()
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler

    _route(app, "/search", SearchResource(engine, config, query_log))
    access = WriteAccess(writer or (Writer(config, engine.analysis) if config.write_token else None), config)
    _route(app, "/articles/bulk", BulkResource(engine, access))
    _route(app, "/articles/{doc_id:path}", ArticleResource(engine, config, access))
    _route(app, "/suggest", SuggestResource(engine, query_log))
    _route(app, "/popular", PopularResource(query_log))
    _route(app, "/sections", SectionsResource(engine, config))
    env = web.templates()
    _route(app, "/", web.SearchPage(engine, config, env))
    _route(app, "/a/{doc_id:path}", web.ArticlePage(engine, env))
    app.add_static_route("/static", str(web.STATIC_DIR))
    _route(app, "/healthz", HealthResource(engine))
    _route(app, "/metrics", MetricsResource(engine, config))
    _route(app, "/openapi.json", OpenAPIResource(config))

    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    app.add_error_handler(IndexMissing, _handle_index_missing)
    app.add_error_handler(ApiError, _handle_api_error)
    app.add_error_handler(SearchTimeout, _handle_timeout)
    app.add_error_handler(BadRequest, _handle_bad_request)
    app.add_error_handler(BodyIncomplete, _handle_body_incomplete)
    app.engine = engine
    app.query_log = query_log
    return app
