"""The flat walk of the batch model's trees (core.trees) against scikit-learn's own: equal bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from core import batch_model, dataset, synthetic
from core.features import FEATURE_COLUMNS, training_frame
from core.trees import FlatForest, UnsupportedModel


@pytest.fixture(scope="module")
def frame():
    records = dataset.to_records(synthetic.generate(start="2015-01-01", hours=24 * 90, seed=11, missing_rate=0.05), "301")
    X, y, _ = training_frame(records)
    return X, y


def awkward(X, seed: int):
    """``X`` with what can reach the model: missing values in every column, unseen,
    negative and non-integer weather codes, values beyond the training range."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    values = X.to_numpy(dtype=np.float64)
    values[rng.random(values.shape) < 0.05] = np.nan
    weather = FEATURE_COLUMNS.index("weather_code")
    rows = rng.choice(len(values), size=len(values) // 5, replace=False)
    values[rows, weather] = rng.choice([-1.0, 2.5, 99.0, 250.0], size=len(rows))
    values[rng.choice(len(values), size=50), FEATURE_COLUMNS.index("temp_c")] = 1e4
    X.loc[:, :] = values
    return X


@pytest.mark.parametrize("trees, leaves", [(1, 63), (20, 8), (150, 63)])
def test_predictions_equal_scikit_learns_to_the_last_bit(frame, trees, leaves):
    X, y = frame
    model = batch_model.build_pipeline(**batch_model.sized(trees), max_leaf_nodes=leaves).fit(X, y)
    forest = FlatForest(model)
    for inputs in (X, awkward(X, seed=trees)):
        for rows in (inputs.iloc[:1], inputs.iloc[:7], inputs):
            assert np.array_equal(forest.predict(rows), model.predict(rows))


def test_each_categorical_split_is_one_indicator_column(frame):
    X, y = frame
    model = batch_model.build_pipeline(max_iter=30).fit(X, y)
    forest = FlatForest(model)
    weather = FEATURE_COLUMNS.index("weather_code")
    assert forest.indicator_columns and set(forest.indicator_columns.values()) == {weather}
    augmented = forest.augmented(awkward(X, seed=1).to_numpy(dtype=np.float64))
    indicators = augmented[:, sorted(forest.indicator_columns)]
    assert set(np.unique(indicators[~np.isnan(indicators)])) <= {0.0, 1.0}
    unseen = np.isin(augmented[:, weather], [-1.0, 2.5, 99.0, 250.0]) | np.isnan(augmented[:, weather])
    assert np.isnan(indicators[unseen]).all()  # the missing way, as scikit-learn routes them


def test_a_model_it_cannot_reproduce_is_refused(frame):
    X, y = frame
    with pytest.raises(UnsupportedModel):
        FlatForest(Pipeline([("regress", LinearRegression())]).fit(X.fillna(0), y))
    fitted = batch_model.build_pipeline(max_iter=5).fit(X, y)
    with pytest.raises(UnsupportedModel, match="steps before"):  # its walk would skip the scaling
        FlatForest(Pipeline([("scale", StandardScaler()), *fitted.steps]).fit(X, y))
