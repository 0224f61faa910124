"""The functional view of a fitted classifier that every kernel works on."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from .._sparse import SparseRows, as_sparse_rows

Params = dict[str, Tensor]

#: How the module's output is turned into class log-probabilities.
OUTPUT_KINDS = ("logits", "proba", "log_proba", "binary_logit", "other")


@dataclass(frozen=True)
class Checkpoint:
    """Parameters recorded during training, with the learning rate then in use.

    Parameters
    ----------
    params : dict of str to Tensor
        The trainable parameters at the checkpoint, keyed as in
        ``module.named_parameters()``.
    learning_rate : float
        The learning rate used in the steps that led to this checkpoint
        (the weight eta_t of TracIn).
    """

    params: Mapping[str, Tensor]
    learning_rate: float


class TorchModel:
    """A fitted classifier seen as a function of its parameters.

    Adapters (:func:`skinfluence.models.as_torch_model`) build this from a
    fitted estimator; the kernels only use this interface. The user's module is
    never changed: the model holds a deep copy, in eval mode.

    Parameters
    ----------
    module : torch.nn.Module
        The network. It is deep-copied and put in eval mode.
    row_loss : callable
        ``row_loss(outputs, y) -> Tensor`` of shape ``(n,)``: the per-row
        training loss from the module's outputs and class indices ``y``.
    output : {"logits", "proba", "log_proba", "binary_logit", "other"}
        What the module returns, which fixes :meth:`log_proba`.
    classes : array-like or None
        The class labels, sorted; ``y`` is encoded as indices into it. ``None``
        means ``y`` already holds class indices.
    l2 : callable, optional
        ``l2(n_rows) -> dict[str, float]``: per parameter, the coefficient
        lambda of the term ``lambda / 2 * ||theta||^2`` that the training
        objective (mean loss plus penalty) adds. ``n_rows`` is the number of
        training rows, which scikit-learn's ``C`` depends on.
    checkpoints : sequence of Checkpoint, default=()
        Recorded training checkpoints (for TracIn).
    transform : callable, optional
        Applied to ``X`` before it is converted to a tensor (the earlier
        steps of a Pipeline).
    family : str, default="torch"
        A short name of the model family, used in messages.
    n_features_in : int, default=None
        The number of columns of ``X`` the estimator was fitted on (before
        ``transform``), when it is known: rows of another width are refused
        with a message that names it.
    input_dtype : torch.dtype, default=None
        The dtype of the module's dense input rows (the parameters' dtype by
        default; an integer dtype for modules that take indices, such as the
        leaf indices of boosted trees).
    linear_in_params : bool, default=False
        Whether the module's output is linear in its parameters (a logistic
        regression, boosted trees' leaf values): its training objective is
        then convex, which sets ``InfluenceFunction``'s default damping.
    """

    def __init__(
        self,
        module: nn.Module,
        row_loss: Callable[[Tensor, Tensor], Tensor],
        *,
        output: str = "logits",
        classes: Sequence | np.ndarray | None = None,
        l2: Callable[[int], dict[str, float]] | None = None,
        checkpoints: Sequence[Checkpoint] = (),
        transform: Callable | None = None,
        family: str = "torch",
        n_features_in: int | None = None,
        input_dtype: torch.dtype | None = None,
        linear_in_params: bool = False,
    ) -> None:
        if output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}.")
        self.module = copy.deepcopy(module).eval()
        self.params: Params = {
            name: p.detach()
            for name, p in self.module.named_parameters()
            if p.requires_grad
        }
        if not self.params:
            raise ValueError("The model has no trainable parameters.")
        first = next(iter(self.params.values()))
        self.device = first.device
        self.dtype = first.dtype
        self.input_dtype = first.dtype if input_dtype is None else input_dtype
        self.linear_in_params = linear_in_params
        self._row_loss = row_loss
        self.output = output
        self.classes = None if classes is None else np.asarray(classes)
        self._l2 = l2
        self.checkpoints = tuple(checkpoints)
        self.transform = transform
        self.family = family
        self.n_features_in = n_features_in

    # ------------------------------------------------------------------ data
    def prepare_X(self, X) -> Tensor | SparseRows:
        """Transform ``X`` to the module's input rows (kept on the CPU).

        Dense input gives a tensor of the model's dtype; sparse input
        (``scipy.sparse``, or a sparse torch tensor) stays sparse, as
        :class:`~skinfluence.kernels.SparseRows`, which the kernels take one
        chunk at a time to the device and modules multiply as is.
        """
        width = np.shape(X)[1] if len(np.shape(X)) == 2 else None
        if self.n_features_in is not None and width not in (None, self.n_features_in):
            raise ValueError(
                f"X has {width} features, but the {self.family} model was fitted "
                f"on n_features_in_={self.n_features_in}."
            )
        if self.transform is not None:
            X = self.transform(X)
        rows = as_sparse_rows(X, self.dtype)
        if rows is not None:
            return rows
        if isinstance(X, Tensor):
            return X.detach().to("cpu", self.input_dtype)
        arr = np.asarray(X)
        if arr.dtype == object:
            raise ValueError(
                "X holds non-numeric values; encode them (e.g. in a Pipeline "
                "step before the model)."
            )
        return torch.as_tensor(np.ascontiguousarray(arr)).to(self.input_dtype)

    def prepare_y(self, y) -> Tensor:
        """Encode labels as class indices (a CPU int64 tensor)."""
        y = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
        y = y.reshape(-1)
        if self.classes is None:
            if not np.issubdtype(y.dtype, np.integer):
                if not np.all(np.mod(y, 1) == 0):
                    raise ValueError("y must hold integer class indices.")
            return torch.as_tensor(y.astype(np.int64))
        idx = np.searchsorted(self.classes, y)
        idx = np.clip(idx, 0, len(self.classes) - 1)
        bad = self.classes[idx] != y
        if np.any(bad):
            raise ValueError(
                f"y holds labels unknown to the fitted model: "
                f"{np.unique(y[bad])[:5].tolist()}; its classes are "
                f"{self.classes.tolist()}."
            )
        return torch.as_tensor(idx.astype(np.int64))

    @property
    def n_classes(self) -> int | None:
        """Number of classes, when known."""
        return None if self.classes is None else len(self.classes)

    # -------------------------------------------------------------- function
    def outputs(self, params: Mapping[str, Tensor], X: Tensor) -> Tensor:
        """The module's output at ``params``."""
        return functional_call(self.module, dict(params), (X,))

    def row_loss(self, params: Mapping[str, Tensor], X: Tensor, y: Tensor) -> Tensor:
        """Per-row training loss, shape ``(n,)``."""
        return self._row_loss(self.outputs(params, X), y)

    def log_proba_from_outputs(self, out: Tensor) -> Tensor:
        """Class log-probabilities, shape ``(n, n_classes)``."""
        if self.output == "logits":
            return F.log_softmax(out, dim=-1)
        if self.output == "log_proba":
            return out
        if self.output == "proba":
            # as skorch's NeuralNetClassifier does before NLLLoss
            return torch.log(out + torch.finfo(out.dtype).eps)
        if self.output == "binary_logit":
            z = out.reshape(-1)
            return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=1)
        raise TypeError(
            "This model's outputs cannot be read as class probabilities (its "
            "loss is not cross-entropy, NLL or BCE-with-logits), so objectives "
            "that need probabilities (fairness) are not available."
        )

    def log_proba(self, params: Mapping[str, Tensor], X: Tensor) -> Tensor:
        """Class log-probabilities at ``params``."""
        return self.log_proba_from_outputs(self.outputs(params, X))

    def l2(self, n_rows: int) -> dict[str, float]:
        """Per-parameter L2 coefficients of the training objective."""
        if self._l2 is None:
            return {}
        return {k: float(v) for k, v in self._l2(n_rows).items() if v != 0.0}

    def checkpoint_params(self) -> list[tuple[Params, float]]:
        """Checkpoints as ``(params on the model's device, learning rate)``."""
        out = []
        for ck in self.checkpoints:
            missing = set(self.params) - set(ck.params)
            if missing:
                raise ValueError(
                    f"A checkpoint lacks the parameters {sorted(missing)[:3]}."
                )
            p = {
                k: torch.as_tensor(ck.params[k]).to(self.device, self.dtype)
                for k in self.params
            }
            out.append((p, float(ck.learning_rate)))
        return out

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.params.values())
        return (
            f"TorchModel(family={self.family!r}, output={self.output!r}, "
            f"n_params={n}, device={str(self.device)!r}, "
            f"n_checkpoints={len(self.checkpoints)})"
        )


