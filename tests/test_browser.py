"""The search page in a real browser: headless Debian Chromium driven by Playwright,
against `searchsvc serve` on the session index. Screenshots go to screenshots/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import REPO, serving

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("SEARCHSVC_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "screenshots"


@pytest.fixture(scope="module")
def site(built_index):
    with serving(built_index, workers=1) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium fonts-noto-cjk)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page_at(browser):
    """A page factory: new context at a given width; fails the test on console errors (CSP included)."""
    contexts, errors = [], []

    def make(width=1280, height=900, javascript=True):
        ctx = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, errors


def shot(page, name):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def marked_terms(page):
    return page.locator(".hit mark").all_inner_texts()


@pytest.mark.parametrize("width,name", [(1280, "desktop"), (390, "phone")])
def test_search_facet_page_article_and_back(site, page_at, width, name):
    page = page_at(width=width, height=900 if width > 400 else 844)
    page.goto(site + "/")
    assert page.locator(".summary").inner_text().startswith("最新文章")      # empty query: newest
    page.fill("#q", "残疾人")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=%E6%AE%8B"))
    assert page.locator(".hit").count() == 10
    assert "残疾人" in marked_terms(page)
    shot(page, f"{name}-results")

    facet = page.locator(".facets li", has_text="国内新闻")
    expected = int(facet.locator(".count").inner_text())
    facet.locator("a").click()
    page.wait_for_url(re.compile(r"section="))
    assert f"<strong>{expected}</strong>" in page.locator(".summary").inner_html()

    page.fill("#q", "新闻")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=%E6%96%B0"))
    page.locator("a[rel=next]").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator("ol.hits").get_attribute("start") == "11"
    assert page.locator(".pager [aria-current=page]").inner_text() == "2"

    title = page.locator(".hit h3 a").first
    title.click()
    page.wait_for_url(re.compile(r"/a/"))
    assert page.locator("article h1").inner_text()
    assert page.locator(".body mark").count() >= 1
    assert page.locator(".related li").count() >= 1
    assert page.locator("dt", has_text="签发时间").count() == 1
    shot(page, f"{name}-article")
    page.locator("a.back").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert page.input_value("#q") == "新闻"
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_autocomplete_is_keyboard_navigable(site, page_at):
    page = page_at()
    page.goto(site + "/")
    page.locator("#q").press_sequentially("gnlbk", delay=30)
    # A keystroke slower than the debounce lets an earlier prefix's list show first: wait for
    # the answer to the whole input, then for the list to be that answer's.
    with page.expect_response(lambda r: "/suggest" in r.url and "q=gnlbkx" in r.url) as answer:
        page.locator("#q").press("x")
    wanted = [s["text"] for s in answer.value.json()["suggestions"]]
    options = page.locator("#suggestions [role=option]")
    playwright.expect(options).to_have_text([re.compile("^" + re.escape(t)) for t in wanted])
    assert page.get_attribute("#q", "aria-expanded") == "true"
    texts = [t.split("\n")[0] for t in options.all_inner_texts()]
    assert any(t.startswith("国内联播快讯") for t in texts), texts
    shot(page, "desktop-autocomplete")
    index = next(i for i, t in enumerate(texts) if t.startswith("国内联播快讯"))
    for _ in range(index + 1):
        page.keyboard.press("ArrowDown")
    assert options.nth(index).get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=%E5%9B%BD%E5%86%85"))
    assert page.input_value("#q") == "国内联播快讯"


def test_did_you_mean_and_relaxed_notice(site, page_at):
    page = page_at()
    page.goto(site + "/?q=" + "残急人")
    notice = page.locator(".corrected")      # the typo is searched as 残疾人 at once...
    assert "已显示" in notice.inner_text() and "仍然搜索" in notice.inner_text()
    assert notice.locator("a").first.inner_text() == "残疾人"
    notice.locator("a").nth(1).click()      # ...and the query as typed is one click away
    page.wait_for_url(re.compile(r"typos=off"))
    assert page.locator(".corrected").count() == 0
    link = page.locator(".didyoumean a")
    assert link.inner_text() == "残疾人"
    link.click()
    page.wait_for_url(re.compile(r"q=%E6%AE%8B%E7%96%BE"))
    assert "残疾人" in marked_terms(page)


def test_phone_width_has_no_horizontal_scroll(site, page_at):
    page = page_at(width=390, height=844)
    page.goto(site + "/?q=" + "乡村振兴")
    assert page.locator(".hit").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator(".hit h3 a").first.click()
    page.wait_for_url(re.compile(r"/a/"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_works_with_javascript_off(site, page_at):
    page = page_at(javascript=False)
    page.goto(site + "/")
    page.fill("#q", "疫情防控")
    page.locator("form.searchbox button").click()
    page.wait_for_url(re.compile(r"q="))
    assert page.locator(".hit").count() == 10


def test_every_control_has_a_label(site, page_at):
    page = page_at()
    page.goto(site + "/?q=" + "党建")
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id || e.name)""")
    assert unlabeled == []
    page.keyboard.press("Tab")                       # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
