"""Why the batch model predicted what it did: SHAP feature contributions from its trees.

The batch model (:mod:`core.batch_model`) predicts the last hour's volume plus the mean of
two boosted-tree members' predicted change. SHAP's ``TreeExplainer`` reads scikit-learn's
``HistGradientBoostingRegressor`` itself, but not its categorical splits (``weather_code``:
a split on a set of categories, which it reads as a threshold, so its values stop adding up
to the prediction). Here both members' trees go to ``TreeExplainer`` in its own tree format
instead, as :class:`core.trees.FlatForest` holds them: each categorical split a threshold
on an indicator column. The indicators' contributions are summed back into
``weather_code``. So for every row:

    prediction = last hour's volume + expected change + sum of the contributions

exactly (to float rounding; the tests check it). The contributions are path-dependent
TreeSHAP values of the trees, with each categorical split's indicator a player of its own;
summed, they are ``weather_code``'s share.

Heavy (SHAP loads numba): imported by the API on its first explanation and by training,
never by the consumer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.trees import FlatForest, Tree


@dataclass(frozen=True)
class Explanation:
    """One row's prediction taken apart."""

    prediction: float
    #: The volume the trees' change is added to (the last hour's, or its stand-in).
    base: float
    #: The trees' mean change over their training rows.
    expected_change: float
    #: Per input column of the model, in its order.
    contributions: dict[str, float]

    def ranked(self) -> list[tuple[str, float]]:
        """The contributions, largest magnitude first."""
        return sorted(self.contributions.items(), key=lambda item: -abs(item[1]))


class TreeContributions:
    """A fitted batch model's trees in SHAP's format, over :class:`core.trees.FlatForest`'s
    augmented columns (the inputs, then one indicator per distinct categorical split)."""

    def __init__(self, model) -> None:
        import shap  # heavy: only where explanations are made

        self.model = model
        self.forest = FlatForest(model, keep_trees=True)
        weight = 1.0 / self.forest.n_members
        trees = [self._tree(tree, weight) for tree in self.forest.trees]
        self.explainer = shap.TreeExplainer({"trees": trees, "base_offset": float(np.mean(self.forest.baselines)),
                                             "tree_output": "raw_value", "input_dtype": np.float64,
                                             "internal_dtype": np.float64})
        self.expected_change = float(np.ravel(self.explainer.expected_value)[0])

    @staticmethod
    def _tree(tree: Tree, weight: float) -> dict:
        leaf = tree.left < 0
        return {
            "children_left": tree.left,
            "children_right": tree.right,
            "children_default": np.where(leaf, -1, np.where(tree.missing_left, tree.left, tree.right)),
            "features": tree.feature,
            "thresholds": tree.threshold,
            "values": tree.value.reshape(-1, 1) * weight,
            "node_sample_weight": tree.count,
        }

    @property
    def names(self) -> list[str]:
        """The model's input columns, in the order of :meth:`contributions`' columns."""
        return self.forest.names

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's contribution of each input column (rows × :attr:`names`)."""
        X = self.forest.inputs(frame)
        values = np.asarray(self.explainer.shap_values(self.forest.augmented(X), check_additivity=False))
        folded = values[:, : self.forest.n_features].copy()
        for position, column in self.forest.indicator_columns.items():
            folded[:, column] += values[:, position]
        return folded

    def explain(self, frame: pd.DataFrame) -> list[Explanation]:
        """Each row's explanation; ``frame`` holds the model's input columns."""
        names = self.names
        folded = self.contributions(frame)
        bases = self.forest.residual.base(self.forest.inputs(frame))
        predictions = self.forest.predict(frame)
        return [Explanation(float(p), float(b), self.expected_change, dict(zip(names, map(float, row), strict=True)))
                for p, b, row in zip(predictions, bases, folded, strict=True)]
