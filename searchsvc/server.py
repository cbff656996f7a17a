"""Running the app under gunicorn from ``searchsvc serve``."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gunicorn.app.base import BaseApplication

from . import gunicorn_conf
from .asgi_bridge import InlineWSGI
from .gunicorn_worker import ReleasingArbiter, pre_exec_in
from .config import MULTIPROC_ENV, Config, export_environ


class SearchServer(BaseApplication):
    """gunicorn with ``searchsvc.gunicorn_conf``'s settings for this Config, plus overrides."""

    def __init__(self, config: Config, options: dict, started_in: dict[str, str] | None = None):
        self.config_obj = config
        self.options = options
        self.started_in = started_in    # the operator's environment, for a USR2 upgrade (None: as is)
        super().__init__()

    def load_config(self):
        for key, value in gunicorn_conf.settings(self.config_obj).items():
            if value is not None:
                self.cfg.set(key, value)
        if self.started_in is not None:
            self.cfg.set("pre_exec", pre_exec_in(self.started_in))
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def run(self):
        """gunicorn's master loop (``BaseApplication.run``), which also lets the preloaded
        engine's view go once the index changed (:class:`ReleasingArbiter`)."""
        try:
            ReleasingArbiter(self, self.config_obj.reload_interval).run()
        except RuntimeError as e:
            print(f"\nError: {e}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)

    def load(self):
        """The app, with the index open, the suggestion vocabulary and the OpenAPI document's
        id pattern built in the master: workers inherit them copy-on-write instead of each
        building its own (memory, start time; a worker's first /openapi.json would stall its
        other requests); ``gc.freeze`` keeps the collector from touching, and so copying, those pages.
        Reads use pread, so the inherited descriptors are safe to share. Once a newer index
        version is committed the master lets its view go (:class:`ReleasingArbiter`), and a
        worker forked after that opens the current one (``gunicorn_conf.post_worker_init``)."""
        from .app import create_app
        from .contract import id_pattern
        from .store import IndexMissing
        app = create_app(self.config_obj)
        try:
            app.engine.lexicon()
        except IndexMissing:
            pass                    # /healthz says why; workers retry
        id_pattern()
        gc.freeze()
        _limit_malloc_arenas(self.config_obj.malloc_arena_max)
        _release_free_memory()
        return InlineWSGI.for_config(app, self.config_obj)


M_ARENA_MAX = -8     # glibc's mallopt parameter (malloc.h)


def _limit_malloc_arenas(chosen: int | None, arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas, each keeping memory freed by the
    requests it served (one A/B load test: 255/263 MB per worker with two arenas,
    270/285 MB without the limit; about the size of run-to-run noise).
    The documented remedy is MALLOC_ARENA_MAX; mallopt sets it for the workers forked
    from here. Not glibc (musl, macOS): nothing to do."""
    if chosen:
        return                      # the operator chose (glibc read MALLOC_ARENA_MAX at start)
    libc = _glibc("mallopt")
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)


def _release_free_memory() -> bool:
    """Give the heap pages glibc keeps free back to the system (``malloc_trim``, glibc's
    documented call): loading leaves some (~13 MB on the shared corpus, 10 of them from
    building the vocabulary), and every worker forked after would count them in its RSS.
    Whether any were released; not glibc: nothing to do."""
    libc = _glibc("malloc_trim")
    return bool(libc.malloc_trim(0)) if libc is not None else False


def _glibc(function: str):
    """The C library when it is glibc and has ``function``, else None (musl, macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        getattr(libc, function)
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def metrics_directory(config: Config):
    """The directory every worker counts its metrics into, for the whole ``serve``
    (``config.metrics_dir``, else a fresh one): yields ``config`` naming it.
    prometheus_client picks its multiprocess mode when first imported, from the
    environment, so this is entered before anything that imports it (the index build
    on a first start included)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    own = config.metrics_dir is None
    path = Path(tempfile.mkdtemp(prefix="searchsvc-metrics-")) if own else config.metrics_dir
    for stale in path.glob("*.db"):     # a previous run's counts would be summed in
        stale.unlink()
    export_environ(MULTIPROC_ENV, str(path))
    # gunicorn forks its workers inside this block, and a worker leaves by sys.exit, through
    # this finally too: only the process that made the directory removes it (a worker exiting
    # on a timeout, max_requests or a reload removed it under the others: /metrics and every
    # request then failed on the missing counter files).
    owner = os.getpid()
    try:
        yield config.with_(metrics_dir=path)
    finally:
        if own and os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)


def run(config: Config, host: str, port: int, workers: int, started_in: dict[str, str] | None = None) -> None:
    """gunicorn in the foreground (inside :func:`metrics_directory`); ``started_in``: the
    environment serve started in, before it set its own variables (a USR2 upgrade's)."""
    # Config is read once, in the master (the app is preloaded); the resolved index path
    # is also left in the environment for any process spawned from here that reads it again.
    export_environ("SEARCHSVC_INDEX", str(config.index_dir))
    SearchServer(config, {"bind": f"{host}:{port}", "workers": workers}, started_in).run()
