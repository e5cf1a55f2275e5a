import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from adapters.model_registry import Champion
from core.config import Settings
from core.features import FEATURE_COLUMNS


def test_a_champion_fitted_on_fewer_columns_gets_its_own_columns_by_name():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, len(FEATURE_COLUMNS))), columns=list(FEATURE_COLUMNS))
    older = ["lag_1h", "hour", "lag_168h"]  # a model from before later columns existed, in its own order
    champion = Champion(Settings.from_env({}))
    champion.use("1", LinearRegression().fit(frame[older], frame["lag_1h"] * 2 + 1))
    np.testing.assert_allclose(champion.predict(frame), frame["lag_1h"] * 2 + 1)
