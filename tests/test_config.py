import pytest

from core.config import Settings


def test_a_holdout_longer_than_the_retraining_cadence_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="TRAFFIC_HOLDOUT_DAYS \\(14\\) must not exceed TRAFFIC_RETRAIN_EVERY_DAYS \\(10\\)"):
        Settings.from_env({"TRAFFIC_RETRAIN_EVERY_DAYS": "10", "TRAFFIC_HOLDOUT_DAYS": "14"})
    settings = Settings.from_env({})
    assert settings.holdout_days <= settings.retrain_every_days
    with pytest.raises(ValueError, match="scored on hours it was fitted on"):
        settings.replace(retrain_every_days=3.0)
