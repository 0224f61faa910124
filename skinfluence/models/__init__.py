"""Model families: adapters from fitted estimators to :class:`TorchModel`.

Each family is one :class:`ModelAdapter` subclass registered once with
:func:`register_adapter` (skorch nets, LogisticRegression, SGDClassifier,
Pipeline, plain torch modules, and skinfluence's own meta-estimators);
everything else asks :func:`adapter_for`.
"""

from ._adapter import (
    ModelAdapter,
    SupportInfo,
    adapter_for,
    check_supported,
    is_fitted,
    rebuild_final,
    register_adapter,
    sample_weight_params,
    supported_families,
    with_checkpoints,
    with_sample_weight,
)
from ._base import Checkpoint, TorchModel

# the built-in families (registered last, asked first)
from ._skorch import SkorchAdapter, TracInCheckpoints  # noqa: I001
from ._sklearn import LogisticRegressionAdapter, SGDClassifierAdapter
from ._wrappers import PipelineAdapter, TorchModuleAdapter
from ._trees import (
    HistGradientBoostingAdapter,
    LightGBMAdapter,
    TreeEnsemble,
    XGBoostAdapter,
)
from ._convert import as_torch_model

__all__ = [
    "Checkpoint",
    "HistGradientBoostingAdapter",
    "LightGBMAdapter",
    "LogisticRegressionAdapter",
    "ModelAdapter",
    "PipelineAdapter",
    "SGDClassifierAdapter",
    "SkorchAdapter",
    "SupportInfo",
    "TorchModel",
    "TorchModuleAdapter",
    "TracInCheckpoints",
    "TreeEnsemble",
    "XGBoostAdapter",
    "adapter_for",
    "as_torch_model",
    "check_supported",
    "is_fitted",
    "rebuild_final",
    "register_adapter",
    "sample_weight_params",
    "supported_families",
    "with_checkpoints",
    "with_sample_weight",
]
