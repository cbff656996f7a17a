# searchsvc: the API under gunicorn. The index lives on a volume at /data/index;
# when it is missing at start it is built from $SEARCHSVC_CORPUS (default: the bundled examples).
# Workers follow the CPUs the container may use (--cpus / --cpuset-cpus); every setting is a
# SEARCHSVC_* variable (README: "Container" and "Command line").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SEARCHSVC_INDEX=/data/index XDG_CACHE_HOME=/home/search/.cache
RUN useradd --create-home --uid 10001 search && mkdir -p /data && chown search /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY searchsvc ./searchsvc
RUN pip install --no-cache-dir . && rm -rf /app/build

USER search
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["sh", "-c", "exec searchsvc serve --host 0.0.0.0 --port 8000 ${SEARCHSVC_CORPUS:+--corpus \"$SEARCHSVC_CORPUS\"}"]
