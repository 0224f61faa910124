"""Wrappers and plain modules: Pipeline, torch.nn.Module."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._adapter import ModelAdapter, adapter_for, register_adapter
from ._base import TorchModel


class PipelineAdapter(ModelAdapter):
    """A ``Pipeline`` whose last step is a supported model.

    The earlier steps only transform ``X``: influence is computed in the final
    model's input space, and the TorchModel applies them to the rows first.
    """

    description = "a Pipeline whose last step is one of these"

    def handles(self, estimator) -> bool:
        return isinstance(estimator, Pipeline)

    def inner(self, pipe):
        steps = getattr(pipe, "steps", None)
        if not steps:
            raise TypeError("The Pipeline has no steps.")
        final = steps[-1][1]
        if final is None or (isinstance(final, str) and final == "passthrough"):
            raise TypeError("The Pipeline's last step must be a supported model.")
        return final

    def rewrap(self, pipe, inner):
        return clone(pipe).set_params(**{pipe.steps[-1][0]: inner})

    def sample_weight_params(self, pipe, inner_params):
        # without metadata routing (with it, see models.sample_weight_params)
        name = pipe.steps[-1][0]
        return {f"{name}__{k}": v for k, v in inner_params.items()}

    def is_fitted(self, pipe) -> bool:
        final = self.inner(pipe)
        return adapter_for(final).is_fitted(final)

    def to_torch(self, pipe) -> TorchModel:
        from ._convert import as_torch_model

        model = as_torch_model(self.inner(pipe))
        if len(pipe.steps) > 1:
            head = pipe[:-1]
            check_is_fitted(head)
            model.transform = Then(head.transform, model.transform)
            model.family = f"Pipeline({model.family})"
            model.n_features_in = getattr(pipe, "n_features_in_", None)
        return model


class Then:
    """``X -> second(first(X))`` (``first`` alone when ``second`` is None), picklable."""

    def __init__(self, first, second=None) -> None:
        self.first = first
        self.second = second

    def __call__(self, X):
        X = self.first(X)
        return X if self.second is None else self.second(X)


class TorchModuleAdapter(ModelAdapter):
    """A plain ``torch.nn.Module``, fitted by the user.

    It is converted with ``as_torch_model(module, loss=...)`` (the module
    does not know its criterion), and cannot be trained here.
    """

    description = "a torch.nn.Module with loss=..."

    def handles(self, estimator) -> bool:
        return isinstance(estimator, nn.Module)

    def check(self, module) -> None:
        raise TypeError(
            "A plain torch.nn.Module cannot be trained here; wrap it in a skorch "
            "NeuralNetClassifier."
        )

    def is_fitted(self, module) -> bool:
        return True

    def to_torch(self, module) -> TorchModel:
        raise TypeError(
            "A plain torch.nn.Module needs its training criterion: "
            "as_torch_model(module, loss=torch.nn.CrossEntropyLoss())."
        )


register_adapter(PipelineAdapter())
register_adapter(TorchModuleAdapter())
