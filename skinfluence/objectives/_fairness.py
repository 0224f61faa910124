"""Fairness: the gap of a soft rate between the groups of the validation rows."""

from __future__ import annotations

import numpy as np
import torch

from ..metrics._fairness import (
    check_fairness_metric,
    check_groups_defined,
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
        The positive class; ``None`` means the last of the model's classes.

    See Also
    --------
    skinfluence.metrics.metric_conditions : the rows each metric compares
        the groups on (shared with the hard gaps of ``skinfluence.metrics``).

    Notes
    -----
    At hard 0/1 predictions the gaps equal fairlearn's
    ``demographic_parity_difference`` and ``equal_opportunity_difference``;
    the soft rate makes them differentiable. The gradient is the one of the
    active groups (a subgradient where two groups tie).

    Examples
    --------
    >>> from skinfluence.objectives import Fairness
    >>> Fairness(metric="equal_opportunity")
    Fairness(metric='equal_opportunity')
    """

    _key = "fairness"
    requires_sensitive_features = True

    def __init__(self, metric: str = "demographic_parity", pos_label=None) -> None:
        self.metric = metric
        self.pos_label = pos_label

    def _pos_index(self, model) -> int:
        classes = model.classes
        n_classes = None if classes is None else len(classes)
        if model.output == "binary_logit":
            n_classes = 2
        if n_classes is not None and n_classes != 2:
            raise ValueError(
                f"The fairness objective needs a binary target; the model has "
                f"{n_classes} classes."
            )
        if self.pos_label is None:
            return 1
        if classes is None:
            if self.pos_label not in (0, 1):
                raise ValueError(f"pos_label={self.pos_label!r} is not 0 or 1.")
            return int(self.pos_label)
        hits = np.flatnonzero(classes == self.pos_label)
        if len(hits) == 0:
            raise ValueError(
                f"pos_label={self.pos_label!r} is not one of the classes "
                f"{classes.tolist()}."
            )
        return int(hits[0])

    def validate(self) -> None:
        """Check ``metric``."""
        check_fairness_metric(self.metric)

    def bind(self, model, X_val, y_val, sensitive_features=None):
        """Return the bound gap over ``(X_val, y_val)`` and its groups."""
        self.validate()
        if sensitive_features is None:
            raise ValueError(
                "The fairness objective needs sensitive features for the "
                "validation rows (sensitive_features / sensitive_features_val)."
            )
        pos = self._pos_index(model)
        X, y = prepare_validation(model, X_val, y_val)
        if model.classes is None and model.output != "binary_logit":
            with torch.no_grad():
                width = model.log_proba(model.params, X[:1].to(model.device)).shape[1]
            if width != 2:
                raise ValueError(
                    f"The fairness objective needs a binary target; the model "
                    f"has {width} outputs."
                )
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
        )
        groups = [codes == g for g in range(len(names))]
        masks = [torch.as_tensor(np.stack(groups) & cond) for _, cond in conditions]
        return _SoftGap(model, X, y, pos, masks)
