"""Snippets and highlighting (``highlight.py``), table-driven, with the real normaliser:
exact HTML for each case."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hypothesis import given, settings, strategies as st

from searchsvc.highlight import (MAX_MARKS, SNIPPET_CHARS, _SENTENCE_END, _last_stop, find_spans, highlight, render,
                                 snippet)


@pytest.fixture(scope="module")
def norm(analysis):
    return analysis.normalizer


@pytest.mark.parametrize("text,needles,limit,spans", [
    ("残疾人就业", ["就业"], MAX_MARKS, [(3, 5)]),
    ("党建党建", ["党建"], MAX_MARKS, [(0, 4)]),                    # touching occurrences: one span
    ("乡村振兴战略", ["乡村", "振兴"], MAX_MARKS, [(0, 4)]),          # a phrase matched word by word
    ("乡村振兴战略", ["村振", "乡村振"], MAX_MARKS, [(0, 3)]),        # overlapping
    ("甲乙甲乙甲", ["甲"], 2, [(0, 1), (2, 3)]),                       # the first `limit` only
    ("abc", ["", "z"], MAX_MARKS, []),                                 # empty and absent needles
    ("aaaa", ["aa"], MAX_MARKS, [(0, 4)]),                             # overlapping self-occurrences
])
def test_find_spans(text, needles, limit, spans):
    assert find_spans(text, needles, limit) == spans


@pytest.mark.parametrize("text,needles,html", [
    ("残疾人就业", ["就业"], "残疾人<mark>就业</mark>"),
    ("殘疾人就業", ["就业"], "殘疾人<mark>就業</mark>"),                # traditional text, simplified needle
    ("ＡＢＣ党建", ["abc"], "<mark>ＡＢＣ</mark>党建"),                 # full-width and case
    ("<b>党建</b>&", ["党建"], "&lt;b&gt;<mark>党建</mark>&lt;/b&gt;&amp;"),   # everything else escaped
    ("<党建>", ["<党"], "<mark>&lt;党</mark>建&gt;"),                  # and inside a mark too
    ("乡村振兴战略", ["乡村", "振兴"], "<mark>乡村振兴</mark>战略"),
    ("没有匹配", ["党建"], "没有匹配"),
    ("", ["党建"], ""),
])
def test_highlight(norm, text, needles, html):
    assert highlight(text, needles, norm) == html


def test_highlight_marks_at_most_max_marks_however_long_the_text(norm):
    text = "的，" * (MAX_MARKS + 300) + "\n" + "的。" * 50_000
    html = highlight(text, ["的"], norm)
    assert html.count("<mark>") == MAX_MARKS
    assert re.sub(r"</?mark>", "", html) == text


def _visible(html: str) -> str:
    return re.sub(r"</?mark>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


SENTENCES = ["今年以来，各地扎实推进各项工作。", "有关部门召开专题会议进行部署。", "会议要求压实责任、狠抓落实。"]
FILLER = "".join(SENTENCES * 8)        # ~370 characters without a match


@pytest.mark.parametrize("body,needles,expected", [
    # a short body: all of it, no ellipsis
    ("残疾人就业形势稳定。", ["就业"], "残疾人<mark>就业</mark>形势稳定。"),
    # no match: the start of the body, … where it goes on
    (FILLER, ["党建"], None),
    ("", ["党建"], ""),
])
def test_snippet_short_and_unmatched(norm, body, needles, expected):
    html = snippet(body, needles, norm)
    if expected is not None:
        assert html == expected
    else:
        assert "<mark>" not in html and html.endswith("…") and not html.startswith("…")
        assert FILLER.startswith(_visible(html)[:-1]) and len(_visible(html)) <= SNIPPET_CHARS + 1


@pytest.mark.parametrize("needles,marked", [
    (["残疾人就业"], ["残疾人就业"]),
    (["残疾人", "康复"], ["残疾人", "残疾人康复"]),                 # touching matches: one mark
])
def test_snippet_window_holds_the_matches_cut_at_sentences(norm, needles, marked):
    middle = "市残联帮助残疾人就业，残疾人康复中心同日启用。"
    body = FILLER + middle + FILLER
    html = snippet(body, needles, norm)
    text = _visible(html)
    assert html.startswith("…") and html.endswith("…")
    assert middle in text                                    # the window around the matches
    assert len(text) <= SNIPPET_CHARS + 2
    inner = text[1:-1]
    assert inner in body and (inner[0] == "市" or body[body.index(inner) - 1] in "。！？；!?;\n")
    assert inner[-1] in "。！？；!?;\n" or len(inner) == SNIPPET_CHARS
    for m in marked:
        assert f"<mark>{m}</mark>" in html


def test_snippet_prefers_the_window_with_most_matches(norm):
    body = FILLER + "党建。" + FILLER + "党建引领，党建带动，党建促进。" + FILLER
    html = snippet(body, ["党建"], norm)
    assert html.count("<mark>党建</mark>") == 3


def test_snippet_of_a_long_body_reads_only_near_the_first_match(norm):
    """``near``: where the caller found the first match; a match far beyond the scanned
    region does not move the window there."""
    body = FILLER * 300 + "唯一的关键词出现在这里。" + FILLER * 300
    at = body.index("关键词")
    assert "<mark>关键词</mark>" in snippet(body, ["关键词"], norm, near=at)
    assert "<mark>" not in snippet(body, ["关键词"], norm, near=0)        # beyond SNIPPET_SCAN_CHARS


def test_snippet_escapes_and_keeps_one_line(norm):
    html = snippet("第一行<script>党建</script>\n第二行党建。", ["党建"], norm)
    assert html == "第一行&lt;script&gt;<mark>党建</mark>&lt;/script&gt; 第二行<mark>党建</mark>。"



def test_search_snippets_read_the_stored_normal_form_only_where_it_is_the_body_s(engine, analysis):
    """A search's snippet of a short body takes its normal form from the index when the
    stored article has no offsets (it normalised character for character): there, the
    stored normal form's body is exactly what normalising the body again gives, and the
    snippets are the same either way."""
    view = engine.view()
    checked = 0
    for d in np.flatnonzero(view.live).tolist():
        doc = view.stored(d)
        if doc.get("_offsets") is None:
            text = view.norm_text(d)
            normal, offsets = analysis.normalizer.with_offsets(doc["body"])
            assert offsets is None and text[text.find("\n") + 1:] == normal
            for needles in (["党建"], ["发展", "的"], [normal[3:6]]):
                assert (snippet(doc["body"], needles, analysis.normalizer, norm_body=normal)
                        == snippet(doc["body"], needles, analysis.normalizer))
            checked += 1
    assert checked > 100


def _occurrence_runs(text: str, needles) -> list[tuple[int, int]]:
    """The oracle of find_spans: the characters some needle's occurrence covers, in
    maximal runs (occurrences that overlap or touch leave no gap: one run)."""
    covered = [False] * len(text)
    for needle in needles:
        for i in range(len(text) - len(needle) + 1):
            if text.startswith(needle, i):
                covered[i:i + len(needle)] = [True] * len(needle)
    runs, i = [], 0
    while i < len(text):
        if covered[i]:
            j = i
            while j < len(text) and covered[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


@given(text=st.text(alphabet="党建乡村振兴<&。", max_size=60),
       needles=st.lists(st.text(alphabet="党建乡村振兴<&", min_size=1, max_size=3), min_size=1, max_size=3),
       window=st.tuples(st.integers(0, 70), st.integers(0, 70)))
@settings(max_examples=400, deadline=None)
def test_spans_are_the_runs_of_matched_text_and_render_marks_exactly_them(text, needles, window):
    spans = find_spans(text, needles)
    assert spans == _occurrence_runs(text, needles)
    start, end = min(window), max(window)
    html = render(text, spans, start, min(end, len(text)))
    assert _visible(html) == text[start:min(end, len(text))]
    marked = re.findall(r"<mark>(.*?)</mark>", html)
    clipped = [text[max(s, start):min(e, end)] for s, e in spans if max(s, start) < min(e, end)]
    assert [m.replace("&lt;", "<").replace("&amp;", "&") for m in marked] == clipped


@given(text=st.text(alphabet="党建。！？；!?;\n ，a", max_size=80), lo=st.integers(0, 90), hi=st.integers(0, 90))
@settings(max_examples=400, deadline=None)
def test_the_last_sentence_end_in_a_window_is_what_rfind_finds(text, lo, hi):
    """Snippets cut at the last sentence end of a window (``_last_stop``): the largest index
    any punctuation mark's ``rfind`` gives in the same window."""
    assert _last_stop(text, lo, hi) == max(text.rfind(p, lo, hi) for p in _SENTENCE_END)


