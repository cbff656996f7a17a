"""One configuration object for the CLI, the indexer and the web app.

Values come from keyword arguments, else environment variables (``SEARCHSVC_*``,
and three that other programs define: ``PROMETHEUS_MULTIPROC_DIR``,
``MALLOC_ARENA_MAX``, ``XDG_CACHE_HOME``), else the defaults below. This is the
only module that touches the process environment (``tests/test_config.py``
checks it); the helpers at the end set what dependencies read there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_USERDICT = PACKAGE_DIR / "data" / "userdict.txt"
DEFAULT_SYNONYMS = PACKAGE_DIR / "data" / "synonyms.txt"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"     # prometheus_client's multiprocess directory (server.py sets it)
XDG_CACHE_ENV = "XDG_CACHE_HOME"
DEFAULT_SITE_CRUMBS = ("每日甘肃政务云", "甘肃省直机关党建网")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# The least value of each count (0 is "off" where it is allowed); checked however a Config is made
_LEAST = {"max_result_window": 1, "max_per_page": 1, "cache_seconds": 0, "result_cache_size": 0,
          "postings_cache_mb": 0, "workers": 1, "threads": 1, "max_export_rows": 1, "max_body_bytes": 1,
          "segment_postings": 1}


def _check_least(name: str, value) -> None:
    lowest = _LEAST.get(name)
    if lowest is not None and value < lowest:
        raise ValueError(f"must be at least {lowest}, got {value}")


class ConfigError(ValueError):
    """A setting the service cannot use, named in the message."""


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, lowered by a cgroup CPU limit
    (a container's ``--cpus``: v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def _cgroup_quota(root: Path) -> float | None:
    """The CPU quota in CPUs (quota / period), or None when unlimited or unknown. In a
    container ``root`` is the container's own cgroup; on a host, this process's."""
    try:
        own = Path("/proc/self/cgroup").read_text().partition("0::")[2].split("\n")[0].strip("/")
    except OSError:
        own = ""
    for cpu_max in dict.fromkeys((root / own / "cpu.max", root / "cpu.max")):
        try:
            limit, period = cpu_max.read_text().split()[:2]                  # v2: "max 100000" = none
            return None if limit == "max" else int(limit) / int(period)
        except (OSError, ValueError):
            pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())          # v1: -1 = none
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Config:
    index_dir: Path = Path("index")
    userdict: Path | None = DEFAULT_USERDICT
    site_crumbs: tuple[str, ...] = DEFAULT_SITE_CRUMBS
    cors_origins: tuple[str, ...] = ()
    max_result_window: int = 10_000
    max_per_page: int = 100
    cache_seconds: int = 60
    result_cache_size: int = 512        # recent query matches kept per worker (0 = off)
    postings_cache_mb: int = 32         # decoded posting lists kept per worker, plus 5/8 of it for
                                        # block directories, the term dictionary's entries and gram
                                        # masks, 1/32 for snippets, 1/2 for long texts and 1x for
                                        # their pair tables (RSS budget)
    reload_interval: float = 1.0        # how often a worker checks for a new index version
    workers: int = field(default_factory=available_cpus)   # gunicorn worker processes
    threads: int = 4                    # threads per worker for writes and CSV exports; searches run on its event loop
    worker_timeout: int | None = None   # seconds without a sign of life before a worker is
                                        # restarted, and a body may pause; None = max(10, 5 × search_budget)
    bind: str = "127.0.0.1:8000"        # gunicorn's bind address (`searchsvc serve` sets it from --host/--port)
    log_level: str = "info"
    cache_dir: Path | None = None       # jieba's dictionary cache, the normaliser's tables; None = per-user default
    synonyms: Path | None = DEFAULT_SYNONYMS
    query_log: Path | None = None       # None = <index_dir>/querylog.jsonl
    query_log_enabled: bool = True
    max_export_rows: int = 10_000
    write_token: str | None = field(default=None, repr=False)   # write API bearer token; None = writes off (403)
    write_lock_wait: float = 5.0        # seconds a write waits for the index before 503 + Retry-After
    max_body_bytes: int = 10 << 20      # request bodies (bulk writes) above this: 413
    search_budget: float = 2.0          # seconds a query may run before it is stopped (503)
    metrics_dir: Path | None = None     # prometheus_client's multiprocess directory; None = one
                                        # process's counts (`serve` makes one for its workers)
    malloc_arena_max: int | None = None  # glibc's MALLOC_ARENA_MAX as the operator set it;
                                        # None = `serve` limits its workers to 2 arenas
    segment_postings: int = 90_000_000  # an indexing worker starts a new segment past this many
                                        # postings (its memory grows with them: 3.9 GB at ~79 million)

    def __post_init__(self):
        for name in _LEAST:
            try:
                _check_least(name, getattr(self, name))
            except ValueError as e:
                raise ConfigError(f"{name} {e}") from None
        # Paths given as strings (Config(index_dir="idx"), from_env's overrides) are kept as
        # Path: query_log_path and others join them. An empty one means none, as in _ENV.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and "Path" in f.type:    # (annotations are strings here)
                object.__setattr__(self, f.name, Path(value) if value or "None" not in f.type else None)

    _ENV = {
        "index_dir": ("SEARCHSVC_INDEX", Path),
        "userdict": ("SEARCHSVC_USERDICT", lambda v: Path(v) if v else None),
        "site_crumbs": ("SEARCHSVC_SITE_CRUMBS", _split),
        "cors_origins": ("SEARCHSVC_CORS_ORIGINS", _split),
        "max_result_window": ("SEARCHSVC_MAX_RESULT_WINDOW", int),
        "max_per_page": ("SEARCHSVC_MAX_PER_PAGE", int),
        "cache_seconds": ("SEARCHSVC_CACHE_SECONDS", int),
        "result_cache_size": ("SEARCHSVC_RESULT_CACHE", int),
        "postings_cache_mb": ("SEARCHSVC_POSTINGS_CACHE_MB", int),
        "reload_interval": ("SEARCHSVC_RELOAD_INTERVAL", float),
        "workers": ("SEARCHSVC_WORKERS", int),
        "threads": ("SEARCHSVC_THREADS", int),
        "worker_timeout": ("SEARCHSVC_WORKER_TIMEOUT", lambda v: int(v) if v else None),
        "bind": ("SEARCHSVC_BIND", str),
        "log_level": ("SEARCHSVC_LOG_LEVEL", str),
        "cache_dir": ("SEARCHSVC_CACHE_DIR", lambda v: Path(v) if v else None),
        "synonyms": ("SEARCHSVC_SYNONYMS", lambda v: Path(v) if v else None),
        "query_log": ("SEARCHSVC_QUERY_LOG", lambda v: Path(v) if v else None),
        "query_log_enabled": ("SEARCHSVC_QUERY_LOG_ENABLED", lambda v: v.lower() not in ("0", "false", "no")),
        "max_export_rows": ("SEARCHSVC_MAX_EXPORT_ROWS", int),
        "write_token": ("SEARCHSVC_WRITE_TOKEN", lambda v: v or None),
        "write_lock_wait": ("SEARCHSVC_WRITE_LOCK_WAIT", float),
        "max_body_bytes": ("SEARCHSVC_MAX_BODY_BYTES", int),
        "search_budget": ("SEARCHSVC_SEARCH_BUDGET", float),
        "metrics_dir": (MULTIPROC_ENV, lambda v: Path(v) if v else None),
        "malloc_arena_max": ("MALLOC_ARENA_MAX", lambda v: int(v) if v else None),
        "segment_postings": ("SEARCHSVC_SEGMENT_POSTINGS", int),
    }

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Config":
        """Defaults, then ``SEARCHSVC_*`` variables, then non-None ``overrides``."""
        environ = os.environ if environ is None else environ
        values = {}
        if environ.get(XDG_CACHE_ENV):          # the XDG base directory spec's cache home
            values["cache_dir"] = Path(environ[XDG_CACHE_ENV]) / "searchsvc"
        for name, (var, parse) in cls._ENV.items():
            if var in environ:
                try:
                    values[name] = parse(environ[var])
                    _check_least(name, values[name])
                except ValueError as e:
                    raise ConfigError(f"{var}={environ[var]!r}: {e}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"unknown config options: {sorted(unknown)}")
        return cls(**values)

    @property
    def query_log_path(self) -> Path | None:
        if not self.query_log_enabled:
            return None
        return self.query_log or self.index_dir / "querylog.jsonl"

    @property
    def worker_timeout_seconds(self) -> int:
        # A query stops itself at its budget; the worker timeout only catches a worker
        # that stopped responding altogether.
        return self.worker_timeout or max(10, int(5 * self.search_budget))

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)


def environment() -> dict[str, str]:
    """A copy of this process's environment: the one ``serve`` was started in, for the new
    master of a USR2 upgrade (taken before serve exports its own variables)."""
    return dict(os.environ)


def export_environ(name: str, value: str) -> None:
    """Set ``name`` for this process and those it starts: for a dependency that reads
    its setting from the environment (prometheus_client's multiprocess directory)."""
    os.environ[name] = value


@contextmanager
def environ_defaults(values: dict[str, str]) -> Iterator[None]:
    """``values`` in the environment where it does not set them, only for the duration:
    a dependency's switches read at its import (pypinyin's); nothing else sees them."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            del os.environ[k]
