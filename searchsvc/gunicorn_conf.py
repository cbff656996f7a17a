"""gunicorn settings for ``searchsvc serve`` (also usable with ``gunicorn -c python:searchsvc.gunicorn_conf``).

Every value comes from :class:`Config` (``SEARCHSVC_*`` variables); this module reads
no environment itself. The app is preloaded in the master, which also opens the index
and builds the suggestion vocabulary (``server.SearchServer.load``): workers share
jieba's dictionary, the normalisation table and the index view copy-on-write. Index
reads use ``pread``, so the inherited descriptors are safe to share after the fork.
"""

from searchsvc.config import Config
from searchsvc.contract import MAX_QUERY_CHARS
from searchsvc.gunicorn_worker import worker_app


def settings(config: Config) -> dict:
    """gunicorn's settings for ``config``."""
    return {
        "bind": config.bind,
        "workers": config.workers,
        # gunicorn's asyncio worker, searches inline on its loop (searchsvc.asgi_bridge); our
        # subclass also serves raw UTF-8 URLs and answers gunicorn's refusals in JSON.
        "worker_class": "searchsvc.gunicorn_worker.JsonEdgeWorker",
        "http_parser": "fast",          # gunicorn_h1c: the worker reads its targets (see there)
        "preload_app": True,
        "timeout": config.worker_timeout_seconds,
        "graceful_timeout": 10,
        "keepalive": 5,
        # The longest q (1,000 Chinese characters, 9 bytes each percent-encoded) plus the other
        # parameters; gunicorn_h1c honours it (gunicorn's WSGI parser stops at 8,190).
        "limit_request_line": MAX_QUERY_CHARS * 9 + 4096,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "accesslog": None,              # the app writes structured (JSON) access lines itself
        "logger_class": "searchsvc.gunicorn_worker.AppLogger",     # ...and gunicorn builds none
        "errorlog": "-",
        "loglevel": config.log_level,
        "logconfig_dict": LOGCONFIG,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": _child_exit(config.metrics_dir),
        # gunicornc's control socket: by default one path for every gunicorn of the user, which
        # each master takes over and removes when it stops (a USR2 upgrade's old master too).
        "control_socket_disable": True,
    }


LOGCONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(message)s"}},
    # gunicorn merges this with its defaults, whose loggers use these two handler names.
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    },
    "loggers": {"searchsvc": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def post_worker_init(worker):
    """Before the new worker takes requests: the inherited index view, reopened if a newer
    version was committed since the master opened it (opened, if the master let it go), and
    a fresh vocabulary (background). Here rather than in ``post_fork``: the worker has its
    own signal handlers by now, so a stop asked for while a large index opens is not lost."""
    engine = getattr(worker_app(worker), "engine", None)
    if engine is not None:
        try:
            engine.view()
            engine.lexicon(wait=False)   # suggestions' vocabulary, built in the background
        except Exception as e:  # /healthz reports it; the worker still serves
            worker.log.warning("index not available yet: %s", e)


def worker_exit(server, worker):
    """Write this worker's pending query-log counts and cache lookups."""
    query_log = getattr(worker_app(worker), "query_log", None)
    if query_log is not None:
        query_log.flush()
    from searchsvc.cache import flush_lookups    # (prometheus_client: imported after its directory is set)
    flush_lookups()


def _child_exit(metrics_dir):
    def child_exit(server, worker):
        """In the master: the worker's metric files are no longer live (prometheus multiprocess)."""
        from searchsvc import metrics   # imported late: prometheus_client must see PROMETHEUS_MULTIPROC_DIR
        metrics.worker_gone(worker.pid, metrics_dir)
    return child_exit


# `gunicorn -c python:searchsvc.gunicorn_conf`: the same settings as module variables.
globals().update(settings(Config.from_env()))