@given(text=st.text(alphabet="党建㈱½ﬁ①㍿殘疾ＡＢ (株)1/2fi", max_size=40),
       needles=st.lists(st.text(alphabet="党建株式会社()1⁄2fi残疾ab", min_size=1, max_size=3), min_size=1, max_size=4))
@settings(max_examples=400, deadline=None)
def test_highlighting_shows_the_text_once_whatever_normalisation_expands(norm, text, needles):
    """Marks never repeat text: matches inside one character that normalises to several
    ("㈱" is "(株)", "½" is "1⁄2") become one mark of that character."""
    assert _visible(highlight(text, needles, norm)) == text
    html = snippet(text, needles, norm)
    assert _visible(html) == text.replace("\n", " ")


@given(text=st.text(alphabet="党建㈱½ﬁ①㍿殘疾ＡＢ (株)1/2fi\u0301", max_size=40),
       needles=st.lists(st.text(alphabet="党建株式会社()1⁄2fi残疾ab", min_size=1, max_size=3), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_a_title_highlighted_from_its_stored_normal_form_is_the_same(norm, text, needles):
    """Hits highlight a title with its stored normal form (no normalising per hit): the
    same HTML as normalising it again."""
    assert highlight(text, needles, norm, norm=norm(text)) == highlight(text, needles, norm)
