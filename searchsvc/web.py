"""The HTML search page (``/``) and article page (``/a/{id}``), server-rendered
with Jinja2 from the same engine as the JSON API; ``/static`` holds the one
script (autocomplete) and the stylesheet. No inline script or style, so the
pages carry a strict Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import contract, metrics
from .config import Config
from .contract import MAX_QUERY_CHARS
from .highlight import render
from .params import ApiError, search_request
from .parsing import SECTION_SEP
from .searching import BadRequest, Engine, SearchTimeout

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SORT_LABELS = {"relevance": "相关度", "newest": "最新", "oldest": "最早"}
SORTS = tuple((s, SORT_LABELS[s]) for s in contract.SORTS)     # (value, label) for the form
PAGER_SPAN = 4            # page links either side of the current one


def templates() -> Environment:
    return Environment(loader=FileSystemLoader(PACKAGE_DIR / "templates"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _html(resp, body: str, status=falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.set_header("Content-Security-Policy", CSP)
    resp.set_header("X-Frame-Options", "DENY")
    resp.text = body


def _search_params(req) -> dict:
    """The search's own parameters, to keep across facet links, pages and the article page."""
    out = {}
    for name in ("q", "from", "to", "sort", "page", "typos"):
        value = req.get_param(name)
        if value:
            out[name] = value
    sections = req.get_param_as_list("section") or []
    if sections:
        out["section"] = sections
    return out


def _url(params: dict, path: str = "/", **changes) -> str:
    merged = {**params}
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return path + ("?" + urlencode(merged, doseq=True) if merged else "")


def _article_path(doc_id: str) -> str:
    return "/a/" + falcon.uri.encode_value(doc_id)


def _pages(page: int, last: int) -> list[int]:
    return list(range(max(1, page - PAGER_SPAN), min(last, page + PAGER_SPAN) + 1))


def _facets(values: list[dict]) -> list[dict]:
    """Section counts as an indented tree: largest first at every level."""
    counts = {f["value"]: f["count"] for f in values}

    def key(value):
        parts = value.split(SECTION_SEP)
        prefixes = [SECTION_SEP.join(parts[:i]) for i in range(1, len(parts) + 1)]
        return [(-counts.get(p, 0), p) for p in prefixes]
    return [{"value": v, "count": counts[v], "name": v.rsplit(SECTION_SEP, 1)[-1], "depth": v.count(SECTION_SEP)}
            for v in sorted(counts, key=key)]


class SearchPage:
    def __init__(self, engine: Engine, config: Config, env: Environment):
        self.engine, self.config, self.env = engine, config, env

    def on_get(self, req, resp):
        params = _search_params(req)
        context = {"q": params.get("q", ""), "sections": params.get("section", []),
                   "date_from": params.get("from", ""), "date_to": params.get("to", ""),
                   "sort": params.get("sort", "relevance"), "sorts": SORTS, "result": None,
                   "error": None, "facets": [], "url": lambda **ch: _url(params, **ch)}
        status = falcon.HTTP_200
        try:
            sreq = search_request(req, self.config, blank_is_absent=True)     # the form sends empty fields
            result = self.engine.search(sreq)
        except ApiError as e:
            context["error"] = f"参数有误：{e.message_zh or e.param}"
            status = falcon.HTTP_400
        except BadRequest as e:    # the engine's own checks (English text): name the parameter only
            context["error"] = f"参数有误：{e.param} 的值不被接受"
            status = falcon.HTTP_400
        except SearchTimeout:
            metrics.SEARCHES.labels("timeout").inc()
            context["error"] = "查询用时过长，请缩小范围（更长的短语、栏目或日期）后重试。"
            status = falcon.HTTP_503
        else:
            metrics.count_search(result)
            deepest = contract.param(contract.SEARCH, "page").upper(self.config)
            last = max(1, min(-(-result.total // sreq.per_page), deepest))
            context.update(result=result, page=sreq.page, last_page=last, pages=_pages(sreq.page, last),
                           first=(sreq.page - 1) * sreq.per_page + 1,
                           facets=_facets(result.facets["section"]))
        # A corrected typo: the article page marks what was found (the homophones), not the typo.
        marked = {**params, "q": result.corrected} if context["result"] and result.corrected else params
        context["article_url"] = lambda doc_id: _url(marked, _article_path(doc_id))
        _html(resp, self.env.get_template("search.html").render(**context), status)


def paragraphs(html: str) -> list[str]:
    """Split marked-up text into paragraphs, closing and reopening a <mark> cut by a line break."""
    out, carry = [], False
    for line in html.split("\n"):
        if not line.strip():
            continue
        text = ("<mark>" if carry else "") + line
        carry = text.count("<mark>") > text.count("</mark>")
        out.append(text + ("</mark>" if carry else ""))
    return out


class ArticlePage:
    def __init__(self, engine: Engine, env: Environment):
        self.engine, self.env = engine, env

    def on_get(self, req, resp, doc_id):
        params = _search_params(req)
        q = params.get("q", "")[:MAX_QUERY_CHARS]
        article = self.engine.article(doc_id, q)
        if article is None:
            context = {"q": q, "sections": [], "result": None, "error": f"找不到编号为 {doc_id} 的文章。",
                       "facets": [], "sorts": SORTS, "sort": "relevance", "url": lambda **ch: _url(params, **ch)}
            return _html(resp, self.env.get_template("search.html").render(**context), falcon.HTTP_404)
        body_html = article.get("body_html") or render(article["body"], [])
        url = article.get("url") or ""
        context = {"q": q, "sections": [], "article": article, "paragraphs": paragraphs(body_html),
                   "back": _url(params), "related": self.engine.related(doc_id, 5) or [],
                   "source_url": url if url.startswith(("http://", "https://")) else None,
                   "article_url": lambda i: _url({"q": q} if q else {}, _article_path(i))}
        _html(resp, self.env.get_template("article.html").render(**context))
