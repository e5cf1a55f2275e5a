# Two images of traffic-stream, one stage each:
#   app     every Python service (producer, consumer, trainer, provisioning, API and the
#           MLflow tracking server), from Pipfile.lock: what docker-compose builds;
#   lambda  the consumer as an AWS Lambda function (consumer/lambda_handler.py), from
#           lambda/Pipfile.lock alone, with the Lambda runtime interface client as entry point:
#           docker build --target lambda -t traffic-stream:lambda .
FROM python:3.11-slim AS app

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

FROM python:3.11-slim AS lambda

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/var/task \
    PIP_NO_CACHE_DIR=1 \
    TRAFFIC_HOME=/tmp/traffic-stream

WORKDIR /var/task
RUN pip install pipenv==2026.10.3
COPY lambda/Pipfile lambda/Pipfile.lock ./
RUN pipenv install --system --deploy && pip uninstall -y pipenv && rm Pipfile Pipfile.lock

COPY core ./core
COPY adapters ./adapters
COPY consumer ./consumer

ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["consumer.lambda_handler.handler"]
