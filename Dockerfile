# One image for every Python service of traffic-stream (producer, consumer, trainer,
# provisioning, and the MLflow tracking server), installed from Pipfile.lock.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    TRAFFIC_HOME=/var/lib/traffic-stream \
    TRAFFIC_CACHE_DIR=/cache

WORKDIR /app
RUN pip install pipenv==2026.10.3
COPY Pipfile Pipfile.lock ./
RUN pipenv install --system --deploy && pip uninstall -y pipenv

COPY core ./core
COPY adapters ./adapters
COPY producer ./producer
COPY consumer ./consumer
COPY training ./training
COPY infra ./infra
COPY monitor ./monitor
COPY serve ./serve
COPY demo ./demo

RUN useradd --create-home --uid 10001 traffic && mkdir -p /var/lib/traffic-stream /cache \
    && chown traffic /var/lib/traffic-stream /cache
USER traffic
