# One image for every process of the back office (docs/deploy.md): release, web and worker.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ied ./ied
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
# Editable, so the migrations next to the package are found (ied/__init__.py MIGRATIONS_DIR).
# The process runs as ied and owns nothing here: on its own services the app writes no file.
RUN pip install -e . && useradd --system --home /app ied
USER ied
EXPOSE 8000
CMD ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:8000", "wsgi:app"]
