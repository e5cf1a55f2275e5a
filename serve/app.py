"""The prediction API: forecasts, predictions and explanations from the stream's committed state.

Read-only by construction: it holds the committed states (:mod:`adapters.committed_state`)
and the registry's champion (:class:`adapters.model_registry.Champion`), both refreshed in
the background, and answers with :mod:`core.forecast`, which never learns. What it returns
for an hour is what the consumer writes for that hour when its record arrives next.

Batch-model calls are the cost (for 2 × 500 trees, under 1 ms for one row through the flat
walk of :mod:`core.trees`, against about 8 ms through scikit-learn's, the same numbers):
concurrent requests share one call (:class:`PredictionBatcher`), and the next hour's
forecast is cached per station until its state or the champion changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.committed_state import CommittedStates
from adapters.metrics import ApiMetrics
from core import forecast
from core.errors import PermanentError
from core.features import to_frame
from core.intervals import LEVELS, column_names
from core.processing import StationState
from core.schema import DecodeError, TrafficRecord, decode

log = logging.getLogger(__name__)

#: Rows per batch-model call at most: beyond this a call's cost grows with its rows.
MAX_ROWS_PER_CALL = 256


class PredictionBatcher:
    """Batch-model predictions for concurrent requests, in as few calls as possible.

    A request's rows wait while a call is running, then all the rows waiting go in the next
    call, in a worker thread (NumPy and scikit-learn release the GIL while they walk the
    trees, so the event loop keeps reading requests). One request alone is one call of one row.
    """

    def __init__(self, predict: Callable[[pd.DataFrame], object]) -> None:
        self.predict = predict
        self._waiting: list[tuple[dict[str, float], asyncio.Future]] = []
        self._draining = False

    async def one(self, features: dict[str, float]) -> float:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((features, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_ROWS_PER_CALL], self._waiting[MAX_ROWS_PER_CALL:]
                try:
                    values = await asyncio.to_thread(self.predict, to_frame([features for features, _ in group]))
                except Exception as exc:  # every request of the call learns why
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), value in zip(group, values, strict=True):
                    if not future.done():
                        future.set_result(float(value))
        finally:
            self._draining = False


def create_app(states: CommittedStates, champion, metrics: ApiMetrics, refresh_seconds: float,
               explainer_factory: Callable[[object], object] | None = None) -> FastAPI:
    """The FastAPI application. ``champion`` follows the registry (``refresh()``, ``ready``,
    ``version``, ``model``, ``predict``); the states and the champion are refreshed every
    ``refresh_seconds`` by a thread started with the application."""
    app = FastAPI(
        title="traffic-stream prediction API",
        description="Next-hour forecasts, predictions and explanations from the stream's committed state. "
                    "Read-only: nothing is learned or written.",
        version="1",
    )
    stop = threading.Event()
    forecasts: dict[str, tuple[tuple, bytes]] = {}  # per station: (its state's source, champion) and the encoded answer
    explainers: dict[str, object] = {}
    batcher = PredictionBatcher(lambda frame: champion.predict(frame))

    def refresh_once() -> None:
        try:
            if states.refresh():
                forecasts.clear()
        except PermanentError:
            raise
        except Exception as exc:  # S3 or DynamoDB down for a moment: keep serving what was committed
            metrics.refresh_failures.inc()
            log.warning("could not read the committed state (serving the last read): %s", exc)
        champion.refresh()
        metrics.champion_version.set(float(champion.version) if champion.ready else float("nan"))
        metrics.stations.set(len(states.stations))
        newest = [s.latest.event_time.timestamp() for s in states.stations.values() if s.latest is not None]
        if newest:
            metrics.newest_event.set(max(newest))

    def follow() -> None:
        while not stop.wait(refresh_seconds):
            try:
                refresh_once()
            except Exception as exc:
                log.error("the API's refresh failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        if states.refreshed_at is None:
            refresh_once()
        threading.Thread(target=follow, name="refresh", daemon=True).start()
        yield
        stop.set()

    app.router.lifespan_context = lifespan
    #: The first read of state and champion, for a caller that must see its permanent errors before serving.
    app.state.refresh = refresh_once
    app.state.champion_version = lambda: champion.version

    @app.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = route.path if route is not None else "unmatched"
        metrics.requests.labels(route=name, status=str(response.status_code)).inc()
        metrics.latency.labels(route=name).observe(time.perf_counter() - started)
        return response

    def problem(status: int, reason: str, message: str) -> JSONResponse:
        return JSONResponse({"reason": reason, "message": message}, status_code=status)

    def station_state(station_id: str) -> StationState | JSONResponse:
        state = states.stations.get(station_id)
        if state is None:
            return problem(404, "unknown_station", f"no committed state for station {station_id!r}: the stream has "
                                                   f"not processed an hour of it (stations: {len(states.stations)})")
        return state

    def no_champion() -> JSONResponse:
        return problem(503, "no_champion", "no batch model is the registry's champion yet: train one with "
                                           "`python -m training train`")

    def no_newest_hour(station_id: str) -> JSONResponse:
        # A state upgraded from before the newest record was kept: the next commit brings it.
        return problem(503, "no_newest_hour", f"station {station_id!r}'s committed state does not hold its newest "
                                              "record yet: it will once the consumer commits its next hour")

    async def answer(state: StationState, record: TrafficRecord) -> dict:
        version = champion.version
        inputs = forecast.features(state, record)  # admitted as the stream would, or DecodeError
        batch = await batcher.one(inputs)
        return as_json(forecast.complete(state, record, inputs, batch, version))

    @app.get("/health", summary="Ready once a champion and the committed state are loaded")
    def health() -> JSONResponse:
        reasons = []
        if not champion.ready:
            reasons.append("no champion loaded")
        if states.refreshed_at is None:
            reasons.append("the committed state has not been read")
        elif not states.stations:
            reasons.append("no station has committed state yet")
        body = {"ready": not reasons, "reasons": reasons, "champion_version": champion.version,
                "stations": len(states.stations),
                "state_read_at": None if states.refreshed_at is None else states.refreshed_at.isoformat()}
        return JSONResponse(body, status_code=200 if not reasons else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/stations/{station_id}/forecast", summary="The next hour's forecast, with its intervals")
    async def next_hour(station_id: str):
        state = station_state(station_id)
        if isinstance(state, JSONResponse):
            return state
        if not champion.ready:
            return no_champion()
        key = (states.sources.get(station_id), champion.version)
        cached = forecasts.get(station_id)
        if cached is None or cached[0] != key:
            record = forecast.next_hour(state)
            if record is None:
                return no_newest_hour(station_id)
            body = await answer(state, record)
            body["as_of"] = state.latest.event_time.isoformat()
            body["weather"] = f"the weather of {state.latest.event_time.isoformat()} (the newest hour's)"
            # Encoded once, as FastAPI would encode the dict: a cached answer costs no encoding.
            cached = forecasts[station_id] = (key, JSONResponse(body).body)
        return Response(cached[1], media_type="application/json")

    @app.post("/predict", summary="An hour's predictions given the station's committed history")
    async def predict(request: Request):
        found = await posted(request)
        if isinstance(found, JSONResponse):
            return found
        try:
            return await answer(*found)
        except DecodeError as exc:
            return problem(422, exc.reason, exc.message)

    async def posted(request: Request) -> tuple[StationState, TrafficRecord] | JSONResponse:
        """A posted record and its station's state; or the answer that says why there is none (503, 422, 404)."""
        if not champion.ready:
            return no_champion()
        record = parse_record(await request.body())
        if isinstance(record, JSONResponse):
            return record
        state = station_state(record.station_id)
        return state if isinstance(state, JSONResponse) else (state, record)

    def parse_record(body: bytes) -> TrafficRecord | JSONResponse:
        """The body as the stream decodes a record (same reasons as its dead letters); the volume may be left out."""
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("traffic_volume") is None:
            document["traffic_volume"] = 0  # not an input of any model: any valid value will do
            body = json.dumps(document).encode("utf-8")
        try:
            return decode(body)
        except DecodeError as exc:
            return problem(422, exc.reason, exc.message)

    @app.get("/stations/{station_id}/explain", summary="The batch model's feature contributions to the next hour")
    async def explain(station_id: str, hour: datetime | None = Query(
            None, description="the hour to explain (ISO 8601): the next hour, the only one whose inputs are known "
                              "without a record; POST /explain explains any record")):
        state = station_state(station_id)
        if isinstance(state, JSONResponse):
            return state
        if not champion.ready:
            return no_champion()
        record = forecast.next_hour(state)
        if record is None:
            return no_newest_hour(station_id)
        if hour is not None and (hour.tzinfo is None or hour != record.event_time):
            return problem(422, "hour_not_known", f"only the next hour, {record.event_time.isoformat()}, can be "
                                                  "explained from the state alone (with an aware time); "
                                                  "POST /explain a record for any other hour")
        return await explanation(state, record)

    @app.post("/explain", summary="The batch model's feature contributions to a record's prediction")
    async def explain_record(request: Request):
        found = await posted(request)
        return found if isinstance(found, JSONResponse) else await explanation(*found)

    async def explanation(state: StationState, record: TrafficRecord):
        try:
            features = forecast.features(state, record)
        except DecodeError as exc:
            return problem(422, exc.reason, exc.message)
        version, model = champion.version, champion.model
        explainer = explainers.get(version)
        if explainer is None:
            factory = explainer_factory or _tree_contributions
            explainer = await asyncio.to_thread(factory, model)
            explainers.clear()
            explainers[version] = explainer
        (found,) = await asyncio.to_thread(explainer.explain, to_frame([features]))
        return {"station_id": record.station_id, "hour": record.event_time.isoformat(), "model_version": version,
                "prediction": found.prediction, "base": found.base, "expected_change": found.expected_change,
                "contributions": [{"feature": name, "value": _json_number(features.get(name)), "contribution": value}
                                  for name, value in found.ranked()],
                "note": "prediction = base (the last hour's volume) + expected_change + the sum of the contributions"}

    return app


def _tree_contributions(model):
    from core.explanation import TreeContributions  # SHAP: loaded on the first explanation only

    return TreeContributions(model)


def _json_number(value: float | None) -> float | None:
    """A feature's value for JSON: a missing one (NaN: no such lag in the history) is null."""
    return None if value is None or value != value else value


def as_json(predicted: forecast.HourPrediction) -> dict:
    intervals = {}
    for level in LEVELS:
        lower, upper = column_names(level)
        intervals[f"{round(level * 100)}"] = {"lower": predicted.bounds[lower], "upper": predicted.bounds[upper]}
    return {
        "station_id": predicted.record.station_id,
        "hour": predicted.record.event_time.isoformat(),
        "batch_prediction": predicted.batch,
        "online_prediction": predicted.online,
        "served_prediction": predicted.served,
        "intervals": intervals,
        **predicted.bounds,
        "batch_model_version": predicted.version,
    }
