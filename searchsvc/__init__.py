"""searchsvc: full-text search for a Chinese news archive (jieba + Whoosh, Falcon + gunicorn)."""

__version__ = "0.1.0"
