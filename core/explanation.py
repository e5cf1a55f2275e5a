"""Why the batch model predicted what it did: SHAP feature contributions from its trees.

The batch model (:mod:`core.batch_model`) predicts the last hour's volume plus the mean of
two boosted-tree members' predicted change. SHAP's ``TreeExplainer`` reads scikit-learn's
``HistGradientBoostingRegressor`` itself, but not its categorical splits (``weather_code``:
a split on a set of categories, which it reads as a threshold, so its values stop adding up
to the prediction). Here both members' trees go to ``TreeExplainer`` in its own tree format
instead, each categorical split rewritten as a threshold on an indicator column (0 when
the category is in the split's left set, 1 when not, missing where scikit-learn sends the
row the missing way), and the indicators' contributions are summed back into
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

from core.features import FEATURE_COLUMNS


@dataclass(frozen=True)
class Explanation:
    """One row's prediction taken apart."""

    prediction: float
    #: The volume the trees' change is added to (the last hour's, or its stand-in).
    base: float
    #: The trees' mean change over their training rows.
    expected_change: float
    #: Per feature, in :data:`FEATURE_COLUMNS` order.
    contributions: dict[str, float]

    def ranked(self) -> list[tuple[str, float]]:
        """The contributions, largest magnitude first."""
        return sorted(self.contributions.items(), key=lambda item: -abs(item[1]))


def _column_order(preprocessor, n_features: int) -> np.ndarray:
    """For each column the trees split on, the input column it is (the identity without a preprocessor)."""
    if preprocessor is None:
        return np.arange(n_features)
    order = []
    for name, _, columns in preprocessor.transformers_:
        if name == "remainder" and not np.any(columns):
            continue
        columns = np.asarray(columns)
        order.extend(np.flatnonzero(columns) if columns.dtype == bool else columns.astype(int))
    if sorted(order) != list(range(n_features)):
        raise ValueError(f"the batch model's input columns cannot be followed through its preprocessor: {order}")
    return np.asarray(order)


class TreeContributions:
    """A fitted batch model's trees in SHAP's format, with the indicator columns they need."""

    def __init__(self, model) -> None:
        import shap  # heavy: only where explanations are made

        self.model = model
        residual = model.steps[-1][1] if hasattr(model, "steps") else model
        self.residual = residual
        members = residual.regressor_.estimators_
        self.n_features = members[0].n_features_in_
        # With categorical features, each member first puts them in front (ordinal codes),
        # and its trees split on that order: the same for both members, fitted on the same rows.
        self.preprocessor = getattr(members[0], "_preprocessor", None)
        self.order = _column_order(self.preprocessor, self.n_features)
        if any(not np.array_equal(_column_order(getattr(m, "_preprocessor", None), self.n_features), self.order)
               for m in members):
            raise ValueError("the batch model's members order their input columns differently")
        #: (feature, left-set bitset as bytes, known-categories bitset as bytes) -> indicator column.
        self._indicators: dict[tuple[int, bytes, bytes], int] = {}
        self._bitsets: list[tuple[int, np.ndarray, np.ndarray]] = []
        trees = []
        for member in members:
            known, f_idx_map = member._bin_mapper.make_known_categories_bitsets()
            for (predictor,) in member._predictors:
                trees.append(self._tree(predictor, known, f_idx_map, 1.0 / len(members)))
        base_offset = float(np.mean([float(np.ravel(m._baseline_prediction)[0]) for m in members]))
        self.explainer = shap.TreeExplainer({"trees": trees, "base_offset": base_offset, "tree_output": "raw_value",
                                             "input_dtype": np.float64, "internal_dtype": np.float64})
        self.expected_change = float(np.ravel(self.explainer.expected_value)[0])

    def _tree(self, predictor, known: np.ndarray, f_idx_map: np.ndarray, weight: float) -> dict:
        nodes = predictor.nodes
        features = nodes["feature_idx"].astype(np.int64)
        thresholds = nodes["num_threshold"].astype(np.float64)
        for i in np.flatnonzero(nodes["is_categorical"] & ~nodes["is_leaf"].astype(bool)):
            feature = int(nodes["feature_idx"][i])
            left = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]]
            seen = known[f_idx_map[feature]]
            key = (feature, left.tobytes(), seen.tobytes())
            if key not in self._indicators:
                self._indicators[key] = self.n_features + len(self._bitsets)
                self._bitsets.append((feature, left.copy(), seen.copy()))
            features[i], thresholds[i] = self._indicators[key], 0.5
        leaf = nodes["is_leaf"].astype(bool)
        left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
        return {
            "children_left": np.where(leaf, -1, left),
            "children_right": np.where(leaf, -1, right),
            "children_default": np.where(leaf, -1, np.where(nodes["missing_go_to_left"].astype(bool), left, right)),
            "features": np.where(leaf, -2, features),
            "thresholds": thresholds,
            "values": nodes["value"].astype(np.float64).reshape(-1, 1) * weight,
            "node_sample_weight": nodes["count"].astype(np.float64),
        }

    def _augmented(self, X: np.ndarray) -> np.ndarray:
        """``X`` with one indicator column per distinct categorical split, as scikit-learn routes each row."""
        extra = np.empty((X.shape[0], len(self._bitsets)))
        for column, (feature, left, seen) in enumerate(self._bitsets):
            values = X[:, feature]
            valid = ~np.isnan(values) & (values >= 0) & (values < 256)
            codes = np.where(valid, values, 0).astype(np.int64)
            in_left = (left[codes // 32] >> (codes % 32).astype(np.uint32)) & 1 == 1
            known = (seen[codes // 32] >> (codes % 32).astype(np.uint32)) & 1 == 1
            # Missing, negative and unknown categories go the missing way (NaN: the default child).
            extra[:, column] = np.where(valid & in_left, 0.0, np.where(valid & known, 1.0, np.nan))
        return np.hstack([X, extra])

    @property
    def names(self) -> list[str]:
        """The model's input columns, in the order of :meth:`contributions`' columns."""
        return list(getattr(self.model, "feature_names_in_", FEATURE_COLUMNS))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's contribution of each input column (rows × :attr:`names`)."""
        names = self.names
        X = frame[names].to_numpy(dtype=np.float64)
        inputs = X if self.preprocessor is None else np.asarray(self.preprocessor.transform(frame[names]), dtype=np.float64)
        values = np.asarray(self.explainer.shap_values(self._augmented(inputs), check_additivity=False))
        folded = np.zeros_like(X)
        folded[:, self.order] = values[:, : self.n_features]
        for column, (feature, _, _) in enumerate(self._bitsets):
            folded[:, self.order[feature]] += values[:, self.n_features + column]
        return folded

    def explain(self, frame: pd.DataFrame) -> list[Explanation]:
        """Each row's explanation; ``frame`` holds the model's input columns."""
        names = self.names
        folded = self.contributions(frame)
        bases = self.residual.base(frame[names].to_numpy(dtype=np.float64))
        predictions = self.model.predict(frame[names])
        return [Explanation(float(p), float(b), self.expected_change, dict(zip(names, map(float, row), strict=True)))
                for p, b, row in zip(predictions, bases, folded, strict=True)]
