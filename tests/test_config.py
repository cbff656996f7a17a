"""Configuration in one place: every setting a ``Config`` field, read from the
environment by ``config.py`` alone, each one documented in the README (as Datasette
checks its settings against its documentation)."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

from searchsvc.cli import main
from searchsvc.config import Config, ConfigError, environ_defaults

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "searchsvc"
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _readme_settings() -> dict[str, str]:
    """{Config field: variable} from the README's configuration table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([a-z_]+)` \|", (REPO / "README.md").read_text("utf-8"), re.M)
    return {name: var for var, name in rows}


def test_every_setting_is_documented_in_the_readme_with_its_variable():
    documented = _readme_settings()
    names = {f.name for f in fields(Config)}
    assert set(documented) == names, f"undocumented: {names - set(documented)}, unknown: {set(documented) - names}"
    for name, var in documented.items():
        assert Config._ENV[name][0] == var, name


def test_every_setting_has_a_variable():
    assert set(Config._ENV) == {f.name for f in fields(Config)}


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_but_config_touches_the_environment(module):
    """``os.environ``, ``os.getenv`` and friends appear in config.py only."""
    if module == PACKAGE / "config.py":    # (the tree's: CI installs a copy into site-packages)
        return
    tree = ast.parse(module.read_text("utf-8"))
    uses = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES
            or isinstance(node, ast.ImportFrom) and node.module == "os"
            and any(a.name in ENV_NAMES for a in node.names)]
    assert not uses, f"{module.name} reads or sets the environment at lines {uses}"


def test_variables_from_the_environment():
    env = {"SEARCHSVC_MAX_PER_PAGE": "50", "SEARCHSVC_CORS_ORIGINS": "https://a.cn, https://b.cn",
           "PROMETHEUS_MULTIPROC_DIR": "/run/m", "MALLOC_ARENA_MAX": "3", "XDG_CACHE_HOME": "/xdg",
           "SEARCHSVC_QUERY_LOG_ENABLED": "no", "SEARCHSVC_SYNONYMS": "", "SEARCHSVC_WORKER_TIMEOUT": "12",
           "SEARCHSVC_SEGMENT_POSTINGS": "1000000"}
    c = Config.from_env(environ=env)
    assert c.segment_postings == 1_000_000
    off = Config.from_env(environ={"SEARCHSVC_RESULT_CACHE": "0", "SEARCHSVC_POSTINGS_CACHE_MB": "0",
                                   "SEARCHSVC_CACHE_SECONDS": "0"})           # 0: off, where it means that
    assert (off.result_cache_size, off.postings_cache_mb, off.cache_seconds) == (0, 0, 0)
    assert c.max_per_page == 50 and c.cors_origins == ("https://a.cn", "https://b.cn")
    assert c.metrics_dir == Path("/run/m") and c.malloc_arena_max == 3
    assert c.cache_dir == Path("/xdg/searchsvc")
    assert c.query_log_path is None and c.synonyms is None and c.worker_timeout_seconds == 12
    assert Config.from_env(environ={**env, "SEARCHSVC_CACHE_DIR": "/mine"}).cache_dir == Path("/mine")
    assert Config.from_env(environ=env, max_per_page=20).max_per_page == 20       # options win
    plain = Config.from_env(environ={})
    assert (plain.metrics_dir, plain.malloc_arena_max, plain.cache_dir) == (None, None, None)


def test_environ_defaults_set_only_what_is_unset_and_only_for_the_duration(monkeypatch):
    monkeypatch.setenv("SEARCHSVC_TEST_SET", "mine")
    monkeypatch.delenv("SEARCHSVC_TEST_UNSET", raising=False)
    with environ_defaults({"SEARCHSVC_TEST_SET": "theirs", "SEARCHSVC_TEST_UNSET": "1"}):
        assert os.environ["SEARCHSVC_TEST_SET"] == "mine" and os.environ["SEARCHSVC_TEST_UNSET"] == "1"
    assert os.environ["SEARCHSVC_TEST_SET"] == "mine" and "SEARCHSVC_TEST_UNSET" not in os.environ


def test_pypinyin_imported_without_its_phrase_table():
    """pinyin.py's switches reached pypinyin, and the environment no longer holds them."""
    import pypinyin.constants

    from searchsvc import pinyin
    assert pypinyin.constants.PHRASES_DICT == {}
    assert pinyin.keys("银行") and "yinhang" in pinyin.keys("银行")
    assert not any(k in os.environ for k in pinyin.PYPINYIN_SWITCHES)


def test_paths_given_as_strings_are_paths():
    """``Config(index_dir="idx")`` and ``from_env(index_dir="idx")`` (what scripts pass)
    behave like ``Path("idx")``: the query log lies inside the index directory."""
    for config in (Config(index_dir="idx", query_log=None), Config.from_env(environ={}, index_dir="idx")):
        assert config.index_dir == Path("idx")
        assert config.query_log_path == Path("idx") / "querylog.jsonl"
    assert Config.from_env(environ={}, query_log="q.jsonl").query_log_path == Path("q.jsonl")
    empty = Config(userdict="", query_log="")          # none, as SEARCHSVC_USERDICT= says
    assert empty.userdict is None and empty.query_log_path == Path("index") / "querylog.jsonl"


def test_a_segment_bound_below_one_is_refused_however_it_is_given():
    with pytest.raises(ConfigError, match="segment_postings must be at least 1"):
        Config(segment_postings=0)
    with pytest.raises(ConfigError, match="segment_postings must be at least 1"):
        Config().with_(segment_postings=-1)


@pytest.mark.parametrize("var,value", [("SEARCHSVC_SEGMENT_POSTINGS", "0"), ("SEARCHSVC_SEGMENT_POSTINGS", "-5"),
                                       ("SEARCHSVC_WORKERS", "two"), ("SEARCHSVC_WORKERS", "0"),
                                       ("SEARCHSVC_THREADS", "0"), ("SEARCHSVC_POSTINGS_CACHE_MB", "-1"),
                                       ("SEARCHSVC_MAX_PER_PAGE", "0"), ("SEARCHSVC_SEARCH_BUDGET", "1s")])
def test_a_variable_the_service_cannot_use_is_named_and_the_cli_exits_2(monkeypatch, capsys, tmp_path, var, value):
    with pytest.raises(ConfigError, match=f"^{var}='{value}': "):
        Config.from_env(environ={var: value})
    monkeypatch.setenv(var, value)
    assert main(["stats", "--index", str(tmp_path / "ix")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"searchsvc: {var}='{value}': ") and "Traceback" not in err
