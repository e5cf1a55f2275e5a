"""The batch model's boosted trees as flat arrays: one walk for every tree at once.

scikit-learn walks a ``HistGradientBoostingRegressor``'s trees one Python call per tree,
each call a few microseconds before its first row, so one row through 2 × 500 trees costs
about 8 ms whatever the machine's speed. :class:`FlatForest` holds every tree's nodes in
one set of arrays and moves all the trees of all the rows one level down per NumPy step;
it adds the leaves in scikit-learn's order, so its predictions are the pipeline's to the
last bit (the tests check equality, not closeness). It pays off for the few rows an API
request brings; for a batch of hundreds of rows scikit-learn's compiled walk is faster
(``docs/benchmarks.md``).

Each categorical split (a set of categories going left) becomes a threshold on an
indicator column, 0 where the row's category is in the left set, 1 where it is another
category seen in training, and missing where scikit-learn sends the row the missing way
(a missing, negative or unseen category; codes of 256 and more, which scikit-learn's own
cast leaves undefined and the featurizer never makes, count as unseen).
:mod:`core.explanation` gives the same trees and columns to SHAP.

>>> import numpy as np
>>> from core import batch_model, dataset, features, synthetic
>>> records = dataset.to_records(synthetic.generate(hours=24 * 60, seed=3), "301")
>>> X, y, _ = features.training_frame(records)
>>> model = batch_model.build_pipeline(max_iter=20).fit(X, y)
>>> forest = FlatForest(model)
>>> bool(np.array_equal(forest.predict(X), model.predict(X)))
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.features import FEATURE_COLUMNS


log = logging.getLogger(__name__)

#: Up to this many rows the flat walk is faster than scikit-learn's (about 20× for one row,
#: 1.5× at 32); beyond it scikit-learn's compiled walk is (``python -m bench.trees``).
MAX_ROWS = 32


class UnsupportedModel(ValueError):
    """A model whose predictions :class:`FlatForest` cannot reproduce exactly."""


@dataclass(frozen=True)
class Tree:
    """One tree over the augmented columns (:meth:`FlatForest.augmented`), leaves marked -1."""

    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    count: np.ndarray
    #: Which member of the average the tree belongs to.
    member: int


@dataclass(frozen=True)
class _Split:
    """A categorical split's sets: the categories going left, and those seen in training."""

    column: int
    left: np.ndarray
    known: np.ndarray

    def indicator(self, codes: np.ndarray) -> np.ndarray:
        """0 for a code in the left set, 1 for another known code, NaN otherwise."""
        in_left = (self.left[codes // 32] >> (codes % 32).astype(np.uint32)) & 1 == 1
        known = (self.known[codes // 32] >> (codes % 32).astype(np.uint32)) & 1 == 1
        return np.where(in_left, 0.0, np.where(known, 1.0, np.nan))


class _Indicators:
    """The categorical splits of one input column as indicator columns, by table lookup: a
    row's value is found among the categories once, and its indicators are one row of the
    table (the last row, all missing, for a missing or unseen category)."""

    def __init__(self, column: int, categories: np.ndarray) -> None:
        self.column = column
        self.categories = categories
        self.splits: list[_Split] = []
        #: Where each split's indicator goes among the augmented columns.
        self.positions: list[int] = []
        self._table: np.ndarray | None = None

    def add(self, split: _Split, position: int) -> None:
        self.splits.append(split)
        self.positions.append(position)
        self._table = None

    @property
    def table(self) -> np.ndarray:
        """Per category code (and a last row for unseen ones), every split's indicator."""
        if self._table is None:
            codes = np.arange(len(self.categories))
            self._table = np.vstack([np.column_stack([s.indicator(codes) for s in self.splits]),
                                     np.full((1, len(self.splits)), np.nan)])
        return self._table

    def values(self, X: np.ndarray) -> np.ndarray:
        raw = X[:, self.column]
        unseen = len(self.categories)
        if not unseen:
            return self.table[np.full(len(raw), 0)]
        codes = np.minimum(np.searchsorted(self.categories, raw), unseen - 1)
        return self.table[np.where(self.categories[codes] == raw, codes, unseen)]


def _columns(member, n_features: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """For each column the member's trees split on, the input column it is; and for each
    categorical input column, its categories in code order."""
    preprocessor = getattr(member, "_preprocessor", None)
    if preprocessor is None:
        if np.any(member.is_categorical_ if member.is_categorical_ is not None else False):
            raise UnsupportedModel("categories given as codes, not through the member's encoder")
        return np.arange(n_features), {}
    order, categories = [], {}
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" and not np.any(columns):
            continue
        columns = np.asarray(columns)
        columns = np.flatnonzero(columns) if columns.dtype == bool else columns.astype(int)
        if hasattr(transformer, "categories_"):
            if not np.isnan(getattr(transformer, "encoded_missing_value", np.nan)):
                raise UnsupportedModel("a categorical encoding that gives missing values a code")
            for column, values in zip(columns, transformer.categories_, strict=True):
                values = np.asarray(values, dtype=np.float64)
                categories[int(column)] = values[~np.isnan(values)]
        order.extend(int(c) for c in columns)
    if sorted(order) != list(range(n_features)):
        raise UnsupportedModel(f"the batch model's input columns cannot be followed through its preprocessor: {order}")
    return np.asarray(order), categories


class FlatForest:
    """A fitted batch model (:func:`core.batch_model.build_pipeline`) as flat arrays.

    Raises :class:`UnsupportedModel` for anything else (another loss link, weighted
    members), so a caller can keep the model's own ``predict``. Each tree's own arrays
    (:attr:`trees`, what SHAP is given) are kept only with ``keep_trees``: for 2 × 500 trees
    they are 7 of the 12 MB, and predicting needs only the stacked ones.
    """

    def __init__(self, model, keep_trees: bool = False) -> None:
        if len(getattr(model, "steps", ())) > 1:
            raise UnsupportedModel("a pipeline with steps before the trees")
        residual = model.steps[-1][1] if hasattr(model, "steps") else model
        average = getattr(residual, "regressor_", None)
        members = getattr(average, "estimators_", None)
        if not members or not hasattr(residual, "base"):
            raise UnsupportedModel(f"not a last-hour residual over an average of boosted trees: {type(model).__name__}")
        if getattr(average, "weights", None) is not None:
            raise UnsupportedModel("a weighted average of members")
        self.model = model
        self.residual = residual
        self.names = list(getattr(model, "feature_names_in_", FEATURE_COLUMNS))
        self.n_features = len(self.names)
        self.n_members = len(members)
        #: Per (input column, its categories): that column's indicators.
        self._groups: dict[tuple[int, bytes], _Indicators] = {}
        #: Per distinct split (column, left set, known set): its augmented column.
        self._split_columns: dict[tuple[int, bytes, bytes], int] = {}
        self.trees: list[Tree] = []
        self.baselines: list[float] = []
        for index, member in enumerate(members):
            if type(member._loss.link).__name__ != "IdentityLink" or member.n_trees_per_iteration_ != 1:
                raise UnsupportedModel(f"a member with loss {member.loss!r}")
            order, categories = _columns(member, self.n_features)
            known, f_idx_map = member._bin_mapper.make_known_categories_bitsets()
            for (predictor,) in member._predictors:
                self.trees.append(self._tree(predictor, order, categories, known, f_idx_map, index))
            self.baselines.append(float(np.ravel(member._baseline_prediction)[0]))
        self.n_columns = self.n_features + len(self._split_columns)
        self.n_nodes = sum(len(tree.value) for tree in self.trees)
        self._stack()
        if not keep_trees:
            self.trees = []

    def _tree(self, predictor, order, categories, known, f_idx_map, member) -> Tree:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        feature = order[nodes["feature_idx"].astype(np.int64)]
        threshold = nodes["num_threshold"].astype(np.float64)
        for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf):
            split_on = int(nodes["feature_idx"][i])
            column = int(order[split_on])
            split = _Split(column, predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]].copy(),
                           known[f_idx_map[split_on]].copy())
            key = (column, split.left.tobytes(), split.known.tobytes())
            if key not in self._split_columns:
                position = self.n_features + len(self._split_columns)
                self._split_columns[key] = position
                group = (column, categories[column].tobytes())
                self._groups.setdefault(group, _Indicators(column, categories[column])).add(split, position)
            feature[i], threshold[i] = self._split_columns[key], 0.5
        return Tree(
            left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
            right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            feature=np.where(leaf, -2, feature),
            threshold=threshold,
            value=nodes["value"].astype(np.float64),
            count=nodes["count"].astype(np.float64),
            member=member,
        )

    def _stack(self) -> None:
        """All trees' nodes in one set of arrays, deepest trees first.

        A leaf's children are itself. At level ``d`` only the trees deeper than ``d`` still
        move, a prefix of the order (``_moving[d]``), so a walk touches each tree as many
        levels as it is deep, not as deep as the deepest tree.
        """
        depths = np.array([_depth(tree) for tree in self.trees])
        walk_order = np.argsort(-depths, kind="stable")
        trees = [self.trees[i] for i in walk_order]
        sizes = np.array([len(tree.value) for tree in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._roots = offsets
        children = []
        for tree, offset in zip(trees, offsets, strict=True):
            here = np.arange(len(tree.value))
            children.append(np.column_stack([np.where(tree.left < 0, here, tree.left),
                                             np.where(tree.right < 0, here, tree.right)]) + offset)
        #: Node ``n``'s left child at ``2n``, right child at ``2n + 1``.
        self._children = np.concatenate(children).ravel()
        self._missing_right = np.concatenate([~t.missing_left for t in trees])
        self._feature = np.concatenate([np.maximum(t.feature, 0) for t in trees])
        self._threshold = np.concatenate([t.threshold for t in trees])
        self._value = np.concatenate([t.value for t in trees])
        sorted_depths = depths[walk_order]
        self._moving = [int(np.sum(sorted_depths > level)) for level in range(int(depths.max(initial=0)))]
        # Back to the order scikit-learn adds them in, split by member.
        position = np.empty(len(walk_order), dtype=np.int64)
        position[walk_order] = np.arange(len(walk_order))
        members = np.array([tree.member for tree in self.trees])
        self._member_columns = [position[np.flatnonzero(members == m)] for m in range(self.n_members)]

    @property
    def indicator_columns(self) -> dict[int, int]:
        """Each indicator's augmented column -> the input column whose categories it splits."""
        return {position: key[0] for key, position in self._split_columns.items()}

    def augmented(self, X: np.ndarray) -> np.ndarray:
        """The input columns followed by one indicator column per distinct categorical split."""
        if not self._groups:
            return X
        out = np.empty((len(X), self.n_columns))
        out[:, : self.n_features] = X
        for group in self._groups.values():
            out[:, group.positions] = group.values(X)
        return out

    def inputs(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.names].to_numpy(dtype=np.float64)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Each row's leaf in every tree (rows × trees, in walk order; indices into the nodes)."""
        augmented = self.augmented(X)
        rows = np.arange(len(X))[:, None]
        node = np.tile(self._roots, (len(X), 1))
        for moving in self._moving:
            at = node[:, :moving]
            value = augmented[rows, self._feature[at]]
            go_right = np.where(np.isnan(value), self._missing_right[at], value > self._threshold[at])
            node[:, :moving] = self._children[2 * at + go_right]
        return node

    def predict(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        """What ``model.predict`` gives, bit for bit: each member's baseline plus its leaves
        added one tree at a time (a cumulative sum adds in order), the members' mean, plus
        the last hour's volume."""
        X = self.inputs(frame) if isinstance(frame, pd.DataFrame) else np.asarray(frame, dtype=np.float64)
        values = self._value[self.leaves(X)]
        raw = []
        for baseline, columns in zip(self.baselines, self._member_columns, strict=True):
            terms = np.column_stack([np.full(len(X), baseline), values[:, columns]])
            raw.append(np.cumsum(terms, axis=1)[:, -1])
        change = np.average(np.column_stack(raw), axis=1)
        return self.residual.base(X) + change


def _depth(tree: Tree) -> int:
    """The longest path from the root to a leaf, in splits."""
    depth, level = 0, [0]
    while True:
        level = [child for node in level if tree.left[node] >= 0 for child in (tree.left[node], tree.right[node])]
        if not level:
            return depth
        depth += 1


def predictor(model) -> Callable[[pd.DataFrame], np.ndarray]:
    """``model.predict``, by the walk that is faster for the rows given: the same numbers.

    The flat walk for up to :data:`MAX_ROWS` rows of a model it reproduces, scikit-learn's
    otherwise (and for any model it does not reproduce).
    """
    try:
        forest = FlatForest(model)
    except UnsupportedModel as exc:
        log.info("predicting with the model's own walk of its trees: %s", exc)
        return model.predict

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return forest.predict(frame) if len(frame) <= MAX_ROWS else model.predict(frame)

    return predict
