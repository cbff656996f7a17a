"""Inputs: the site's page layout in its encodings, JSON Lines, and broken files."""

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from searchsvc.parsing import (ARTICLE_DATE, Article, ArticleError, Skip, article_from_dict, check_id, parse_date,
                               read_inputs, read_page)

from conftest import SAMPLE_PAGE, need

PAGE = """您当前的位置 : 每日甘肃政务云  >  甘肃省直机关党建网  >  组织建设  >  党员教育

测试标题 第二部分

签发时间:2021/07/01/ 08:05  来源:组织部

\u00a0\u00a0 某单位机关党委

第一段正文。

第二段正文。

责任编辑:某编辑
关于我们 | 版权声明 | 联系我们
------------------------------------------
页脚不是正文
"""


def test_the_real_sample_page():
    page = read_page(need(SAMPLE_PAGE))
    assert page.title == "以创先争优为动力 进一步推进学习型党组织建设"
    assert page.section == "思想建设 > 思政工作"
    assert page.date.isoformat() == "2013-05-27T17:35:00"
    assert (page.source, page.author, page.editor) == ("admin", "省残联机关党委", "杨宏红")
    assert page.body.startswith("去年以来")
    assert page.body.endswith("提供坚强保证。")
    assert "版权所有" not in page.body and "责任编辑" not in page.body


@pytest.mark.parametrize("encoding,newline", [("utf-8", "\n"), ("utf-8-sig", "\n"), ("gb18030", "\r\n"),
                                              ("gb18030", "\n")])
def test_page_encodings_and_line_endings(tmp_path, encoding, newline):
    (tmp_path / "2021").mkdir()
    path = tmp_path / "2021" / "a1.txt"
    path.write_bytes(PAGE.replace("\n", newline).encode(encoding))
    [article] = list(read_inputs([tmp_path]))
    assert article.id == "a1"
    assert article.section == "组织建设 > 党员教育"
    assert article.title == "测试标题 第二部分"
    assert article.author == "某单位机关党委"
    assert article.body == "第一段正文。\n第二段正文。"
    assert article.editor == "某编辑"


def test_site_crumbs_are_configurable(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(PAGE.replace("每日甘肃政务云  >  甘肃省直机关党建网", "某市门户"), "utf-8")
    [article] = list(read_inputs([path], site_crumbs=("某市门户",)))
    assert article.section == "组织建设 > 党员教育"


def test_broken_pages_are_skipped_with_reasons(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "notitle.txt").write_text("您当前的位置 : 甲 > 乙\n\n签发时间:2020/01/01/ 10:00\n", "utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa\x80\x81" * 3)
    results = {Path(r.where).name: r.reason for r in read_inputs([tmp_path]) if isinstance(r, Skip)}
    assert results["empty.txt"] == "empty file"
    assert results["binary.txt"] == "binary file"
    assert "title" in results["notitle.txt"]
    assert "undecodable" in results["bad.txt"] or "title" in results["bad.txt"]


def test_jsonl_records_and_their_errors(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([
        '{"id": "a", "title": "标题", "body": "正文", "date": "2024-01-02", "section": "甲>乙"}',
        '{"id": "b", "title": "无日期", "body": "正文", "date": null, "source": null}',
        '{not json',
        '{"title": "缺少编号", "body": "x"}',
        '{"id": "c", "title": "坏日期", "body": "x", "date": "yesterday"}',
        '[1, 2]',
    ]), "utf-8")
    results = list(read_inputs([path]))
    articles = [r for r in results if isinstance(r, Article)]
    skips = [r for r in results if isinstance(r, Skip)]
    assert [a.id for a in articles] == ["a", "b"]
    assert articles[0].section == "甲 > 乙" and articles[0].date.isoformat() == "2024-01-02T00:00:00"
    assert articles[1].date is None
    assert [s.where.rsplit(":", 1)[1] for s in skips] == ["3", "4", "5", "6"]
    assert "invalid JSON" in skips[0].reason and "missing id" in skips[1].reason and "date" in skips[2].reason


def test_missing_paths_are_reported(tmp_path):
    [skip] = list(read_inputs([tmp_path / "nope.jsonl"]))
    assert isinstance(skip, Skip) and "no such file" in skip.reason


def test_a_page_has_one_id_however_it_is_indexed(tmp_path):
    (tmp_path / "pages" / "2023").mkdir(parents=True)
    page = tmp_path / "pages" / "2023" / "grid.txt"
    page.write_text(PAGE, "utf-8")
    ids = {a.id for root in (tmp_path, tmp_path / "pages", tmp_path / "pages" / "2023", page)
           for a in read_inputs([root])}
    assert ids == {"grid"}


def test_two_pages_with_one_name_are_reported_not_merged(tmp_path):
    for year in ("2023", "2024"):
        (tmp_path / year).mkdir()
        (tmp_path / year / "a1.txt").write_text(PAGE, "utf-8")
    first, second = read_inputs([tmp_path])
    assert isinstance(first, Article) and first.id == "a1"
    assert isinstance(second, Skip) and "duplicate page id 'a1'" in second.reason and "2023" in second.reason


@pytest.mark.parametrize("doc_id,normalised", [
    ("a", "a"), ("2025/a1", "2025/a1"), ("中文/编号 1", "中文/编号 1"), ("a?b#c%20", "a?b#c%20"),
    ("related", "related"), ("bulk/x", "bulk/x"), ("x/related/y", "x/related/y"),
    ("cafe\u0301", "caf\u00e9"),                       # NFC: one id for both spellings
    ("x" * 512, "x" * 512),
])
def test_the_id_grammar_accepts(doc_id, normalised):
    assert check_id(doc_id) == normalised


@pytest.mark.parametrize("doc_id,why", [
    ("", "1-512"), ("x" * 513, "1-512"), (" trail ", "whitespace"), ("a\tb", "U+0009"),
    ("a\x7fb", "U+007F"), ("a\u202eb", "U+202E"), ("a\u200bb", "U+200B"), ("a\u2028b", "U+2028"),
    ("a/b/", "segments"), ("/a", "segments"), ("a//b", "segments"), ("a/../b", "segments"), (".", "segments"),
    ("bulk", "reserved"), ("x/related", "reserved"),
])
def test_the_id_grammar_refuses(doc_id, why):
    with pytest.raises(ArticleError) as e:
        check_id(doc_id)
    assert why in str(e.value) and e.value.field == "id"


def test_dates_keep_their_precision():
    day = article_from_dict({"id": "d", "title": "t", "body": "", "date": "2024-03-05"})
    minute = article_from_dict({"id": "m", "title": "t", "body": "", "date": "2024-03-05T08:30"})
    assert day.to_json()["date"] == "2024-03-05" and minute.to_json()["date"] == "2024-03-05T08:30"
    assert article_from_dict(day.to_json()).to_json() == day.to_json()


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(ARTICLE_DATE, fullmatch=True))
@example(text="0001-01-01")
@example(text="2024-02-29T23:59:59.123456+08:00")
@example(text="2023-12-31 08:05Z")
def test_a_date_is_the_minute_its_own_digits_say(text):
    """Any date the pattern admits (with seconds, fractions, an offset or ``Z``) becomes the
    wall-clock minute written in it: the first 16 characters' digits, not a converted time."""
    hour, minute = (int(text[11:13]), int(text[14:16])) if len(text) > 10 else (0, 0)
    assert parse_date(text) == dt.datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), hour, minute)
