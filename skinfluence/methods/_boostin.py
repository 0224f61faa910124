"""BoostIn (Brophy, Hammoudeh and Lowd, JMLR 2023): TracIn over boosting rounds."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

from .._kernels import chunks
from .._sklearn_compat import StrOptions
from ..models import TorchModel
from ._base import METHODS, Method


def _ensemble(model):
    ens = getattr(model, "trees", None)
    if ens is None:
        raise ValueError(
            "method='boostin' scores boosted trees (HistGradientBoostingClassifier, "
            f"LGBMClassifier, XGBClassifier); this model is {model.family}. Use "
            "method='tracin' for networks."
        )
    if ens.l1 > 0:
        raise ValueError(
            f"method='boostin' needs Newton leaf values; this {ens.library} model "
            f"has an L1 leaf penalty ({ens.l1:g}), whose leaf values are "
            "soft-thresholded. Set it to 0, or use method='ip'."
        )
    if ens.not_newton is not None:
        raise ValueError(
            f"method='boostin' needs Newton leaf values; this {ens.library} model's "
            f"{ens.not_newton}. Use method='ip' or 'influence_function'."
        )
    if ens.row_share < 1 or ens.held_out > 0:
        what = (
            f"grew each tree on {ens.row_share:.0%} of the rows"
            if ens.row_share < 1
            else f"held {ens.held_out:.0%} of the rows out of every tree (early stopping)"
        )
        warnings.warn(
            f"This {ens.library} model {what}, while BoostIn's leaf sums run over "
            "every row scored: its scores approximate the library's trees. Turn "
            "the subsampling (or early stopping) off for exact leaf derivatives.",
            UserWarning,
            stacklevel=4,
        )
    return ens


def _init_score(ens, y: torch.Tensor) -> torch.Tensor:
    """The starting raw score a library folded into the first trees' leaves.

    LightGBM's ``boost_from_average`` starts a binary model at the log-odds
    of the mean label, a multiclass one at the log of each class's share.
    """
    if not ens.first_tree_holds_base:
        return torch.zeros(ens.n_outputs, dtype=torch.float64)
    if ens.n_outputs == 1:
        p = float(y.double().mean())
        return torch.tensor([np.log(p / (1.0 - p))], dtype=torch.float64)
    counts = torch.bincount(y, minlength=ens.n_outputs).double()
    return torch.log(counts / counts.sum())


class _Staging:
    """The ensemble round by round: the raw score before each boosting round.

    Trees are in round-major, class-minor order (round ``j`` holds trees
    ``j K .. j K + K - 1``), and every tree of a round was grown at the raw
    score of the rounds before it.
    """

    def __init__(self, ens, values: torch.Tensor, init: torch.Tensor) -> None:
        self.K = ens.n_outputs
        self.n_rounds = ens.n_trees // self.K
        tree_of_leaf = torch.as_tensor(ens.tree_of_leaf())
        # leaf values with the folded starting score taken out of the first round
        eff = values.clone()
        first = tree_of_leaf < self.K
        eff[first] -= init[torch.as_tensor(ens.tree_output)[tree_of_leaf[first]]]
        self.values = eff
        self.start = torch.as_tensor(ens.base, dtype=torch.float64) + init

    def raw_before_rounds(self, ids: torch.Tensor) -> torch.Tensor:
        """Raw score of rows before each round, shape ``(b, n_rounds, K)``."""
        contrib = self.values[ids].reshape(len(ids), self.n_rounds, self.K)
        before = torch.cumsum(contrib, dim=1) - contrib
        return before + self.start


class _Outputs(nn.Module):
    """The rows' raw scores as the parameter: ``forward(rows) = F[rows]``."""

    def __init__(self, F: torch.Tensor) -> None:
        super().__init__()
        self.F = nn.Parameter(F)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.F[rows.long().reshape(-1)]


def _output_gradient(objective):
    """``F -> dJ/dF``: the objective's gradient in the validation rows' raw
    scores (shape ``(m, K)``), evaluated at any raw scores ``F``.

    The objective is rebound to a model whose parameters are the raw scores
    themselves, so each evaluation costs O(m K), not a pass over the trees.
    """
    model = objective.model
    m, K = len(objective), model.module.assign.shape[1]
    proxy = TorchModel(
        _Outputs(torch.zeros(m, K, dtype=torch.float64)),
        model._row_loss,
        output=model.output,
        classes=model.classes,
        input_dtype=torch.int64,
    )
    bound = copy.copy(objective)
    bound.model, bound.X = proxy, torch.arange(m)
    return lambda F: bound.gradient({"F": F}, batch_size=max(m, 1))["F"]


def _grad_hess(raw: torch.Tensor, y: torch.Tensor, factor: float):
    """Per-row first and second derivatives of the log loss in the raw score.

    ``raw`` has shape ``(b, n_rounds, K)``; returns two tensors of that shape.
    """
    if raw.shape[-1] == 1:
        p = torch.sigmoid(raw)
        target = y.to(raw.dtype).reshape(-1, 1, 1)
    else:
        p = torch.softmax(raw, dim=-1)
        target = torch.nn.functional.one_hot(y, raw.shape[-1]).to(raw.dtype)[:, None, :]
    return p - target, factor * p * (1.0 - p)


