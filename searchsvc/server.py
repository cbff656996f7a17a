"""Running the app under gunicorn from ``searchsvc serve``."""

from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication

from . import gunicorn_conf
from .config import Config


class SearchServer(BaseApplication):
    """gunicorn with ``searchsvc.gunicorn_conf`` plus command-line overrides."""

    def __init__(self, config: Config, options: dict):
        self.config_obj = config
        self.options = options
        super().__init__()

    def load_config(self):
        for key in dir(gunicorn_conf):
            value = getattr(gunicorn_conf, key)
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app
        return create_app(self.config_obj)


def run(config: Config, host: str, port: int, workers: int) -> None:
    # Workers re-read SEARCHSVC_* through Config only in the master (preload); keep the
    # resolved index path in the environment for anything they spawn.
    os.environ["SEARCHSVC_INDEX"] = str(config.index_dir)
    SearchServer(config, {"bind": f"{host}:{port}", "workers": workers}).run()
