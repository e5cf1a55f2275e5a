import pytest

from core.ensemble import MAX_RESIDUAL_SHARE, Combiner


def learned(actuals, batch=900.0, online=900.0, start=0) -> Combiner:
    combiner = Combiner()
    for hour, actual in enumerate(actuals, start=start):
        combiner.learn(actual, batch, online, hour)
    return combiner


def test_a_miss_that_persists_is_partly_carried_into_the_next_hour():
    combiner = learned([1000.0] * 200)  # both models 100 short, hour after hour
    assert combiner.weighted(900.0, 900.0) == 900.0
    assert combiner.predict(900.0, 900.0, hour=200) == pytest.approx(900.0 + MAX_RESIDUAL_SHARE * 100.0)


def test_a_miss_that_flips_sign_every_hour_is_not_carried():
    combiner = learned([1000.0, 800.0] * 100)  # residuals +100, -100: negative autocorrelation
    assert combiner.residual_share() == 0.0
    assert combiner.predict(900.0, 900.0, hour=200) == 900.0


def test_the_residual_is_carried_only_into_the_hour_right_after_it():
    combiner = learned([1000.0] * 200)
    assert combiner.predict(900.0, 900.0, hour=203) == 900.0  # hours 200-202 never came
    combiner.learn(1000.0, 900.0, 900.0, hour=150)  # a late record does not replace the newest residual
    assert combiner.residual_hour == 199
    assert combiner.predict(900.0, 900.0, hour=200) > 900.0

