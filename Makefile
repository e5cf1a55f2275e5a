# traffic-stream: the commands a user types. `make demo` and `make test` are the quick start.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR_PORT ?= 5050
MLFLOW_PORT ?= 5001
PROMETHEUS_PORT ?= 9090
API_PORT ?= 8000
TRAFFIC_HOME ?= $(CURDIR)/.traffic-stream
export TRAFFIC_HOME
export PYTHONPATH := $(CURDIR)

# The embedded stack: a moto server on 127.0.0.1 stands in for AWS (any key works there;
# these placeholders keep real credentials from ever being sent to it), and an MLflow
# server on SQLite that every component reaches over HTTP, as in docker-compose.
EMBEDDED := AWS_ENDPOINT_URL=http://127.0.0.1:$(EMULATOR_PORT) AWS_ACCESS_KEY_ID=embedded \
	AWS_SECRET_ACCESS_KEY=embedded AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
	MLFLOW_TRACKING_URI=http://127.0.0.1:$(MLFLOW_PORT)

.PHONY: env demo up down replay prometheus test test-fast watch api compare bench-accuracy bench-throughput bench-selection bench-drift bench-api lock lambda-env

env: $(VENV)/.synced
$(VENV)/.synced: Pipfile.lock
	$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv
	PIPENV_VENV_IN_PROJECT=1 PIPENV_YES=1 $(PYTHON) -m pipenv sync --dev
	touch $@

lock:
	$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv
	PIPENV_VENV_IN_PROJECT=1 $(PYTHON) -m pipenv lock
	PIPENV_PIPFILE=lambda/Pipfile $(PYTHON) -m pipenv lock

# The Lambda image's dependencies alone (the Dockerfile's lambda target) in lambda/.venv: the
# tests run the handler there, with nothing else installed.
lambda-env: lambda/.venv/.synced
lambda/.venv/.synced: lambda/Pipfile.lock
	$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv
	PIPENV_PIPFILE=lambda/Pipfile PIPENV_VENV_IN_PROJECT=1 PIPENV_YES=1 $(PYTHON) -m pipenv sync
	touch $@

up: env
	$(PY) -m infra.emulator up --port $(EMULATOR_PORT) --tracking-port $(MLFLOW_PORT)

demo: up
	$(EMBEDDED) $(PY) -m demo $(DEMO_ARGS)

down: env
	$(PY) -m infra.emulator down

# More hours into the running stack, for the consumer the demo left running: from the hour after
# the last one the producer put (--resume) to the end of the data, an event hour a second; SPEED=1
# is real time, START=/END= (ISO dates) bound the hours, REPLAY_ARGS adds producer options.
SPEED ?= 3600
replay: env
	$(EMBEDDED) $(PY) -m producer --resume --speed $(SPEED) $(if $(START),--start $(START)) $(if $(END),--end $(END)) $(REPLAY_ARGS)

# A native Prometheus scraping the components' metrics ports on 127.0.0.1 (Ctrl-C stops it).
prometheus: env
	$(PY) -m infra.prometheus_server --port $(PROMETHEUS_PORT)

watch: env
	$(EMBEDDED) $(PY) -m monitor watch

# The prediction API on the embedded stack, on http://127.0.0.1:$(API_PORT) (Ctrl-C stops it).
api: env
	$(EMBEDDED) TRAFFIC_API_PORT=$(API_PORT) $(PY) -m serve

compare: env
	$(EMBEDDED) $(PY) -m monitor compare

test: env
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: env
	$(PY) -m pytest -m "not integration and not localstack and not slow" $(PYTEST_ARGS)

bench-accuracy: env
	$(PY) -m bench.accuracy $(BENCH_ARGS)

bench-throughput: env
	$(PY) -m bench.throughput $(BENCH_ARGS)

bench-selection: env
	$(PY) -m bench.selection $(BENCH_ARGS)

bench-drift: env
	$(PY) -m bench.drift $(BENCH_ARGS)

# Needs ApacheBench (ab: Debian's apache2-utils).
bench-api: env
	$(PY) -m bench.api $(BENCH_ARGS)
