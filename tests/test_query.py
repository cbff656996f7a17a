"""The query language, table by table: what ``query.parse`` makes of what people type."""

import pytest

from searchsvc.query import Clause, parse, public_form

W = Clause                                   # a word clause


def P(text, **kw):                           # a phrase clause
    return Clause(text, phrase=True, **kw)


@pytest.mark.parametrize("q, groups, excluded", [
    ("", [], []),
    ("   ", [], []),
    ("残疾人就业政策", [[W("残疾人就业政策")]], []),
    ("残疾人 就业", [[W("残疾人")], [W("就业")]], []),
    ('"创先争优活动"', [[P("创先争优活动")]], []),
    ('"未闭合的引号', [[P("未闭合的引号")]], []),                       # runs to the end
    ("-党校 -\"工作会议\" 党建", [[W("党建")]], [W("党校", negated=True), P("工作会议", negated=True)]),
    ("残联 OR 残疾人联合会", [[W("残联"), W("残疾人联合会")]], []),
    ("OR 残联", [[W("残联")]], []),                                    # nothing to join: dropped
    ("残联 OR", [[W("残联")]], []),
    ("title:党建", [[W("党建", field="title")]], []),
    ('TITLE:"两学一做"', [[P("两学一做", field="title")]], []),
    ("author:张三", [[W("author:张三")]], []),                          # unknown field: literal
    ("习* /.*/ a?b~", [[W("习*")], [W("/.*/")], [W("a?b~")]], []),        # no wildcards, no regex
    ("- --- x", [[W("x")]], []),                                      # dashes alone are nothing
    ("---x", [[W("---x")]], []),                                      # ... before a word, literal
    ('""', [], []),
])
def test_parse(q, groups, excluded):
    parsed = parse(q)
    assert parsed.groups == groups and parsed.excluded == excluded


@pytest.mark.parametrize("q, plain, empty", [
    ("残急人", True, False), ("残疾 人", True, False), ('"残疾人"', False, False), ("a OR b", False, False),
    ("title:a", False, False), ("a -b", False, False), ("", False, True), ("-a", False, True),
])
def test_plain_and_empty(q, plain, empty):
    assert parse(q).is_plain is plain and parse(q).is_empty is empty


@pytest.mark.parametrize("q, offered", [
    ("乡村振兴", "乡村振兴"), ('乡村 "振兴战略"', '乡村 "振兴战略"'), ("乡村振兴 -秘密词", "乡村振兴"),
    ("a OR b", None), ("title:党建", None), ("", None),
])
def test_public_form_never_offers_negated_text(q, offered):
    assert public_form(parse(q)) == offered
