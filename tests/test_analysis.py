"""The analysis chain: what goes into the index and what queries are made of."""

import contextlib
import json
import sys
import unicodedata
from collections import Counter

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from searchsvc.analysis import (MEMO_QUERY_CHARS, Normalizer, char_grams, gram_keys, gram_terms, gram_texts, has_astral, is_word,
                                phrase_bigrams, token_texts)
from searchsvc.parsing import read_page

from conftest import SAMPLE_PAGE, need

TEXT = "中华人民共和国成立了，第5次ＡＢＣ會議在北京召開。iPhone 15 發佈！"


def tokens(analysis, text):
    return [t.text for t in analysis.words(text)]


def test_long_words_are_followed_by_their_dictionary_subwords(analysis):
    toks = tokens(analysis, TEXT)
    parent = toks.index("中华人民共和国")
    assert "人民" in toks[parent + 1:parent + 8] and "共和国" in toks[parent + 1:parent + 8]
    assert "人民" not in analysis.query_terms("中华人民共和国")     # queries keep the whole word


def test_traditional_and_simplified_text_give_the_same_terms(analysis):
    simplified = tokens(analysis, "中华人民共和国成立了，第5次ABC会议在北京召开。")
    traditional = tokens(analysis, "中華人民共和國成立了，第5次ＡＢＣ會議在北京召開。")
    assert simplified == traditional


def test_digits_and_latin_words_are_kept_and_lowercased(analysis):
    terms = analysis.query_terms("第5次 iPhone15 ＡＢＣ")
    assert "5" in terms and "iphone15" in terms and "abc" in terms
    assert all(t.strip() for t in terms)                     # no whitespace or punctuation tokens


def test_user_dictionary_terms_stay_whole(analysis):
    assert analysis.query_terms("两学一做") == ["两学一做"]
    assert "学习型党组织" in analysis.query_terms("建设学习型党组织")


def test_character_grams_cover_every_character_and_pair():
    assert list(char_grams("党建 网")) == ["党", "建", "党建", "建 ", "网", " 网"]
    assert list(char_grams("党\n\u3000 网")) == ["党", "党 ", "网", " 网"]    # a whitespace run is one space
    assert phrase_bigrams("党建网") == ["党建", "建网"]
    assert phrase_bigrams("的 是") == ["的 ", " 是"]
    assert phrase_bigrams("党") == ["党"]


GRAM_TEXT = st.text(st.sampled_from(list("的是 \n\t\u3000a1中国😀𠀀\u0301")), max_size=80) | st.text(max_size=80)


def count_char_grams(norm, unigrams):
    keys, counts = gram_keys(norm, unigrams)
    return list(zip(gram_texts(keys), counts.tolist()))


@given(GRAM_TEXT, st.booleans())
def test_numpy_gram_counts_equal_the_generator(text, unigrams):
    assert dict(count_char_grams(text, unigrams)) == Counter(char_grams(text, unigrams))


@given(GRAM_TEXT, st.booleans())
def test_gram_keys_sort_as_the_terms_bytes(text, unigrams):
    """The indexer sorts grams by key: that must be Whoosh's term order, the UTF-8 bytes'."""
    keys, counts = gram_keys(text, unigrams)
    terms = gram_terms(keys)
    assert terms == sorted(set(terms))
    assert dict(zip(terms, counts.tolist())) == {g.encode(): n for g, n in Counter(char_grams(text, unigrams)).items()}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.sampled_from(list("的是 \n中國ΑΣΟeéａＦ…ｶﾞ가\u1100\u1161\u0301\u0323İﬃ㍿⑴😀𝚺\U0001D165")), max_size=40)
       | st.text(max_size=40))
def test_normalisation_is_nfkc_lower_t2s_of_the_whole_text(analysis, text):
    """The fast per-character path and the whole-string path agree, and the offset
    map sends every normalised character to an original one, in order."""
    norm = analysis.normalizer
    exact = unicodedata.normalize("NFKC", text).lower().translate(norm.t2s)
    mapped, offsets = norm.with_offsets(text)
    assert norm(text) == mapped == exact
    if offsets is not None:
        back = [offsets[i] for i in range(len(mapped))]
        assert back == sorted(back) and all(0 <= i < len(text) for i in back)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.sampled_from(list("中國ａé㈱ﬃ\u0301😀𝚺")), max_size=30) | st.text(max_size=30), st.text(max_size=3))
def test_a_stored_normal_form_gives_what_normalising_again_gives(analysis, text, other):
    """``with_offsets(text, norm)`` with the text's stored normal form equals normalising
    it again; a normal form that cannot be the text's (of another length) is not used."""
    norm = analysis.normalizer

    def mapped(found):      # (normal form, where each of its characters was; None: identity)
        text, offsets = found
        return text, None if offsets is None else [offsets[i] for i in range(len(text))]

    again = mapped(norm.with_offsets(text))
    assert mapped(norm.with_offsets(text, norm(text))) == again
    if len(other) != len(again[0]):
        assert mapped(norm.with_offsets(text, other)) == again


