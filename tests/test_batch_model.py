import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from core import batch_model, dataset, features, synthetic
from core.batch_model import LastHourResidual
from core.features import FEATURE_COLUMNS


def test_the_regressor_learns_the_change_from_the_last_hour_and_predictions_add_it_back():
    rng = np.random.default_rng(1)
    last, before = rng.uniform(100, 5000, 200), rng.uniform(100, 5000, 200)
    step = rng.normal(size=200)
    X = np.column_stack([last, before, step])
    y = last + 30.0 * step  # the change from the last hour is linear in the third column
    model = LastHourResidual(LinearRegression(), last=0, fallback=1).fit(X, y)
    np.testing.assert_allclose(model.regressor_.coef_, [0.0, 0.0, 30.0], atol=1e-9)
    np.testing.assert_allclose(model.predict(X), y)


def test_a_missing_last_hour_falls_back_to_the_hour_before_then_to_the_mean():
    X = np.array([[np.nan, 700.0], [np.nan, np.nan], [300.0, np.nan]])
    model = LastHourResidual(LinearRegression(), last=0, fallback=1)
    model.fit(np.array([[100.0, 1.0], [200.0, 2.0]]), [100.0, 300.0])
    assert model.level_ == 200.0
    np.testing.assert_array_equal(model.base(X), [700.0, 200.0, 300.0])


def test_it_follows_scikit_learn_conventions():
    model = LastHourResidual(LinearRegression(), last=3, fallback=4)
    assert clone(model).get_params()["last"] == 3
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((1, 5)))


def test_the_batch_pipeline_predicts_volumes_and_checks_its_columns_by_name():
    records = dataset.to_records(synthetic.generate(hours=24 * 60, seed=5), "301")
    X, y, _ = features.training_frame(records)
    model = batch_model.build_pipeline(max_iter=30).fit(X, y)
    assert list(model.feature_names_in_) == list(FEATURE_COLUMNS)
    predicted = model.predict(X)
    # Volumes, not changes: the in-sample error is a fraction of the volumes' spread.
    assert np.mean(np.abs(predicted - y)) < 0.3 * np.std(y)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X[list(reversed(FEATURE_COLUMNS))])
    assert isinstance(model.predict(pd.DataFrame(X.iloc[:1])), np.ndarray)
