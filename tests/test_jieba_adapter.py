"""jieba's dictionary kept compact for serving (``searchsvc.jieba_adapter``): the same
mapping and the same tokens as jieba's own dict, read-only, cached safely on disk."""

import json
import logging

import jieba
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from searchsvc.analysis import Analysis
from searchsvc.cli import EXAMPLE_CORPUS
from searchsvc.jieba_adapter import CompactTokenizer, FrozenFreq, decode, encode, load_or_build

# Characters a dictionary and a text are drawn from: CJK, Latin, digits, the characters
# jieba's cut hands to its DAG (+#&._%-), and ones marisa cannot store (NUL, surrogates).
ALPHABET = "中华人民共和国家安全abAB19+#&._%- \x00\ud800\U0001F600"


@pytest.fixture(scope="module")
def plain(analysis):
    """jieba's own tokenizer with the package's user dictionary (the index's analysis)."""
    tok = analysis.segmenter._jieba
    assert type(tok) is jieba.Tokenizer and tok.initialized
    return tok


@pytest.fixture(scope="module")
def compact(plain, tmp_path_factory):
    return load_or_build(tmp_path_factory.mktemp("cache"), None, lambda: plain)


def test_the_compact_mapping_holds_every_word_and_prefix_with_its_frequency(plain, compact):
    freq = compact.FREQ
    assert len(freq) == len(plain.FREQ) and compact.total == plain.total
    assert all(freq.get(k) == v for k, v in plain.FREQ.items())
    assert freq["中华人民共和国"] == plain.FREQ["中华人民共和国"] and freq["中华人民共和"] == 0
    for absent in ("不存在的词语", "", "中\x00", "\x00", "中\ud800", "\ud800", 7):
        assert absent not in freq and freq.get(absent, -1) == -1
    with pytest.raises(KeyError):
        freq["不存在的词语"]


def test_it_takes_a_tenth_of_the_memory(plain, compact):
    import sys
    plain_bytes = sys.getsizeof(plain.FREQ) + sum(sys.getsizeof(k) for k in plain.FREQ)
    compact_bytes = len(encode(compact.FREQ, compact.total, ()))
    assert compact_bytes * 10 < plain_bytes, (compact_bytes, plain_bytes)


words = st.lists(st.tuples(st.text(ALPHABET, min_size=1, max_size=6), st.integers(0, 50)), max_size=30)


@pytest.fixture()
def force_split_kept():
    """jieba keeps the words of frequency 0 in a process-wide set: restore it after a test."""
    from jieba import finalseg
    kept = set(finalseg.Force_Split_Words)
    yield
    finalseg.Force_Split_Words.clear()
    finalseg.Force_Split_Words.update(kept)


@given(words, st.text(ALPHABET, max_size=40))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example([("中华", 1), ("中华人民", 2)], "中华人民共和国")
@example([("a\x00b", 1), ("ab", 2)], "a\x00bab")
@example([("国家", 0), ("安全", 3)], "国家安全")
def test_any_dictionary_and_text_get_jiebas_dag_and_tokens(force_split_kept, words, text):
    own = jieba.Tokenizer()
    own.initialized = True              # an empty dictionary, filled by jieba's own add_word
    for w, freq in words:
        own.add_word(w, freq)
    own.total = max(own.total, 1)       # (jieba's calc takes log(total))
    ours = CompactTokenizer(FrozenFreq.from_dict(own.FREQ), own.total)
    # What marisa can hold; words with NUL or a lone surrogate never reach jieba's DAG
    # anyway (its cut hands it only runs of CJK, Latin, digits and +#&._%-).
    own.FREQ = {k: v for k, v in own.FREQ.items() if "\x00" not in k and not any(0xD800 <= ord(c) < 0xE000 for c in k)}
    assert ours.get_DAG(text) == own.get_DAG(text)
    route, own_route = {}, {}
    ours.calc(text, ours.get_DAG(text), route)
    own.calc(text, own.get_DAG(text), own_route)
    assert route == own_route
    assert list(ours.tokenize(text)) == list(own.tokenize(text))
    assert list(ours.cut(text, HMM=False)) == list(own.cut(text, HMM=False))


sample = st.lists(st.sampled_from(["中华人民共和国", "国家安全", "思政工作", "创先争优", "党建",
                                   "责任编辑", "签发时间", "研究", "生命", "起源", "iPhone", "15",
                                   "，", "。", " ", "\n", "「", "長", "發", "😀", "x", "的"]),
                  max_size=40).map("".join)


@given(st.one_of(sample, st.text(max_size=60)))
@settings(max_examples=400, deadline=None)
@example("研究生命起源")
@example("结婚的和尚未结婚的")
def test_any_text_gets_jiebas_tokens(plain, compact, text):
    assert list(compact.tokenize(text)) == list(plain.tokenize(text))
    assert list(compact.tokenize(text, mode="search")) == list(plain.tokenize(text, mode="search"))
    assert list(compact.cut(text, HMM=False)) == list(plain.cut(text, HMM=False))


