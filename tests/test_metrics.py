"""adapters.metrics: the label values exported at 0 are the ones the components count; the champion gauge's values."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from adapters.metrics import RETRAIN_TRIGGERS, RETRY_REASONS, ConsumerMetrics, ProducerMetrics, TrainerMetrics
from consumer.telemetry import Telemetry
from training import schedule


def test_the_retrain_triggers_are_the_schedules():
    assert set(RETRAIN_TRIGGERS) == {schedule.CADENCE, schedule.DRIFT}


def test_known_label_values_are_exported_at_zero_before_anything_happens():
    registry = CollectorRegistry()
    ProducerMetrics(registry)
    TrainerMetrics(registry)
    for reason in RETRY_REASONS:
        assert registry.get_sample_value("traffic_producer_records_retried_total", {"reason": reason}) == 0.0
    for trigger in RETRAIN_TRIGGERS:
        for family in ("traffic_trainer_retrains_total", "traffic_trainer_promotions_total"):
            assert registry.get_sample_value(family, {"trigger": trigger}) == 0.0


def test_the_champion_gauge_is_its_version_and_nan_for_none_or_a_name():
    registry = CollectorRegistry()
    telemetry = Telemetry(ConsumerMetrics(registry))
    telemetry.champion("7")
    assert registry.get_sample_value("traffic_consumer_champion_version") == 7.0
    for version in (None, "bench"):
        telemetry.champion(version)
        assert math.isnan(registry.get_sample_value("traffic_consumer_champion_version"))
