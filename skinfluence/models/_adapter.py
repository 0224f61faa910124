"""Model families: one :class:`ModelAdapter` per family, registered once.

An adapter owns everything skinfluence must know about a family of
estimators: whether an (unfitted) estimator is supported, how a fitted one
becomes a :class:`~skinfluence.models.TorchModel`, how to tell that it is
fitted, how to make it record training checkpoints, and how it takes its
inputs and returns its predictions. Nothing else in the package asks
``isinstance`` of an estimator: it asks :func:`adapter_for`.

Wrappers (a ``Pipeline``, an influence meta-estimator) are adapters too: they
name the estimator they wrap (:meth:`ModelAdapter.inner`), so that the
functions here walk down to the final model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from .._sklearn_compat import _routing_enabled, fit_requests
from ._base import TorchModel


class ModelAdapter:
    """Base class of the model families.

    Subclass it, implement :meth:`handles`, :meth:`check` and
    :meth:`to_torch` (and the other hooks where the family differs from a
    scikit-learn classifier), and register an instance with
    :func:`register_adapter`. See the "Extending" page of the documentation.

    Attributes
    ----------
    description : str
        How the supported family is named in error messages.
    """

    description: str = ""

    # ---------------------------------------------------------------- identity
    def handles(self, estimator) -> bool:
        """Whether ``estimator`` (fitted or not) belongs to this family."""
        raise NotImplementedError

    def inner(self, estimator):
        """The unfitted estimator a wrapper wraps; None for a model."""
        return None

    def rewrap(self, estimator, inner):
        """A clone of the wrapper ``estimator`` around ``inner`` (wrappers only)."""
        raise NotImplementedError

    # --------------------------------------------------------- before training
    def check(self, estimator) -> None:
        """Raise TypeError/ValueError if the unfitted ``estimator`` is unsupported."""

    def check_classes(self, estimator, n_classes: int) -> None:
        """Raise ValueError if the family cannot fit ``n_classes`` classes."""

    def check_curvature(self, estimator) -> None:
        """Raise ValueError if the training objective has no Hessian to invert."""

    def binary_only(self, estimator) -> bool:
        """Whether the model fits two classes only."""
        return False

    def has_input_gradient(self, estimator) -> bool:
        """Whether the model is differentiable in its input (adversarial
        objectives need it; trees are not)."""
        return True

    def check_objective(self, estimator, objective) -> None:
        """Raise ValueError if the model cannot be scored on ``objective``."""
        if getattr(objective, "needs_input_gradient", False) and not (
            self.has_input_gradient(estimator)
        ):
            raise ValueError(
                f"The {type(objective).__name__.lower()} objective attacks the "
                f"model's input along its gradient, and {type(estimator).__name__} "
                "has none (a tree's output is piecewise constant in its input). "
                "Use objective='utility' or 'fairness'."
            )

    def records_checkpoints(self, estimator) -> bool:
        """Whether :meth:`with_checkpoints` can make the model record checkpoints."""
        return False

    def with_checkpoints(self, estimator):
        """``estimator`` (an unfitted clone) set to record TracIn checkpoints."""
        return estimator

    def accepts_sample_weight(self, estimator) -> bool:
        """Whether ``fit`` (after :meth:`with_sample_weight`) takes ``sample_weight``."""
        from sklearn.utils.validation import has_fit_parameter

        return has_fit_parameter(estimator, "sample_weight")

    def with_sample_weight(self, estimator):
        """``estimator`` (an unfitted clone) set to take ``sample_weight``."""
        return estimator

    def fit_steps(self, estimator) -> int:
        """How many progress steps one ``fit`` makes (its epochs; else 1)."""
        return 1

    def prepared(self, estimator):
        """``estimator`` (an unfitted clone) as skinfluence fits it (default: as is)."""
        return estimator

    def sample_weight_params(self, estimator, sample_weight) -> dict:
        """The fit parameters that pass ``sample_weight`` to the model."""
        return {"sample_weight": sample_weight}

    # ------------------------------------------------------------------ inputs
    def input_dtype(self, estimator):
        """The float dtype(s) ``fit`` takes, as ``check_array`` accepts them."""
        return [np.float64, np.float32]

    def accepts_sparse(self, estimator) -> bool:
        """Whether ``fit`` takes a scipy sparse X."""
        return bool(get_tags(estimator).input_tags.sparse)

    def fit_input(self, X):
        """``X`` (checked, possibly sparse) in the form ``fit`` takes."""
        return X

    def fit_target(self, codes: np.ndarray, y: np.ndarray, estimator) -> np.ndarray:
        """The target ``fit`` takes, from class indices ``codes`` and labels ``y``."""
        return y

    def labels_from_predictions(self, pred, classes: np.ndarray):
        """Class labels from what the fitted model's ``predict`` returned."""
        return pred

    @property
    def fits_class_indices(self) -> bool:
        """Whether the model is trained on class indices instead of labels."""
        return False

    # --------------------------------------------------------------- fitted
    def is_fitted(self, estimator) -> bool:
        """Whether ``estimator`` is fitted."""
        try:
            check_is_fitted(estimator)
        except Exception:  # NotFittedError, or a TypeError for odd objects
            return False
        return True

    def to_torch(self, estimator) -> TorchModel:
        """The fitted ``estimator`` as a :class:`TorchModel`."""
        raise NotImplementedError


