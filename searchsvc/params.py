"""Reading request parameters: every bad value becomes an :class:`ApiError` naming it."""

from __future__ import annotations

import datetime as dt

import falcon

from .config import Config
from .searching import SearchRequest

MAX_QUERY_CHARS = 1000
MAX_SUGGEST_CHARS = 100


class ApiError(Exception):
    def __init__(self, status: str, code: str, message: str, param: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.headers = headers or {}


def bad(param: str, message: str) -> ApiError:
    return ApiError(falcon.HTTP_400, "invalid_parameter", message, param)


def int_param(req, name, default, lo, hi):
    raw = req.get_param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(name, f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise bad(name, f"{name} must be between {lo} and {hi}")
    return value


def date_param(req, name):
    raw = req.get_param(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise bad(name, f"{name} must be a date YYYY-MM-DD") from None


def single(req, name):
    values = req.get_param_as_list(name) or []
    if len(values) > 1:
        raise bad(name, f"{name} may be given once")
    return values[0] if values else None


def search_request(req, config: Config, default_per_page: int = 10) -> SearchRequest:
    q = single(req, "q") or ""
    if len(q) > MAX_QUERY_CHARS:
        raise bad("q", f"q may be at most {MAX_QUERY_CHARS} characters")
    sections = tuple(s.strip() for s in (req.get_param_as_list("section") or []) if s.strip())
    sections = tuple(" > ".join(p.strip() for p in s.split(">") if p.strip()) for s in sections)
    date_from, date_to = date_param(req, "from"), date_param(req, "to")
    if date_from and date_to and date_from > date_to:
        raise bad("from", "from must not be after to")
    sort = single(req, "sort") or "relevance"
    page = int_param(req, "page", 1, 1, config.max_result_window)
    per_page = int_param(req, "per_page", default_per_page, 1, config.max_per_page)
    if page * per_page > config.max_result_window:
        raise bad("page", f"page × per_page may not exceed {config.max_result_window}")
    return SearchRequest(q=q, sections=sections, date_from=date_from, date_to=date_to, sort=sort,
                         page=page, per_page=per_page)