@given(st.text(max_size=50) | st.text(st.sampled_from(list("a é中ﬃ\u0301😀𝚺\U0001D165\ud800")), max_size=50),
       st.integers(0, 50))
def test_character_sets_find_what_their_whole_class_finds(analysis, text, i):
    """A set looks for its BMP characters alone in text without astral ones (a faster
    class); whether the caller passes :func:`has_astral` or not, it finds what the class
    of all its characters finds, in a text and in its slices."""
    norm = analysis.normalizer
    for t in (text, text[i:]):
        with contextlib.suppress(orjson.JSONEncodeError):
            orjson.dumps(t)     # leaves a UTF-8 copy on the str (a storage-width test took that for astral)
        assert has_astral(t) == any(ord(c) > 0xFFFF for c in t)
        for charset in (norm._contextual, norm._expanding, norm._mapped):
            expected = [m.span() for m in charset.pattern.finditer(t)]
            for astral in (None, has_astral(t)):
                assert [m.span() for m in charset.finditer(t, astral)] == expected
                assert bool(charset.search(t, astral)) == bool(expected)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.sampled_from(list("中华人民共和国成立会议北京的是了 ，。\n5ａiPhone發佈́😀")), max_size=60)
       | st.text(max_size=40))
@example(TEXT)      # (long words with sub-words, every time)
def test_indexing_s_texts_path_equals_the_token_chain(analysis, text):
    """``token_texts`` (indexing's path, plain strings) gives the token chain's texts, in order."""
    for chain in (analysis.words, analysis.query_words):
        norm = analysis.normalizer(text)
        assert list(token_texts(chain, norm)) == [t.text for t in chain(norm, normalized=True)]


def test_sample_page_body_tokens(analysis):
    page = read_page(need(SAMPLE_PAGE))
    terms = [t.text for t in analysis.words(page.body)]
    for word in ("创先争优", "学习型党组织", "残疾人", "党员干部"):
        assert word in terms
    assert not any(t.isspace() or t in "，。、" for t in terms)


def test_a_query_is_segmented_once_and_each_caller_gets_its_own_list(analysis):
    """Short texts (queries, up to MEMO_QUERY_CHARS) are remembered: the same words every
    time, and a caller changing its list changes nobody else's. Longer ones are not kept."""
    q = "省委组织部召开乡村振兴专题会议" + "甲" * (MEMO_QUERY_CHARS - 15)
    assert len(q) == MEMO_QUERY_CHARS
    first = analysis.query_terms(q)
    hits = analysis._short_terms.cache_info().hits
    first.append("改动")
    again = analysis.query_terms(q)
    assert analysis._short_terms.cache_info().hits == hits + 1
    assert again == [t.text for t in analysis.query_words(q)] and "改动" not in again
    longer = q + "乙"
    size = analysis._short_terms.cache_info().currsize
    assert analysis.query_terms(longer) == [t.text for t in analysis.query_words(longer)]
    assert analysis._short_terms.cache_info().currsize == size


def test_a_word_has_a_character_for_which_isalnum_holds():
    """is_word's regex against str.isalnum, over every code point."""
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        assert is_word(ch) == ch.isalnum(), hex(cp)
    assert is_word("，中") and not is_word("，_ 。")


# The normaliser's tables, computed once per cache directory.
def _tables(normalizer):
    return normalizer.t2s, normalizer.table, normalizer._contextual.pattern.pattern, normalizer._expanding.pattern.pattern


def test_normal_forms_are_kept_in_the_cache_directory_and_read_back_the_same(tmp_path):
    """The first normaliser with a cache directory writes its tables there; the next reads
    them (the file is not written again), and both equal tables computed without a cache."""
    first = Normalizer(tmp_path)
    [path] = tmp_path.iterdir()
    assert path.name.startswith("normal-forms-") and path.suffix == ".json"
    inode = path.stat().st_ino
    second = Normalizer(tmp_path)
    assert path.stat().st_ino == inode
    assert _tables(first) == _tables(second) == _tables(Normalizer())
    assert second("體育 ＡＢＣ") == "体育 abc"


def test_a_damaged_or_unwritable_cache_is_computed_again(tmp_path):
    """A torn cache file is replaced by a whole one; a cache that cannot be written (a cache
    directory that is a file, a directory where the file goes) costs the computation, not
    an error, and leaves no temporary file."""
    fresh = _tables(Normalizer())
    Normalizer(tmp_path)
    [path] = tmp_path.iterdir()
    path.write_text('{"t2s": {"12', "utf-8")
    assert _tables(Normalizer(tmp_path)) == fresh
    assert json.loads(path.read_text("utf-8"))["t2s"]
    blocked = tmp_path / "a-file"
    blocked.write_text("", "utf-8")
    assert _tables(Normalizer(blocked)) == fresh
    path.unlink()
    path.mkdir()
    (path / "in-the-way").write_text("", "utf-8")
    assert _tables(Normalizer(tmp_path)) == fresh
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "a-file"])   # no temporary file left
