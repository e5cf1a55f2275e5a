"""Every registered batch model's explanation, logged with its run: SHAP values over a sample of its training rows.

The run gets ``shap_mean_abs_<feature>`` (the mean absolute contribution, vehicles/hour,
of each input column: how much the model leans on it) and :data:`PLOT`, SHAP's summary
plot of the same values (each dot a row, coloured by the feature's value). The values
come from :class:`core.explanation.TreeContributions`, the API's explanations.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

PLOT = "explanations/shap_summary.png"
#: Rows explained at most: the summary's shape settles long before (and SHAP's cost is per row).
MAX_ROWS = 500


def mean_absolute(model, sample: pd.DataFrame) -> tuple[dict[str, float], np.ndarray, list[str]]:
    """Mean |SHAP| per input column over ``sample``, with the values and the columns' names."""
    from core.explanation import TreeContributions

    explainer = TreeContributions(model)
    rows = sample.tail(MAX_ROWS)
    values = explainer.contributions(rows)
    names = explainer.names
    return {name: float(v) for name, v in zip(names, np.abs(values).mean(axis=0), strict=True)}, values, names


def log_explanations(run_id: str, model, sample: pd.DataFrame) -> dict[str, float]:
    """Log the model's mean |SHAP| per feature and the summary plot to ``run_id``; returns the means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    means, values, names = mean_absolute(model, sample)
    stamp = int(time.time() * 1000)
    client = MlflowClient()
    client.log_batch(run_id, metrics=[Metric(f"shap_mean_abs_{name}", value, stamp, 0) for name, value in means.items()])
    shap.summary_plot(values, sample.tail(MAX_ROWS)[names], show=False, max_display=len(names))
    figure = plt.gcf()
    figure.suptitle("What the batch model leans on: SHAP values of its last training hours (vehicles/hour)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(PLOT).name
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        client.log_artifact(run_id, str(path), str(Path(PLOT).parent))
    return means
