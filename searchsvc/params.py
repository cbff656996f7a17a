"""Reading request parameters against the tables of :mod:`contract`: every bad value
becomes an :class:`ApiError` naming it, with the message in English (JSON) and
Chinese (the HTML pages)."""

from __future__ import annotations

import datetime as dt
import re

import falcon

from . import contract
from .config import Config
from .contract import Param
from .parsing import normalize_section
from .searching import SearchRequest

class ApiError(Exception):
    def __init__(self, status: str, code: str, message: str, param: str | None = None, headers=None,
                 message_zh: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.headers = headers or {}
        self.message_zh = message_zh


# (English, Chinese) message of each kind of bad value.
MESSAGES = {
    "integer": ("{name} must be an integer", "{name} 必须是整数"),
    "range": ("{name} must be between {lo} and {hi}", "{name} 必须在 {lo} 到 {hi} 之间"),
    "date": ("{name} must be a date YYYY-MM-DD", "{name} 必须是 YYYY-MM-DD 格式的日期"),
    "enum": ("{name} must be one of {values}", "{name} 只能是 {values} 之一"),
    "too_long": ("{name} may be at most {n} characters", "{name} 最多 {n} 个字符"),
    "required": ("{name} is required", "缺少 {name}"),
    "once": ("{name} may be given once", "{name} 只能给一次"),
    "type": ("{name} must be {what}", "{name} 的类型不对，应为 {what}"),
    "boolean": ("{name} must be true or false (or 1 or 0)", "{name} 只能是 true 或 false（或 1、0）"),
    "unknown": ("unknown parameter {name}", "未知参数 {name}"),
}


def bad(param: str, kind_or_message: str, **values) -> ApiError:
    """A 400 naming ``param``: ``kind`` is a key of MESSAGES (both languages), else a message."""
    english, chinese = MESSAGES.get(kind_or_message, (kind_or_message, None))
    values.setdefault("name", param)
    return ApiError(falcon.HTTP_400, "invalid_parameter", english.format(**values), param,
                    message_zh=chinese.format(**values) if chinese else None)


def check(p: Param, value, config: Config, query: bool = True):
    """One value, from a query string (text) or a JSON body (typed), checked and converted."""
    if p.type == "integer":
        if query and isinstance(value, str) and re.fullmatch(contract.INTEGER, value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():     # JSON's 2.0 is an integer too
            value = int(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise bad(p.name, "integer")
        hi = p.upper(config)
        if not p.minimum <= value <= hi:
            raise bad(p.name, "range", lo=p.minimum, hi=hi)
        return value
    if p.type == "boolean":
        if isinstance(value, bool):
            return value
        if query and isinstance(value, str) and value.lower() in contract.BOOLEANS:
            return contract.BOOLEANS[value.lower()]
        raise bad(p.name, "boolean")
    if not isinstance(value, str):
        raise bad(p.name, "type", what="a string")
    if p.type == "date":
        try:
            if not re.fullmatch(contract.DATE, value):
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            raise bad(p.name, "date") from None
    if p.max_length is not None and len(value) > p.max_length:
        raise bad(p.name, "too_long", n=p.max_length)
    if p.required and not (re.search(p.pattern, value) if p.pattern else value):
        raise bad(p.name, "required")
    if p.enum and value not in p.enum:
        raise bad(p.name, "enum", values=", ".join(p.enum))
    return value


def read(req, table: tuple[Param, ...], config: Config, blank_is_absent: bool = False) -> dict:
    """The query string's values of ``table``, defaults filled in. A blank value is checked
    like any other (``page=`` is not an integer), except for HTML forms (``blank_is_absent``)."""
    out = {}
    for p in table:
        values = req.get_param_as_list(p.name) or []
        if blank_is_absent:
            values = [v for v in values if v]
        if p.type == "array":
            out[p.name] = [check(p, v, config) for v in values]
            continue
        if len(values) > 1:
            raise bad(p.name, "once")
        out[p.name] = check(p, values[0], config) if values else _default(p)
    return out


def read_body(body, table: tuple[Param, ...], config: Config) -> dict:
    """A JSON object's values of ``table``; unknown keys are refused (a typo is not ignored)."""
    if not isinstance(body, dict):
        raise bad("body", "type", what="a JSON object")
    known = {p.name: p for p in table}
    for key in body:
        if key not in known:
            raise bad(str(key), "unknown")
    out = {}
    for p in table:
        if p.name not in body:
            out[p.name] = [] if p.type == "array" else _default(p)
        elif p.type == "array":
            if not isinstance(body[p.name], list):
                raise bad(p.name, "type", what="an array of strings")
            out[p.name] = [check(p, v, config, query=False) for v in body[p.name]]
        else:
            out[p.name] = check(p, body[p.name], config, query=False)
    return out


def _default(p: Param):
    if p.required:
        raise bad(p.name, "required")
    return p.default


def int_param(req, name, default, lo, hi):
    return read(req, (Param(name, "integer", "", default, lo, hi),), None)[name]


def single(req, name):
    values = req.get_param_as_list(name) or []
    if len(values) > 1:
        raise bad(name, "once")
    return values[0] if values else None


def search_request(req, config: Config, blank_is_absent: bool = False) -> SearchRequest:
    """The search's parameters from the query string."""
    return to_search_request(read(req, contract.SEARCH, config, blank_is_absent), config)


def to_search_request(values: dict, config: Config) -> SearchRequest:
    """Checked parameter values (from :func:`read` or :func:`read_body`) -> SearchRequest."""
    sections = tuple(s.strip() for s in values["section"] if s.strip())
    sections = tuple(normalize_section(s) or "" for s in sections)
    # from after to selects nothing (no error: each value is valid, as the contract declares).
    return SearchRequest(q=values["q"] or "", sections=sections, date_from=values["from"], date_to=values["to"],
                         sort=values["sort"], page=values["page"], per_page=values["per_page"],
                         typos=values["typos"] == "on", explain=values["explain"])
