"""Inputs: the site's page layout in its encodings, JSON Lines, and broken files."""

from pathlib import Path

import pytest

from searchsvc.parsing import Article, Skip, read_inputs, read_page

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
    page = read_page(need(SAMPLE_PAGE), Path(SAMPLE_PAGE).parent)
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
    assert article.id == "2021/a1"
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