def test_articles_get_the_same_words_as_the_index(analysis, config, corpus):
    """The serving analysis against the indexing one, whole chains (sub-words too), over
    the bundled examples and the generated test corpus."""
    served = Analysis.shared(config.userdict, config.cache_dir, compact=True)
    assert served.segmenter.compact and not analysis.segmenter.compact
    examples = (EXAMPLE_CORPUS / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    for article in [json.loads(line) for line in examples] + corpus[1]:
        for text in (article["title"], article["body"]):
            assert [t.text for t in served.words(text)] == [t.text for t in analysis.words(text)]
            assert served.query_terms(text[:60]) == analysis.query_terms(text[:60])


def test_the_dictionary_is_read_only(compact):
    for change in (lambda: compact.add_word("新词语", 5), lambda: compact.del_word("中华"),
                   lambda: compact.suggest_freq("中华", tune=True), lambda: compact.initialize("other.txt")):
        with pytest.raises(TypeError, match="read-only|cannot be swapped"):
            change()


def test_the_cache_file_is_written_once_and_read_back(plain, tmp_path):
    calls = []

    def load():
        calls.append(1)
        return plain

    first = load_or_build(tmp_path, None, load)
    files = list(tmp_path.glob("jieba-*.freq"))
    second = load_or_build(tmp_path, None, load)
    assert len(calls) == 1 and len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    assert len(second.FREQ) == len(first.FREQ) and second.total == first.total
    assert list(second.tokenize("中华人民共和国成立了")) == list(plain.tokenize("中华人民共和国成立了"))


def _forged(data: bytes, head: bytes) -> bytes:
    """The file with another header and a checksum that fits it (damage no hash catches)."""
    import hashlib
    magic, _digest, rest = data.split(b"\n", 2)
    body = rest.split(b"\n", 1)[1]
    rest = head + b"\n" + body
    return magic + b"\n" + hashlib.sha256(rest).hexdigest().encode() + b"\n" + rest


DAMAGE = {
    "body": lambda d: d[:-100] + bytes([d[-100] ^ 1]) + d[-99:],
    "header": lambda d: d.replace(b'"longest": ', b'"longest": 1', 1),
    "truncated": lambda d: d[:len(d) // 2],
    "empty": lambda d: b"",
    "garbage": lambda d: b"\x00" * 1000,
    "header not an object": lambda d: _forged(d, b"[]"),
    "header of the wrong types": lambda d: _forged(d, b'{"total": 1, "keys": "9", "longest": 2, "typecode": "I", '
                                                     b'"byteorder": "little", "trie_bytes": "0", "force_split": []}'),
    "another byte order": lambda d: _forged(d, d.split(b"\n")[2].replace(b'"little"', b'"big"')),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_file_is_rebuilt_never_used(plain, tmp_path, caplog, damage):
    load_or_build(tmp_path, None, lambda: plain)
    path, = tmp_path.glob("jieba-*.freq")
    data = path.read_bytes()
    path.write_bytes(DAMAGE[damage](data))
    with caplog.at_level(logging.WARNING):
        again = load_or_build(tmp_path, None, lambda: plain)
    assert "rebuilding the compact jieba dictionary" in caplog.text
    assert path.read_bytes() == data
    assert list(again.tokenize("中华人民共和国成立了")) == list(plain.tokenize("中华人民共和国成立了"))


def test_the_file_round_trips_and_other_users_may_read_it(plain, compact, tmp_path):
    freq, total, force_split = decode(encode(compact.FREQ, compact.total, ("杭研",)))
    assert (len(freq), total, force_split) == (len(compact.FREQ), compact.total, ("杭研",))
    load_or_build(tmp_path, None, lambda: plain)
    path, = tmp_path.glob("jieba-*.freq")
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_user_dictionary_gets_its_own_file_and_its_words(tmp_path):
    from searchsvc.analysis import Segmenter
    userdict = tmp_path / "user.txt"
    userdict.write_text("思政工作 100000\n", encoding="utf-8")
    plain = Segmenter(userdict, tmp_path / "plain").initialize()
    served = Segmenter(userdict, tmp_path / "cache", compact=True).initialize()
    other = Segmenter(None, tmp_path / "cache", compact=True).initialize()
    text = "加强高校思政工作"
    assert "思政工作" in served.cut(text) and list(served.tokenize(text)) == list(plain.tokenize(text))
    assert "思政工作" not in other.cut(text)
    assert len(list((tmp_path / "cache").glob("jieba-*.freq"))) == 2


FORCE_SPLIT = """
import json, sys
from searchsvc.analysis import Segmenter
print(json.dumps(list(Segmenter(sys.argv[1], sys.argv[2], compact=sys.argv[3] == "compact")
                      .tokenize("他来到了网易杭研大厦"))))
"""


def test_a_word_the_user_dictionary_gives_frequency_0_is_split_in_every_process(tmp_path):
    """jieba's documented way to force a split (``杭研 0``) lives in a process-wide set,
    not in the dictionary: a process that reads the compact file built by another splits too."""
    import subprocess
    import sys
    userdict = tmp_path / "user.txt"
    userdict.write_text("杭研 0\n", encoding="utf-8")

    def tokens(cache, mode):
        out = subprocess.run([sys.executable, "-c", FORCE_SPLIT, str(userdict), str(tmp_path / cache), mode],
                             capture_output=True, text=True, check=True).stdout
        return [tuple(t) for t in json.loads(out)]

    plain = tokens("plain", "plain")
    assert ("杭", 6, 7) in plain and ("研", 7, 8) in plain
    assert tokens("cache", "compact") == plain      # built here
    assert tokens("cache", "compact") == plain      # read back by a fresh process


def test_a_dictionary_that_cannot_be_compacted_is_served_plain(tmp_path, caplog):
    tok = jieba.Tokenizer()
    tok.initialized = True
    tok.add_word("天文数字", 1 << 64)
    with caplog.at_level(logging.WARNING):
        assert load_or_build(tmp_path, None, lambda: tok) is tok
    assert "stays uncompacted" in caplog.text


def test_a_read_only_cache_directory_still_serves(plain, tmp_path, caplog):
    missing = tmp_path / "gone"         # (root may write anywhere: a directory that is not there)
    with caplog.at_level(logging.WARNING):
        tok = load_or_build(missing, None, lambda: plain)
    assert "cannot keep the compact jieba dictionary" in caplog.text
    assert list(tok.tokenize("国家安全")) == list(plain.tokenize("国家安全"))
