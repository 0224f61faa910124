"""Boosted trees: HistGradientBoostingClassifier, LGBMClassifier, XGBClassifier.

With the tree structure fixed, a boosted ensemble's raw score is linear in
its leaf values::

    F_k(x) = b_k + sum_{t of class k} v[t, leaf_t(x)]

so a fitted ensemble is presented to the engine as a linear model over
sparse leaf indicators: the parameters are the leaf values (one vector,
every tree's leaves concatenated), the model's input rows are the global
indices of the leaves a row reaches (one per tree: O(n x trees) memory,
never n x leaves), and the training objective's penalty is the library's L2
penalty on leaf values. Refitting retrains the trees.

Each library is one adapter; all of them build a :class:`TreeEnsemble`,
which holds what BoostIn needs besides the leaf values (learning rate,
penalties, the loss's Hessian factor). The libraries are optional: an
adapter never imports its library, it recognises the estimator's class by
the module it was defined in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._sklearn_compat import (
    _num_samples,
    _safe_indexing,
    hgb_baseline,
    hgb_leaf_nodes,
    hgb_trees,
)
from ._adapter import ModelAdapter, register_adapter
from ._base import Checkpoint, TorchModel, criterion_row_loss


@dataclass(frozen=True)
class TreeEnsemble:
    """A fitted boosted ensemble as a linear model over leaf indicators.

    Parameters
    ----------
    leaf_values : ndarray of shape (n_leaves,)
        Every tree's leaf values (learning rate included), tree after tree.
    offsets : ndarray of int of shape (n_trees + 1,)
        Tree ``t`` owns ``leaf_values[offsets[t]:offsets[t + 1]]``.
    tree_output : ndarray of int of shape (n_trees,)
        The raw-score column each tree adds to (its class; 0 for binary).
    n_outputs : int
        1 for a binary model (one logit), the number of classes otherwise.
    base : ndarray of shape (n_outputs,)
        The raw score before any tree.
    learning_rate : float
        The shrinkage applied to each Newton leaf value.
    l2, l1 : float
        The library's penalties on leaf values (sum-of-losses scale).
    hessian_factor : float
        The library's multiplier of the loss's second derivative in the leaf
        values (LightGBM: K / (K - 1) for K classes; XGBoost: 2 for K > 2).
    first_tree_holds_base : bool
        Whether the library added its starting score to the first trees'
        leaves instead of to ``base`` (LightGBM's ``boost_from_average``).
    library : str
        For messages.
    not_newton : str or None
        What makes the leaves other than Newton steps of the stated penalty
        (a clipped or smoothed leaf value), for BoostIn's message; None when
        they are Newton steps.
    row_share : float
        The share of the rows each tree was grown on (row subsampling).
    held_out : float
        The share of the rows the library held out of every tree (early
        stopping's validation split).
    """

    leaf_values: np.ndarray
    offsets: np.ndarray
    tree_output: np.ndarray
    n_outputs: int
    base: np.ndarray
    learning_rate: float
    l2: float
    l1: float
    hessian_factor: float
    first_tree_holds_base: bool
    library: str
    not_newton: str | None = None
    row_share: float = 1.0
    held_out: float = 0.0

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return len(self.tree_output)

    def tree_of_leaf(self) -> np.ndarray:
        """The tree each leaf belongs to, shape ``(n_leaves,)``."""
        return np.repeat(np.arange(self.n_trees), np.diff(self.offsets))


class LeafValues(nn.Module):
    """Raw scores from leaf indices: ``base + sum_t leaf_values[ids[:, t]]``.

    The input is a float tensor of global leaf indices, shape
    ``(n, n_trees)``; the only parameter is ``leaf_values``.

    Parameters
    ----------
    ensemble : TreeEnsemble
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        super().__init__()
        self.leaf_values = nn.Parameter(
            torch.as_tensor(np.asarray(ensemble.leaf_values, dtype=np.float64))
        )
        assign = torch.zeros(ensemble.n_trees, ensemble.n_outputs, dtype=torch.float64)
        assign[torch.arange(ensemble.n_trees), torch.as_tensor(ensemble.tree_output)] = 1.0
        self.register_buffer("assign", assign)
        self.register_buffer("base", torch.as_tensor(ensemble.base, dtype=torch.float64))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        contrib = self.leaf_values[ids.long()]
        return contrib @ self.assign + self.base


class LeafIndices:
    """``X -> (n, n_trees)`` global leaf indices, a picklable callable.

    The rows are mapped a chunk at a time into one array of the smallest
    integer dtype that holds every leaf's index (int16 below 32,768 leaves),
    so the indices of a million rows of 500 trees of 31 leaves take 1 GB.

    Parameters
    ----------
    apply : callable
        ``apply(X) -> (n, n_trees)`` the library's own leaf (or node) ids.
    lookup : ndarray of int of shape (n_trees, max_id + 1)
        ``lookup[t, id]``: the global position of tree ``t``'s leaf ``id``.
    """

    #: rows mapped at a time
    chunk_rows = 65536

    def __init__(self, apply, lookup: np.ndarray) -> None:
        self.apply = apply
        self.lookup = lookup

    @property
    def dtype(self):
        """The integer dtype of the indices."""
        return np.int16 if self.lookup.max() < 2**15 else np.int32

    def __call__(self, X) -> torch.Tensor:
        n, T = _num_samples(X), self.lookup.shape[0]
        out = np.empty((n, T), dtype=self.dtype)
        for start in range(0, n, self.chunk_rows):
            rows = slice(start, min(n, start + self.chunk_rows))
            ids = np.asarray(self.apply(_safe_indexing(X, rows)))
            if ids.dtype.kind == "f":  # XGBoost returns node ids as floats
                ids = ids.astype(np.int64)
            out[rows] = self.lookup[np.arange(T)[None, :], ids.reshape(len(ids), T)]
        return torch.from_numpy(out)


def round_checkpoints(ens: TreeEnsemble) -> list[Checkpoint]:
    """The ensemble after each boosting round, as TracIn checkpoints.

    Checkpoint ``r`` keeps the leaf values of the trees of rounds ``<= r``
    (zero for the later trees: their leaves add nothing) with the learning
    rate as its step, so TracIn and self-influence sum over boosting rounds
    as they sum over a network's epochs. The last one is the fitted model.
    """
    K = ens.n_outputs
    rounds = torch.as_tensor(ens.tree_of_leaf() // K)
    values = torch.as_tensor(np.asarray(ens.leaf_values, dtype=np.float64))
    return [
        Checkpoint({"leaf_values": torch.where(rounds <= r, values, 0.0)}, ens.learning_rate)
        for r in range(ens.n_trees // K)
    ]


def _lookup(leaf_ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and the id -> global position table from each tree's leaf ids."""
    counts = np.array([len(ids) for ids in leaf_ids])
    offsets = np.r_[0, np.cumsum(counts)]
    width = max(int(ids.max()) for ids in leaf_ids) + 1
    table = np.full((len(leaf_ids), width), -1, dtype=np.int64)
    for t, ids in enumerate(leaf_ids):
        table[t, ids] = offsets[t] + np.arange(len(ids))
    return offsets, table


def _refuse_class_weight(est) -> None:
    if getattr(est, "class_weight", None) is not None:
        raise ValueError(
            f"{type(est).__name__} with class_weight is not supported: its "
            "training loss is weighted per class."
        )


class TreeEnsembleAdapter(ModelAdapter):
    """Shared conversion of the boosted-tree families.

    Subclasses implement :meth:`ensemble` (the fitted trees as a
    :class:`TreeEnsemble` and the leaf-index function) and the support
    checks.
    """

    #: the module and class name of the estimator the family handles
    module_prefix: str = ""
    class_names: tuple[str, ...] = ()

    def handles(self, estimator) -> bool:
        if self.module_prefix not in sys.modules:
            return False  # the library was never imported: not one of its models
        return any(
            c.__name__ in self.class_names and c.__module__.startswith(self.module_prefix)
            for c in type(estimator).__mro__
        )

    def ensemble(self, est) -> tuple[TreeEnsemble, LeafIndices]:
        raise NotImplementedError

    def leaf_l1(self, est) -> float:
        """The L1 penalty on leaf values (soft-thresholded leaves)."""
        return 0.0

    def check_curvature(self, est) -> None:
        l1 = self.leaf_l1(est)
        if l1 > 0:
            raise ValueError(
                f"{type(est).__name__} has an L1 penalty on its leaf values "
                f"({l1:g}), whose Hessian is undefined at zero leaves, so "
                "influence_function cannot invert the curvature of its training "
                "objective. Set it to 0, or use method='ip'."
            )

    def has_input_gradient(self, est) -> bool:
        return False

    def records_checkpoints(self, est) -> bool:
        return True  # every boosting round is one (see round_checkpoints)

    def to_torch(self, est) -> TorchModel:
        check_is_fitted(est)
        self.check(est)
        ens, indices = self.ensemble(est)
        binary = ens.n_outputs == 1
        output = "binary_logit" if binary else "logits"
        crit = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
        l2 = float(ens.l2)

        def penalty(n_rows: int) -> dict[str, float]:
            return {"leaf_values": l2 / n_rows} if l2 > 0 else {}

        model = TorchModel(
            LeafValues(ens),
            criterion_row_loss(crit, output),
            checkpoints=round_checkpoints(ens),
            output=output,
            classes=est.classes_,
            l2=penalty,
            transform=indices,
            family=type(est).__name__,
            n_features_in=getattr(est, "n_features_in_", None),
            input_dtype=torch.from_numpy(np.zeros(0, indices.dtype)).dtype,
            linear_in_params=True,
        )
        model.trees = ens
        model.input_gradients = False
        return model


class HistGradientBoostingAdapter(TreeEnsembleAdapter):
    """scikit-learn's ``HistGradientBoostingClassifier``.

    Leaves are Newton steps shrunk by ``learning_rate`` with the penalty
    ``l2_regularization``; the baseline is fitted from the data (kept as the
    model's constant). Early stopping (on by default above 10,000 rows)
    holds out ``validation_fraction`` of the rows it is given: those rows
    build no tree, and their scores measure only how they move the leaves
    they fall in.
    """

    description = "HistGradientBoostingClassifier"
    module_prefix = "sklearn.ensemble"
    class_names = ("HistGradientBoostingClassifier",)

    def check(self, est) -> None:
        _refuse_class_weight(est)

    def accepts_sparse(self, est) -> bool:
        return False

    def ensemble(self, est):
        trees = hgb_trees(est)
        leaf_ids = [np.flatnonzero(nodes["is_leaf"]) for nodes in trees]
        offsets, table = _lookup(leaf_ids)
        k = est.n_trees_per_iteration_
        values = np.concatenate(
            [nodes["value"][ids] for nodes, ids in zip(trees, leaf_ids, strict=True)]
        )
        ens = TreeEnsemble(
            leaf_values=values.astype(np.float64),
            offsets=offsets,
            tree_output=np.arange(len(trees)) % k,
            n_outputs=k,
            base=hgb_baseline(est),
            learning_rate=float(est.learning_rate),
            l2=float(est.l2_regularization),
            l1=0.0,
            hessian_factor=1.0,
            first_tree_holds_base=False,
            library="scikit-learn",
            held_out=float(est.validation_fraction or 0.0)
            if getattr(est, "do_early_stopping_", False)
            and not isinstance(est.validation_fraction, int)
            else 0.0,
        )
        return ens, LeafIndices(_HGBApply(est), table)


class _HGBApply:
    def __init__(self, est) -> None:
        self.est = est

    def __call__(self, X):
        return hgb_leaf_nodes(self.est, X)


def _lgb_leaves(node: dict, out: list) -> None:
    if "leaf_index" in node or "leaf_value" in node:
        out.append((int(node.get("leaf_index", 0)), float(node["leaf_value"])))
        return
    _lgb_leaves(node["left_child"], out)
    _lgb_leaves(node["right_child"], out)


class _LGBApply:
    def __init__(self, booster) -> None:
        self.booster = booster

    def __call__(self, X):
        return self.booster.predict(X, pred_leaf=True)


class LightGBMAdapter(TreeEnsembleAdapter):
    """LightGBM's ``LGBMClassifier`` (``boosting_type="gbdt"`` or ``"goss"``).

    LightGBM adds its starting score (``boost_from_average``) to the first
    trees' leaves, so the model's constant is 0 and the leaf values hold it.
    """

    description = "LGBMClassifier"
    module_prefix = "lightgbm"
    class_names = ("LGBMClassifier",)

    def check(self, est) -> None:
        _refuse_class_weight(est)
        if est.boosting_type not in ("gbdt", "goss"):
            raise ValueError(
                f"LGBMClassifier(boosting_type={est.boosting_type!r}) is not "
                "supported: only 'gbdt' and 'goss' are gradient boosting with "
                "additive trees."
            )

    def accepts_sparse(self, est) -> bool:
        return True

    def leaf_l1(self, est) -> float:
        return float(est.get_params().get("reg_alpha") or 0.0)

    def ensemble(self, est):
        booster = est.booster_
        info = booster.dump_model()["tree_info"]
        leaf_ids, values = [], []
        for tree in info:
            leaves: list = []
            _lgb_leaves(tree["tree_structure"], leaves)
            leaves.sort()
            leaf_ids.append(np.array([i for i, _ in leaves]))
            values.append(np.array([v for _, v in leaves]))
        offsets, table = _lookup(leaf_ids)
        k = len(est.classes_)
        n_outputs = 1 if k == 2 else k
        params = est.get_params()
        ens = TreeEnsemble(
            leaf_values=np.concatenate(values),
            offsets=offsets,
            tree_output=np.arange(len(info)) % n_outputs,
            n_outputs=n_outputs,
            base=np.zeros(n_outputs),
            learning_rate=float(params["learning_rate"]),
            l2=float(params.get("reg_lambda") or 0.0),
            l1=float(params.get("reg_alpha") or 0.0),
            hessian_factor=1.0 if k == 2 else k / (k - 1),
            first_tree_holds_base=True,
            library="lightgbm",
            not_newton=_lgb_not_newton(booster.params),
            row_share=_lgb_row_share(params),
        )
        return ens, LeafIndices(_LGBApply(booster), table)


def _lgb_not_newton(params: dict) -> str | None:
    for name in ("max_delta_step", "path_smooth"):
        if float(params.get(name) or 0.0) > 0:
            return f"{name}={params[name]} changes its leaf values"
    if params.get("linear_tree"):
        return "linear_tree=True fits linear models in its leaves"
    return None


def _lgb_row_share(params: dict) -> float:
    if params.get("boosting_type") == "goss":
        return 0.3  # GOSS keeps the top 20% gradients and samples 10% of the rest
    if int(params.get("subsample_freq") or 0) > 0:
        return float(params.get("subsample") or 1.0)
    return 1.0


class _XGBApply:
    def __init__(self, booster) -> None:
        self.booster = booster

    def __call__(self, X):
        import xgboost

        return self.booster.predict(xgboost.DMatrix(X), pred_leaf=True)


class XGBoostAdapter(TreeEnsembleAdapter):
    """XGBoost's ``XGBClassifier`` (``booster="gbtree"``).

    The starting score (``base_score``, fitted from the data by default) is
    the model's constant.
    """

    description = "XGBClassifier"
    module_prefix = "xgboost"
    class_names = ("XGBClassifier",)

    def check(self, est) -> None:
        _refuse_class_weight(est)
        if (est.booster or "gbtree") != "gbtree":
            raise ValueError(
                f"XGBClassifier(booster={est.booster!r}) is not supported: only "
                "'gbtree' is a sum of trees."
            )

    def accepts_sparse(self, est) -> bool:
        return True

    def leaf_l1(self, est) -> float:
        return float(est.get_xgb_params().get("reg_alpha") or 0.0)

    def ensemble(self, est):
        import xgboost

        booster = est.get_booster()
        frame = booster.trees_to_dataframe()
        leaves = frame[frame["Feature"] == "Leaf"]
        n_trees = int(frame["Tree"].max()) + 1
        leaf_ids, values = [], []
        for t in range(n_trees):
            rows = leaves[leaves["Tree"] == t].sort_values("Node")
            leaf_ids.append(rows["Node"].to_numpy(np.int64))
            values.append(rows["Gain"].to_numpy(np.float64))
        offsets, table = _lookup(leaf_ids)
        k = len(est.classes_)
        n_outputs = 1 if k == 2 else k
        ens_values = np.concatenate(values)
        tree_output = np.arange(n_trees) % n_outputs
        # the constant: the margin of one row minus the leaves it reaches
        width = int(booster.num_features())
        zero = np.zeros((1, width), dtype=np.float32)
        margin = booster.predict(xgboost.DMatrix(zero), output_margin=True).reshape(-1)
        ids = table[np.arange(n_trees), _XGBApply(booster)(zero).reshape(-1).astype(int)]
        sums = np.bincount(tree_output, weights=ens_values[ids], minlength=n_outputs)
        params = est.get_xgb_params()
        lr = params.get("learning_rate")
        ens = TreeEnsemble(
            leaf_values=ens_values,
            offsets=offsets,
            tree_output=tree_output,
            n_outputs=n_outputs,
            base=margin.astype(np.float64) - sums,
            learning_rate=0.3 if lr is None else float(lr),
            l2=float(1.0 if params.get("reg_lambda") is None else params["reg_lambda"]),
            l1=float(params.get("reg_alpha") or 0.0),
            hessian_factor=1.0 if k == 2 else 2.0,
            first_tree_holds_base=False,
            library="xgboost",
            not_newton=(
                f"max_delta_step={params['max_delta_step']} clips its leaf values"
                if float(params.get("max_delta_step") or 0.0) > 0
                else None
            ),
            row_share=float(params.get("subsample") or 1.0),
        )
        return ens, LeafIndices(_XGBApply(booster), table)


register_adapter(HistGradientBoostingAdapter())
register_adapter(LightGBMAdapter())
register_adapter(XGBoostAdapter())
