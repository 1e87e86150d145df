# Production image: slim, non-root; runs the migrations, then serves with uvicorn.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production
RUN groupadd --system butler && useradd --system --gid butler --home-dir /srv butler
COPY --from=build /opt/venv /opt/venv
# The wheel carries the migrations and the rule tables: the installed package is all it runs.
WORKDIR /srv
USER butler
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
# `serve` is uvicorn with its own log lines as JSON, no access log of its own (ours is in the
# app) and a 35 s graceful shutdown. X-Forwarded-For is taken only from FORWARDED_ALLOW_IPS.
CMD ["sh", "-c", "python -m app.cli migrate && python -m app.cli seal-secrets && exec python -m app.cli serve --host 0.0.0.0 --port 8000 --proxy-headers"]
