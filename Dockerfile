# One image for every process of the back office (docs/deploy.md): release, web and worker.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ied ./ied
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
# Editable, so the migrations next to the package are found (ied/__init__.py MIGRATIONS_DIR).
# The app makes its instance folder at start (create_app); the process runs as ied, so that
# folder is ied's (found by the first `docker compose up`: release stopped on it).
RUN pip install -e . && useradd --system --home /app ied \
 && mkdir -p /app/instance && chown ied /app/instance
USER ied
EXPOSE 8000
CMD ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:8000", "wsgi:app"]
