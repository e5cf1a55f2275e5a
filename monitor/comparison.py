"""Batch vs online vs the served prediction, over the replayed period: a table and a chart.

Pure functions over the result rows (a DataFrame read from the bucket).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.batch_model import Scores, score
from core.ensemble import fixed_mean

MODELS = {"batch": "batch_prediction", "online": "online_prediction", "combined": "combined_prediction"}


def with_combined(rows: pd.DataFrame) -> pd.DataFrame:
    """``combined_prediction``: what was served; for rows written before the consumer recorded
    it, the fixed weighted mean that was its rule then."""
    rows = rows.copy()
    fixed = fixed_mean(rows["batch_prediction"], rows["online_prediction"])
    served = rows["served_prediction"].to_numpy(dtype=float) if "served_prediction" in rows else fixed
    rows["combined_prediction"] = np.where(np.isnan(served), fixed, served)
    return rows


def scores(rows: pd.DataFrame) -> dict[str, Scores]:
    rows = with_combined(rows)
    return {name: score(rows["traffic_volume"], rows[column]) for name, column in MODELS.items()}


def table(rows: pd.DataFrame) -> str:
    lines = [f"{'model':<10}{'MAE':>9}{'RMSE':>9}{'R²':>8}{'hours':>8}"]
    for name, s in scores(rows).items():
        lines.append(f"{name:<10}{s.mae:>9.1f}{s.rmse:>9.1f}{s.r2:>8.3f}{s.n:>8,}")
    return "\n".join(lines)


def rolling_errors(rows: pd.DataFrame, window_hours: int = 168) -> pd.DataFrame:
    rows = with_combined(rows)
    index = pd.to_datetime(rows["event_time"], utc=True)
    errors = pd.DataFrame(
        {name: (rows[col].astype("float64") - rows["traffic_volume"]).abs().to_numpy() for name, col in MODELS.items()},
        index=index,
    ).sort_index()
    return errors.rolling(window_hours, min_periods=max(1, window_hours // 4)).mean()


def chart(rows: pd.DataFrame, path, window_hours: int = 168) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rolling = rolling_errors(rows, window_hours)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for name in MODELS:
        ax.plot(rolling.index, rolling[name], label=name, linewidth=1.2 if name != "combined" else 1.8)
    ax.set_title(f"Rolling MAE over the last {window_hours} event hours")
    ax.set_ylabel("MAE (vehicles/hour)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
