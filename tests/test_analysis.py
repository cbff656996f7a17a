"""The analysis chain: what goes into the index and what queries are made of."""

from pathlib import Path

from searchsvc.analysis import char_grams, phrase_bigrams
from searchsvc.parsing import read_page

from conftest import SAMPLE_PAGE, need

TEXT = "中华人民共和国成立了，第5次ＡＢＣ會議在北京召開。iPhone 15 發佈！"


def tokens(analysis, text):
    return [(t.text, t.pos, t.startchar, t.endchar) for t in analysis.words(text, positions=True, chars=True)]


def test_positions_are_consecutive_and_subwords_share_their_parent(analysis):
    toks = tokens(analysis, TEXT)
    positions = [p for _, p, _, _ in toks]
    assert positions[0] == 0
    assert all(b - a in (0, 1) for a, b in zip(positions, positions[1:]))
    assert sorted(set(positions)) == list(range(max(positions) + 1))
    by_text = {t: p for t, p, _, _ in toks}
    assert by_text["人民"] == by_text["中华人民共和国"]   # search-mode sub-word, same position


def test_offsets_slice_back_to_the_original_text(analysis):
    for text, start, end in [(t, s, e) for t, _, s, e in tokens(analysis, TEXT)]:
        original = TEXT[start:end]
        assert analysis.normalizer(original) == text


def test_traditional_and_simplified_text_give_the_same_terms(analysis):
    simplified = [t for t, _, _, _ in tokens(analysis, "中华人民共和国成立了，第5次ABC会议在北京召开。")]
    traditional = [t for t, _, _, _ in tokens(analysis, "中華人民共和國成立了，第5次ＡＢＣ會議在北京召開。")]
    assert simplified == traditional


def test_digits_and_latin_words_are_kept_and_lowercased(analysis):
    terms = analysis.query_terms("第5次 iPhone15 ＡＢＣ")
    assert "5" in terms and "iphone15" in terms and "abc" in terms
    assert all(t.strip() for t in terms)                     # no whitespace or punctuation tokens


def test_user_dictionary_terms_stay_whole(analysis):
    assert analysis.query_terms("两学一做") == ["两学一做"]
    assert "学习型党组织" in analysis.query_terms("建设学习型党组织")


def test_character_grams_cover_every_character_and_pair():
    assert list(char_grams("党建 网")) == ["党", "建", "党建", "网"]
    assert phrase_bigrams("党建网") == ["党建", "建网"]
    assert phrase_bigrams("党") == ["党"]


def test_sample_page_body_tokens(analysis):
    page = read_page(need(SAMPLE_PAGE))
    terms = [t.text for t in analysis.words(page.body)]
    for word in ("创先争优", "学习型党组织", "残疾人", "党员干部"):
        assert word in terms
    assert not any(t.isspace() or t in "，。、" for t in terms)