def criterion_row_loss(criterion: nn.Module, output: str) -> Callable:
    """Per-row loss from a torch criterion, as skorch applies it.

    The criterion is copied with ``reduction="none"``. For ``NLLLoss`` on
    probabilities the log is taken first (with skorch's ``eps``); for
    ``BCEWithLogitsLoss`` the targets are cast to the output's dtype.
    """
    crit = copy.deepcopy(criterion)
    if not hasattr(crit, "reduction"):
        raise TypeError(
            f"The criterion {type(criterion).__name__} has no `reduction` "
            "attribute, so per-row losses cannot be taken from it."
        )
    crit.reduction = "none"

    def row_loss(out: Tensor, y: Tensor) -> Tensor:
        if output == "proba":
            out = torch.log(out + torch.finfo(out.dtype).eps)
        if output == "binary_logit":
            out = out.reshape(-1)
            y = y.to(out.dtype)
        loss = crit(out, y)
        return loss.reshape(loss.shape[0], -1).sum(1) if loss.ndim > 1 else loss

    return row_loss


def output_kind_of(criterion: nn.Module, *, probabilities: bool = False) -> str:
    """The output kind that goes with a criterion."""
    if isinstance(criterion, nn.CrossEntropyLoss):
        return "logits"
    if isinstance(criterion, nn.NLLLoss):
        return "proba" if probabilities else "log_proba"
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return "binary_logit"
    return "other"
