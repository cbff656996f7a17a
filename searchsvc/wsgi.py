"""WSGI entry point: ``gunicorn searchsvc.wsgi:app`` (configuration from SEARCHSVC_* variables).
Like ``searchsvc serve``, it says when the index needs a rebuild (and serves it anyway), in
gunicorn's error log, once per process that loads the app (the master with ``--preload``)."""

import logging

from .app import create_app
from .config import Config

app = create_app(Config.from_env())
for _warning in app.engine.store.serving_warnings(app.engine.analysis.index_meta()):
    logging.getLogger("gunicorn.error").warning(_warning)
