import pytest

from core.config import Settings


def test_a_holdout_longer_than_the_retraining_cadence_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="TRAFFIC_HOLDOUT_DAYS \\(14\\) must not exceed TRAFFIC_RETRAIN_EVERY_DAYS \\(10\\)"):
        Settings.from_env({"TRAFFIC_RETRAIN_EVERY_DAYS": "10", "TRAFFIC_HOLDOUT_DAYS": "14"})
    settings = Settings.from_env({})
    assert settings.holdout_days <= settings.retrain_every_days
    with pytest.raises(ValueError, match="scored on hours it was fitted on"):
        settings.replace(retrain_every_days=3.0)


def test_the_batch_model_size_is_configured_and_a_treeless_model_refused():
    assert Settings.from_env({}).batch_trees == 500
    assert Settings.from_env({"TRAFFIC_BATCH_TREES": "250"}).batch_trees == 250
    with pytest.raises(ValueError, match="TRAFFIC_BATCH_TREES must be at least 1, not 0"):
        Settings.from_env({"TRAFFIC_BATCH_TREES": "0"})