_ADAPTERS: list[ModelAdapter] = []


def register_adapter(adapter: ModelAdapter) -> ModelAdapter:
    """Register a model family (an adapter instance); returns it.

    Parameters
    ----------
    adapter : ModelAdapter
        The family's adapter. The families registered last are asked first,
        so a registration can refine a built-in family (an adapter for a
        subclass of ``LogisticRegression``, say).

    Returns
    -------
    ModelAdapter
        ``adapter``, so that the call can decorate a class instantiation.
    """
    if not isinstance(adapter, ModelAdapter):
        raise TypeError(f"{adapter!r} is not a ModelAdapter instance.")
    _ADAPTERS.insert(0, adapter)
    return adapter


def supported_families() -> str:
    """The registered families, for error messages."""
    return ", ".join(a.description for a in _ADAPTERS if a.description)


def adapter_for(estimator) -> ModelAdapter:
    """The adapter of the family ``estimator`` belongs to.

    Parameters
    ----------
    estimator : object
        An estimator, fitted or not.

    Returns
    -------
    ModelAdapter

    Raises
    ------
    TypeError
        When no registered family handles it.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.models import adapter_for
    >>> type(adapter_for(LogisticRegression())).__name__
    'LogisticRegressionAdapter'
    """
    for adapter in _ADAPTERS:
        if adapter.handles(estimator):
            return adapter
    raise TypeError(
        f"{type(estimator).__name__} is not supported. Supported: "
        f"{supported_families()}. InfluenceFilter and InfluenceSampler clean "
        "for any other classifier through a supported surrogate: "
        "InfluenceFilter(estimator, surrogate=LogisticRegression())."
    )


@dataclass(frozen=True)
class SupportInfo:
    """What :func:`check_supported` learnt about an (unfitted) estimator.

    Parameters
    ----------
    adapter : ModelAdapter
        The family of the final model.
    final : estimator
        The final model (the last step of a Pipeline, the estimator itself
        otherwise), unfitted.
    in_pipeline : bool
        Whether the model is wrapped (the last step of a Pipeline, or inside
        another influence meta-estimator), so that ``X`` reaches it only after
        the wrapper's own steps.
    """

    adapter: ModelAdapter
    final: object
    in_pipeline: bool

    @property
    def binary_only(self) -> bool:
        """Whether the final model fits two classes only."""
        return self.adapter.binary_only(self.final)

    @property
    def name(self) -> str:
        """The final model's class name, for messages."""
        return type(self.final).__name__


