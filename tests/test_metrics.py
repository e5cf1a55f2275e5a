"""The label values adapters.metrics exports at 0 from the start are the ones the components count."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from adapters.metrics import RETRAIN_TRIGGERS, RETRY_REASONS, ProducerMetrics, TrainerMetrics
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
