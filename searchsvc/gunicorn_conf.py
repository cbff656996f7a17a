"""gunicorn settings for ``searchsvc serve`` (also usable with ``gunicorn -c python:searchsvc.gunicorn_conf``).

The app is preloaded in the master so jieba's dictionary and the normalisation
table are loaded once and shared copy-on-write; each worker opens the index
itself after the fork (Whoosh file handles must not be shared between processes).
"""

import os

bind = os.environ.get("SEARCHSVC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SEARCHSVC_WORKERS", os.cpu_count() or 1))
worker_class = "gthread"          # keep-alive connections; searching releases little GIL, so few threads
threads = int(os.environ.get("SEARCHSVC_THREADS", 4))
preload_app = True
# A query stops itself at its budget (SEARCHSVC_SEARCH_BUDGET); the worker timeout, derived
# from it, only catches a worker that stopped responding altogether.
timeout = int(os.environ.get("SEARCHSVC_WORKER_TIMEOUT",
                             max(10, int(5 * float(os.environ.get("SEARCHSVC_SEARCH_BUDGET", 2.0))))))
graceful_timeout = 10
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = None                  # the app writes structured access lines itself
errorlog = "-"
loglevel = os.environ.get("SEARCHSVC_LOG_LEVEL", "info")
logconfig_dict = {
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


def post_fork(server, worker):
    """Open the index in the new worker before it takes requests."""
    engine = getattr(server.app.callable, "engine", None) if getattr(server.app, "callable", None) else None
    if engine is not None:
        try:
            engine.view()
            engine.lexicon(wait=False)   # suggestions' vocabulary, built in the background
        except Exception as e:  # /healthz reports it; the worker still serves
            server.log.warning("index not available yet: %s", e)


def worker_exit(server, worker):
    """Write this worker's pending query-log counts."""
    query_log = getattr(getattr(server.app, "callable", None), "query_log", None)
    if query_log is not None:
        query_log.flush()
