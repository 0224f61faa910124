"""skinfluence's meta-estimators as estimators: their shared base and parameters,
their metadata routing, and their model family (registered here, where it is
defined)."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping
from sklearn.utils.validation import check_is_fitted

from ._compute import resolve_method, resolve_objective
from .models import ModelAdapter, as_torch_model, check_supported, register_adapter

#: parameters given as a registry key or an instance, and their registries
_STRATEGIES = {"objective": resolve_objective, "method": resolve_method, "constraint": resolve_objective}


class InfluenceMixin:
    """Base of skinfluence's meta-estimators: InfluenceFilter, InfluenceSampler.

    Their model family is registered once (:class:`InfluenceMetaAdapter`),
    so a filter can wrap another filter. Input tags follow the wrapped
    estimator. Both take the same parameters, stored here as given: the
    sampler returns the rows the filter would refit on.
    """

    def __init__(
        self,
        estimator,
        *,
        objective="utility",
        method="ip",
        prune_ratio=0.05,
        action="remove",
        constraint="auto",
        rounds="auto",
        surrogate=None,
        validation_size=0.2,
        refit_on="train",
        batch_size=2048,
        memory=None,
        verbose=0,
        random_state=None,
    ):
        self.estimator = estimator
        self.objective = objective
        self.method = method
        self.prune_ratio = prune_ratio
        self.action = action
        self.constraint = constraint
        self.rounds = rounds
        self.surrogate = surrogate
        self.validation_size = validation_size
        self.refit_on = refit_on
        self.batch_size = batch_size
        self.memory = memory
        self.verbose = verbose
        self.random_state = random_state

    def set_params(self, **params):
        """Set the parameters of this estimator.

        As scikit-learn's ``set_params``; in addition, a nested parameter of
        an objective, method or constraint given as a string
        (``objective="fairness"``, then ``objective__metric=...``, as a
        ``GridSearchCV`` grid sets it) first replaces the string by the
        instance it names.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator
            This estimator.
        """
        for name, resolve in _STRATEGIES.items():
            nested = any(key.startswith(f"{name}__") for key in params)
            current = params.get(name, getattr(self, name, None))
            if nested and isinstance(current, str):
                params[name] = resolve(current)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
            info = check_supported(self.estimator)
        except (TypeError, ValueError, AttributeError):
            return tags
        tags.input_tags.sparse = (
            inner.input_tags.sparse
            if info.in_pipeline
            else info.adapter.accepts_sparse(info.final)
        )
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


def metadata_router(owner, pairs) -> MetadataRouter:
    """The routing of a meta-estimator: its own requests (``sensitive_features``,
    ``X_val``, ...) and ``(caller, callee)`` pairs of methods to ``estimator``."""
    mapping = MethodMapping()
    for caller, callee in pairs:
        mapping = mapping.add(caller=caller, callee=callee)
    return (
        MetadataRouter(owner=owner)
        .add_self_request(owner)
        .add(estimator=owner.estimator, method_mapping=mapping)
    )


class InfluenceMetaAdapter(ModelAdapter):
    """skinfluence's own meta-estimators, as wrappers of their ``estimator``.

    A fitted one converts to its (re)fitted model, ``estimator_``.
    """

    def handles(self, estimator) -> bool:
        return isinstance(estimator, InfluenceMixin)

    def inner(self, meta):
        return meta.estimator

    def rewrap(self, meta, inner):
        return clone(meta).set_params(estimator=inner)

    def sample_weight_params(self, meta, inner_params):
        return inner_params  # the meta-estimator's fit passes them on

    def is_fitted(self, meta) -> bool:
        return hasattr(meta, "influence_")

    def to_torch(self, meta):
        check_is_fitted(meta, "influence_")
        return as_torch_model(meta.estimator_)


register_adapter(InfluenceMetaAdapter())
