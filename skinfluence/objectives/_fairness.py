"""Fairness: the gap of a soft rate between the groups of the validation rows."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.base import clone

from ..metrics._fairness import (
    MIN_GROUP_ROWS,
    check_fairness_metric,
    check_groups_defined,
)
from ..metrics._groups import (
    check_pos_label,
    check_sensitive_features,
    encode_groups,
)
from ._base import OBJECTIVES, BoundObjective, Objective
from ._validation import prepare_validation


class _SoftGap(BoundObjective):
    """sum over conditions of (mean p over group gmax) - (mean p over gmin).

    ``p`` is the predicted probability of the positive class; each condition
    (all rows, y = pos, y != pos) contributes the gap between its groups of
    highest and lowest mean ``p``, which the weights encode.
    """

    def __init__(self, model, X, y, pos_index, masks):
        super().__init__(model, X, y)
        self.pos_index = pos_index
        self.masks = masks  # list over conditions of (n_groups, m) bool tensors

    def row_values(self, params, Xb, yb):
        return self.model.log_proba(params, Xb)[:, self.pos_index].exp()

    def row_weights(self, params, batch_size):
        p = self.all_row_values(params, batch_size)
        w = torch.zeros_like(p)
        for masks in self.masks:
            masks = masks.to(p.device)
            counts = masks.sum(1).to(p.dtype)
            means = (masks.to(p.dtype) @ p) / counts
            hi, lo = int(torch.argmax(means)), int(torch.argmin(means))
            if means[hi] == means[lo]:
                continue
            w = (
                w
                + masks[hi].to(p.dtype) / counts[hi]
                - masks[lo].to(p.dtype) / counts[lo]
            )
        return w


def check_bound(bound) -> float | None:
    """``bound`` if it is None or a real number in (0, 1), else raise ValueError."""
    if bound is None:
        return None
    if isinstance(bound, bool) or not isinstance(bound, Real) or not 0 < bound < 1:
        raise ValueError(
            f"bound must be None or a number in (0, 1) (a gap between rates), "
            f"got {bound!r}."
        )
    return float(bound)


@OBJECTIVES.register
class Fairness(Objective):
    """Gap of a soft rate between groups, for a binary target.

    With ``p`` the predicted probability of the positive class on the
    validation rows, and group means taken over:

    - ``"demographic_parity"``: all rows of the group;
    - ``"equal_opportunity"``: the group's rows with ``y = pos_label``;
    - ``"equalized_odds"``: the sum of the gaps over ``y = pos_label`` and
      over ``y != pos_label``.

    With two or more groups the gap is the largest one (highest group mean
    minus lowest). Several columns of sensitive features give intersectional
    groups.

    Parameters
    ----------
    metric : {"demographic_parity", "equal_opportunity", "equalized_odds"}, \
            default="demographic_parity"
        Which rate to equalise.
    pos_label : scalar, default=None
        The positive class, one of the model's classes (of ``y`` in the
        estimators); for a bare module, a class index. ``None``: the greater
        of the two classes in ``np.unique`` order (``1`` of ``{0, 1}``,
        ``"yes"`` of ``{"no", "yes"}``), the positive class of
        scikit-learn's binary classifiers, ``classes_[1]``. One rule with the
        metrics: :func:`skinfluence.metrics.check_pos_label`.
    bound : float in (0, 1) or None, default=None
        The gap to reach, as fairlearn's ``difference_bound``: a bound on the
        gap of hard predictions (of :mod:`skinfluence.metrics`; equalized
        odds: the sum of its two gaps, where fairlearn bounds each).
        ``None``: no bound; the estimators act on ``prune_ratio`` of the
        rows, as given. With a bound, :class:`~skinfluence.InfluenceFilter`
        and :class:`~skinfluence.InfluenceSampler` score the rows once, on
        the first fit, and search how many of the lowest-scored rows to act
        on: the fewest whose refit's hard gap on the validation rows is at
        most ``bound``. The first number tried is the one the scores predict
        to reach the bound, the next ones follow the measured gaps;
        ``prune_ratio`` caps the rows acted on and ``rounds`` the refits
        (see their ``rounds`` and ``gap_path_``).
        :func:`~skinfluence.compute_influence` ignores it.

    See Also
    --------
    skinfluence.metrics.metric_conditions : the rows each metric compares
        the groups on (shared with the hard gaps of ``skinfluence.metrics``).
    skinfluence.metrics.check_sensitive_features : the warning for too many
        groups or a float feature.

    Notes
    -----
    The bound is on the gap of hard predictions, as fairlearn's; the scores
    predict changes of the soft gap (this objective's value), which can
    differ from it by several points. So the first number of rows tried
    asks the soft gap ``J`` to fall by the share the hard gap ``H`` must,
    ``J * (1 - bound / H)``, and the measured hard gaps decide the rest;
    ``gap_path_`` records both gaps of every fit measured.

    At hard 0/1 predictions the gaps equal fairlearn's
    ``demographic_parity_difference`` and ``equal_opportunity_difference``;
    the soft rate makes them differentiable. The gradient is the one of the
    active groups (a subgradient where two groups tie).

    :meth:`bind` warns, once each, if the sensitive features make more than
    20 groups or are a float column, and if groups have fewer than 20
    validation rows (under the metric's conditions), naming each and its
    count: the largest gap between small groups is mostly noise.

    Examples
    --------
    >>> from skinfluence.objectives import Fairness
    >>> Fairness(metric="equal_opportunity")
    Fairness(metric='equal_opportunity')
    >>> Fairness(bound=0.05)
    Fairness(bound=0.05)
    """

    _key = "fairness"
    requires_sensitive_features = True
    #: whether bind warns about the groups; the estimators, which warn before
    #: training, score with a copy that does not (:meth:`_quiet`)
    _warn_groups = True

    def __init__(
        self, metric: str = "demographic_parity", pos_label=None, bound=None
    ) -> None:
        self.metric = metric
        self.pos_label = pos_label
        self.bound = bound

    def _pos_index(self, model, X) -> int:
        """The column of the positive class in the model's probabilities.

        Its labels are the model's classes, or the class indices of its
        outputs; :func:`~skinfluence.metrics.check_pos_label` picks the
        positive one (and refuses a target that is not binary).
        """
        if model.classes is not None:
            labels, source = model.classes, "model's classes"
        else:
            if model.output == "binary_logit":
                width = 2
            else:
                with torch.no_grad():
                    out = model.log_proba(model.params, X[:1].to(model.device))
                width = out.shape[1]
            labels, source = np.arange(width), "class indices of the model's outputs"
        pos = check_pos_label(labels, self.pos_label, source=source)
        return int(np.flatnonzero(np.asarray(labels) == pos)[0])

    def _quiet(self) -> Fairness:
        """A copy whose :meth:`bind` does not warn about the groups (clones too)."""
        copy = clone(self)
        copy._warn_groups = False
        return copy

    def __sklearn_clone__(self):
        copy = super().__sklearn_clone__()
        if not self._warn_groups:
            copy._warn_groups = False
        return copy

    def validate(self) -> None:
        """Check ``metric`` and ``bound``."""
        check_fairness_metric(self.metric)
        check_bound(self.bound)

    def bind(self, model, X_val, y_val, sensitive_features=None):
        """Return the bound gap over ``(X_val, y_val)`` and its groups.

        Raises
        ------
        ValueError
            If `sensitive_features` is missing or of another length, the
            model is not binary, ``pos_label`` is not one of its classes (the
            message names them), or a group has no row under a condition of
            the metric.

        Warns
        -----
        UserWarning
            If the sensitive features make more than 20 groups or are a float
            column; if groups have fewer than 20 validation rows (each named
            with its count).
        """
        self.validate()
        if sensitive_features is None:
            raise ValueError(
                "The fairness objective needs sensitive features for the "
                "validation rows (sensitive_features / sensitive_features_val)."
            )
        X, y = prepare_validation(model, X_val, y_val)
        pos = self._pos_index(model, X)
        if self._warn_groups:
            codes, names = check_sensitive_features(
                sensitive_features, name="sensitive_features_val"
            )
        else:
            codes, names = encode_groups(sensitive_features)
        if len(codes) != len(X):
            raise ValueError(
                f"sensitive features have {len(codes)} rows but the validation "
                f"set has {len(X)}."
            )
        conditions = check_groups_defined(
            self.metric,
            y.numpy(),
            codes,
            names,
            pos,
            rows="validation rows",
            remedy="Use a larger or stratified validation split.",
            min_groups=2,
            min_rows=MIN_GROUP_ROWS if self._warn_groups else None,
        )
        groups = [codes == g for g in range(len(names))]
        masks = [torch.as_tensor(np.stack(groups) & cond) for _, cond in conditions]
        return _SoftGap(model, X, y, pos, masks)