@METHODS.register
class BoostIn(Method):
    """BoostIn: learning-rate-weighted influence over boosting rounds.

    For a boosted ensemble of Newton trees, the leaf value a row ``i`` reaches
    in tree ``t`` is ``v = -eta G / (H + lambda)`` over the rows of the leaf,
    with ``g_i, h_i`` the derivatives of row ``i``'s loss at the raw score
    before the tree's round. Up-weighting row ``i`` moves it by
    ``dv/dw_i = -eta (g_i + w h_i) / (H + lambda)`` (``w = v / eta``, the
    unshrunk value), and the objective by that times ``dJ/dv``, the objective's
    gradient at the ensemble before the round. The score sums
    ``-dJ/dv * dv/dw_i`` over the trees, so higher is more beneficial, as for
    every method. Two passes over the rows (leaf sums, then scores) and one
    objective gradient per round: O(n x trees) time and memory per chunk.

    Parameters
    ----------
    leaf_value : {"shrunk", "newton"}, default="shrunk"
        The leaf value ``w`` in ``g_i + w h_i``. "shrunk" takes the stored
        leaf value (learning rate included), as the authors' reference
        implementation (tree_influence) does: the scores then equal its
        BoostIn (to 1e-14 on LightGBM, summed over validation rows).
        "newton" takes the unshrunk Newton value ``v / eta``, which makes
        ``dv/dw_i`` the exact derivative of the leaf value in the row's weight.
        They differ in the second term only, by the factor ``eta``.

    Only for boosted trees (``HistGradientBoostingClassifier``,
    ``LGBMClassifier``, ``XGBClassifier``), scored on the rows the model was
    fitted on (the leaf sums ``H`` are over them), with unit row weights.

    References
    ----------
    Brophy, Hammoudeh and Lowd, "Adapting and Evaluating Influence-Estimation
    Methods for Gradient-Boosted Decision Trees", JMLR 24 (2023).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import compute_influence
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> trees = HistGradientBoostingClassifier(max_iter=5).fit(X[:150], y[:150])
    >>> s = compute_influence(trees, X[:150], y[:150], X[150:], y[150:], method="boostin")
    >>> s.shape
    (150,)
    """

    _key = "boostin"
    _parameter_constraints: dict = {"leaf_value": [StrOptions({"shrunk", "newton"})]}

    def __init__(self, leaf_value: str = "shrunk") -> None:
        self.leaf_value = leaf_value

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        return self._scores(model, objective, X, y, [y], batch_size)[0]

    def score_relabel(
        self, model, objective, X, y, *, n_classes, batch_size, random_state=None, **kwargs
    ):
        """Scores with every row labelled each class in turn (see
        :meth:`Method.score_relabel`): the leaf sums ``H``, the starting score
        and the objective's gradients at the true labels, only each row's own
        ``g_i`` at label ``c``."""
        sets = [torch.full_like(y, c) for c in range(n_classes)]
        return torch.stack(self._scores(model, objective, X, y, sets, batch_size))

    def _scores(self, model, objective, X, y, label_sets, batch_size):
        """Scores under each labelling of the rows (the leaf sums at ``y``)."""
        self.validate()
        ens = _ensemble(model)
        values = model.params["leaf_values"].detach().to("cpu", torch.float64)
        stage = _Staging(ens, values, _init_score(ens, y))
        ids_all = torch.as_tensor(X)
        n, L = len(ids_all), len(values)
        # pass 1: the leaves' Hessian sums H at the true labels
        H = torch.zeros(L, dtype=torch.float64)
        for sl in chunks(n, batch_size):
            ids = ids_all[sl].long()
            _, h = _grad_hess(stage.raw_before_rounds(ids), y[sl], ens.hessian_factor)
            H.index_add_(0, ids.reshape(-1), h.reshape(len(ids), -1).reshape(-1))
        # the objective's gradient in the leaf values, before each round: its
        # gradient in the validation rows' raw scores, summed over each leaf
        dJ = torch.zeros(L, dtype=torch.float64)
        dJ_dF = _output_gradient(objective)
        ids_val = torch.as_tensor(objective.X).long()
        before = stage.raw_before_rounds(ids_val)  # (m, n_rounds, K)
        for j in range(stage.n_rounds):
            g = dJ_dF(before[:, j, :].contiguous()).detach().to("cpu", torch.float64)
            trees = ids_val[:, j * stage.K : (j + 1) * stage.K]
            dJ.index_add_(0, trees.reshape(-1), g.reshape(-1))
        w = stage.values / (ens.learning_rate if self.leaf_value == "newton" else 1.0)
        factor = ens.learning_rate * dJ / (H + ens.l2)
        # pass 2: per row, sum over trees of -dJ/dv * dv/dw_i
        out = []
        for labels in label_sets:
            scores = torch.empty(n, dtype=torch.float64)
            for sl in chunks(n, batch_size):
                ids = ids_all[sl].long()
                raw = stage.raw_before_rounds(ids)
                g, h = _grad_hess(raw, labels[sl], ens.hessian_factor)
                g, h = g.reshape(len(ids), -1), h.reshape(len(ids), -1)
                scores[sl] = (factor[ids] * (g + w[ids] * h)).sum(1)
            out.append(scores)
        return out