def check_supported(estimator) -> SupportInfo:
    """Raise if ``estimator`` will not be supported once fitted; else describe it.

    Parameters
    ----------
    estimator : estimator
        An unfitted estimator of a registered family, or a wrapper (a
        ``Pipeline``, an influence meta-estimator) around one.

    Returns
    -------
    SupportInfo
        The family of the final model and what a caller must know to feed it.

    Raises
    ------
    TypeError
        For an unsupported model family (a tree ensemble, an SVC, a skorch
        regressor, an unsupported criterion or loss).
    ValueError
        For a supported family with an unsupported setting (``class_weight``,
        ``average``).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.svm import SVC
    >>> from skinfluence.models import check_supported
    >>> check_supported(LogisticRegression()).name
    'LogisticRegression'
    >>> check_supported(SVC())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: SVC is not supported. ...
    """
    adapter = adapter_for(estimator)
    inner = adapter.inner(estimator)
    if inner is None:
        adapter.check(estimator)
        return SupportInfo(adapter, estimator, False)
    info = check_supported(inner)
    return SupportInfo(info.adapter, info.final, True)


def with_checkpoints(estimator):
    """An unfitted clone of ``estimator`` whose model records TracIn checkpoints.

    The final model (the estimator itself, the last step of a Pipeline, the
    model inside an influence meta-estimator) is set to record checkpoints
    when its family can (a skorch net gets a
    :class:`~skinfluence.callbacks.TracInCheckpoints` callback, unless it has
    one); other estimators are cloned unchanged. ``estimator`` itself is not
    modified.

    Parameters
    ----------
    estimator : estimator
        An estimator of a registered family, or a wrapper around one.

    Returns
    -------
    estimator
        A new, unfitted estimator.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.models import with_checkpoints
    >>> net = NeuralNetClassifier(torch.nn.Linear(2, 2), callbacks="disable")
    >>> [name for name, _ in with_checkpoints(net).callbacks]
    ['tracin_checkpoints']
    """
    return rebuild_final(estimator, lambda adapter, model: adapter.with_checkpoints(model))


def rebuild_final(estimator, change):
    """A clone of ``estimator`` whose final model is ``change(adapter, clone)``.

    Parameters
    ----------
    estimator : estimator
        A supported estimator or wrapper (Pipeline, influence meta-estimator).
    change : callable
        ``change(adapter, model) -> model``, applied to a clone of the final
        model with the adapter of its family.

    Returns
    -------
    estimator
        The wrappers cloned around the changed model.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> from skinfluence import InfluenceFilter
    >>> from skinfluence.models import rebuild_final
    >>> flt = InfluenceFilter(SGDClassifier(loss="log_loss"))
    >>> rebuild_final(flt, lambda adapter, model: model.set_params(alpha=0.01)).estimator
    SGDClassifier(alpha=0.01, loss='log_loss')
    """
    adapter = adapter_for(estimator)
    inner = adapter.inner(estimator)
    if inner is None:
        return change(adapter, clone(estimator))
    return adapter.rewrap(estimator, rebuild_final(inner, change))


def with_sample_weight(estimator):
    """An unfitted clone of ``estimator`` whose model takes ``sample_weight``.

    Parameters
    ----------
    estimator : estimator
        A supported estimator or wrapper (Pipeline, influence meta-estimator).

    Returns
    -------
    estimator
        The clone; a skorch net becomes a net whose loss is the weighted mean
        of the per-row losses (see :class:`~skinfluence.models.SkorchAdapter`).
        With metadata routing enabled, a wrapper's parts request the weights:
        the final model always (under the alias ``skinfluence_sample_weight``
        when its request was set to False), the other parts that request
        ``sample_weight`` keep their request, and those that left it unset
        are set not to request it.

    Raises
    ------
    TypeError
        When the model cannot take weights.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.models import with_sample_weight
    >>> net = with_sample_weight(NeuralNetClassifier(torch.nn.Linear(2, 2)))
    >>> type(net).__name__, net.module
    ('PreparedNeuralNetClassifier', Linear(in_features=2, out_features=2, bias=True))
    """

    def change(adapter, model):
        if not adapter.accepts_sample_weight(model):
            raise TypeError(
                f"{type(model).__name__}.fit takes no sample_weight, so its rows "
                "cannot be reweighted; use action='remove' or 'relabel'."
            )
        return adapter.with_sample_weight(model)

    out = rebuild_final(estimator, change)
    if _routing_enabled() and adapter_for(out).inner(out) is not None:
        _request_sample_weight(out)
    return out


