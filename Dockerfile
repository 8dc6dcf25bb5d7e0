# puzzel-monitor: one image for `puzzel-monitor run` (the service) and `puzzel-monitor simulate`.
FROM python:3.11.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# the shipped operator rules: `rules_path: rules` (the default) resolves to /app/rules; compose
# mounts the project's rules/ over it so operators edit them without rebuilding
COPY rules ./rules
RUN pip install . \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent puzzel

USER 10001:10001
EXPOSE 8912

# the slim image has no curl; Python's urllib is enough (the simulator overrides this in compose)
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8912/healthz', timeout=4)"]

CMD ["puzzel-monitor", "run", "-c", "/etc/puzzel-monitor/config.yaml"]