#: the alias under which the weights reach a final model whose ``fit`` request
#: for ``sample_weight`` the user set to False (the user's own weights do not
#: reach it; the cleaning's do)
WEIGHT_ALIAS = "skinfluence_sample_weight"


def _final_model(estimator):
    """The final model object inside the wrappers of ``estimator`` (not a copy)."""
    inner = adapter_for(estimator).inner(estimator)
    return estimator if inner is None else _final_model(inner)


def _weight_consumers(estimator):
    """``(sub-estimator, its fit request for sample_weight)`` for each part of
    ``estimator`` whose ``fit`` takes ``sample_weight``."""
    parts = [estimator] + list(estimator.get_params(deep=True).values())
    seen = set()
    for part in parts:
        if isinstance(part, type) or id(part) in seen:
            continue
        seen.add(id(part))
        if not hasattr(part, "_get_metadata_request"):
            continue
        requests = fit_requests(part)
        if "sample_weight" in requests:
            yield part, requests["sample_weight"]


def _request_sample_weight(estimator) -> None:
    """Set, in place, the metadata requests of a wrapper's parts for reweighting.

    With metadata routing a wrapper (a Pipeline, a ColumnTransformer in it, an
    influence meta-estimator) routes ``sample_weight`` to the parts that
    request it, and raises for a part that takes it and left its request
    unset. So: the final model requests it (True when unset; under
    :data:`WEIGHT_ALIAS` when the user set False, so that the user's own
    weights still do not reach it); every other part that left it unset does
    not request it (the user did not ask for weights there); parts that
    request it (True or an alias) keep their request and get the weights too.
    """
    final = _final_model(estimator)
    if "sample_weight" not in fit_requests(final) and hasattr(final, "set_fit_request"):
        final.set_fit_request(sample_weight=True)  # a skorch net declares it here
    for part, request in list(_weight_consumers(estimator)):
        if part is final and request in (None, False):
            part.set_fit_request(sample_weight=True if request is None else WEIGHT_ALIAS)
        elif part is not final and request is None:
            part.set_fit_request(sample_weight=False)


def _routed_weight_keys(estimator) -> list[str]:
    """The fit parameters of the wrapper ``estimator`` (after
    :func:`_request_sample_weight`) that carry ``sample_weight`` to its parts."""
    keys = {
        "sample_weight" if request is True else request
        for _, request in _weight_consumers(estimator)
        if request is True or isinstance(request, str)
    }
    return sorted(keys)


def sample_weight_params(estimator, sample_weight) -> dict:
    """Fit parameters that give ``sample_weight`` to the model of ``estimator``.

    Parameters
    ----------
    estimator : estimator
        As returned by :func:`with_sample_weight`.
    sample_weight : ndarray of shape (n_samples,)
        One weight per row of the fit.

    Returns
    -------
    dict
        ``{"sample_weight": w}``, prefixed with the step names of wrappers
        (``"logisticregression__sample_weight"`` in a Pipeline). With
        metadata routing enabled, a wrapper routes the weights by its parts'
        requests (set by :func:`with_sample_weight`): the keys are those
        requests (``"sample_weight"``, or an alias), unprefixed.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence.models import sample_weight_params
    >>> list(sample_weight_params(make_pipeline(StandardScaler(), LogisticRegression()), [1.0]))
    ['logisticregression__sample_weight']
    """
    adapter = adapter_for(estimator)
    inner = adapter.inner(estimator)
    if inner is None:
        return adapter.sample_weight_params(estimator, sample_weight)
    if _routing_enabled():  # the wrapper routes them by the parts' requests
        return {key: sample_weight for key in _routed_weight_keys(estimator)}
    return adapter.sample_weight_params(
        estimator, sample_weight_params(inner, sample_weight)
    )


def is_fitted(estimator) -> bool:
    """Whether ``estimator`` (of a registered family) is fitted.

    Parameters
    ----------
    estimator : estimator, TorchModel or torch.nn.Module

    Returns
    -------
    bool

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.models import is_fitted
    >>> is_fitted(LogisticRegression())
    False
    """
    if isinstance(estimator, TorchModel):
        return True
    return adapter_for(estimator).is_fitted(estimator)
