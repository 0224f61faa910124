"""The skorch family: NeuralNetClassifier and NeuralNetBinaryClassifier."""

from __future__ import annotations

import copy
import copyreg

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet, NeuralNetBinaryClassifier, NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from ._adapter import ModelAdapter, register_adapter
from ._base import Checkpoint, TorchModel, criterion_row_loss, output_kind_of


class TracInCheckpoints(Callback):
    """Record the parameters and the learning rate at the end of epochs.

    Add it to a skorch net's ``callbacks`` before fitting; TracIn and
    self-influence then use the recorded checkpoints. They are kept in
    memory, on the CPU, in ``checkpoints_``.

    Parameters
    ----------
    every : int, default=1
        Record every ``every``-th epoch (the last epoch is always recorded
        when it is a multiple of ``every``).

    Attributes
    ----------
    checkpoints_ : list of Checkpoint
        One per recorded epoch: the trainable parameters and the learning
        rate of the optimizer's first parameter group during that epoch's
        last training step.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.callbacks import TracInCheckpoints
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Sequential(torch.nn.Linear(2, 2)), criterion=torch.nn.CrossEntropyLoss,
    ...     max_epochs=3, lr=0.1, train_split=None, verbose=0,
    ...     callbacks=[("tracin", TracInCheckpoints())])
    >>> X = torch.randn(20, 2).numpy(); y = (X[:, 0] > 0).astype("int64")
    >>> _ = net.fit(X, y)
    >>> [ck.learning_rate for ck in dict(net.callbacks_)["tracin"].checkpoints_]
    [0.1, 0.1, 0.1]
    """

    def __init__(self, every: int = 1) -> None:
        self.every = every

    def initialize(self):
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(f"every must be an int >= 1, got {self.every!r}.")
        self.checkpoints_ = []
        self._lr = None
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self._lr = float(net.optimizer_.param_groups[0]["lr"])

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every:
            return
        lr = self._lr
        if lr is None:
            lr = float(net.optimizer_.param_groups[0]["lr"])
        params = {
            name: p.detach().to("cpu", copy=True)
            for name, p in net.module_.named_parameters()
            if p.requires_grad
        }
        self.checkpoints_.append(Checkpoint(params, lr))


class PreparedNet:
    """Mixin: a skorch net as skinfluence fits it, for any user module.

    - ``fit(X, y, sample_weight=w)`` weights the rows: the loss of a batch becomes
      ``mean_i w_i l_i`` (the criterion with ``reduction="none"``, weighted,
      averaged over the batch), so weight 1 everywhere is the net's own loss
      and weight 0 ignores a row. The weights travel with ``X`` as
      ``{"X": X, "sample_weight": w}`` (skorch slices dicts per batch) and are
      taken out before the module sees its input.
    - Floating-point inputs are cast to the module's dtype, so a Pipeline
      whose steps output float64 can end in a float32 net.

    The user's module is unchanged. Built by :func:`prepared_net_class`.
    """

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # packed here, below ``fit``, so that a subclass's own ``fit`` still
        # receives X as the user gave it
        sample_weight = fit_params.pop("sample_weight", None)
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
            X = {"X": X, "sample_weight": w}
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def infer(self, x, **fit_params):
        if isinstance(x, dict) and "sample_weight" in x:
            x = x["X"]
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            param = next(self.module_.parameters(), None)
            if param is not None and x.dtype != param.dtype:
                x = x.to(param.dtype)
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not (isinstance(X, dict) and "sample_weight" in X):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        crit = self.criterion_
        reduction, crit.reduction = crit.reduction, "none"
        try:
            rows = super().get_loss(y_pred, y_true, X=X, training=training)
        finally:
            crit.reduction = reduction
        w = torch.as_tensor(X["sample_weight"], device=rows.device, dtype=rows.dtype)
        return (rows.reshape(len(w), -1).sum(1) * w).mean()

    def __reduce_ex__(self, protocol):
        # A class built by prepared_net_class exists only in the process that
        # built it: pickle the instance as "prepare the user's class again,
        # then restore the state" (skorch's own __getstate__/__setstate__).
        base = _BASE_OF.get(type(self))
        if base is None:  # a class defined at module level pickles by name
            return super().__reduce_ex__(protocol)
        return (_new_prepared, (base,), self.__getstate__())


class PreparedNeuralNetClassifier(PreparedNet, NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` as skinfluence fits it; see :class:`PreparedNet`."""


class PreparedNeuralNetBinaryClassifier(PreparedNet, NeuralNetBinaryClassifier):
    """skorch's ``NeuralNetBinaryClassifier`` as skinfluence fits it; see :class:`PreparedNet`."""


class _PreparedMeta(type):
    """Metaclass of the classes :func:`prepared_net_class` builds at run time.

    It only marks them, so that ``copyreg`` pickles such a class as the call
    that rebuilds it from the user's net class (:func:`_reduce_prepared_class`).
    """


# the user's net class -> its prepared class; and back, for the built ones
_PREPARED: dict[type, type] = {
    NeuralNetClassifier: PreparedNeuralNetClassifier,
    NeuralNetBinaryClassifier: PreparedNeuralNetBinaryClassifier,
}
_BASE_OF: dict[type, type] = {}


def prepared_net_class(cls: type) -> type:
    """The subclass of the skorch net class ``cls`` with :class:`PreparedNet`.

    skorch's two classifiers have theirs defined here; for any other class
    (a user's subclass) one class is built per ``cls`` and kept. A built class
    is not a module attribute: its instances pickle as ``cls`` (found by name,
    so it must be importable where they are loaded, as for any pickle) plus
    the net's state, and are rebuilt through this function on loading, in
    any process. The class itself pickles the same way.
    """
    if issubclass(cls, PreparedNet):
        return cls
    if cls not in _PREPARED:
        name = f"Prepared{cls.__name__}"
        meta = _PreparedMeta if type(cls) is type else type(cls)
        new = meta(
            name, (PreparedNet, cls), {"__module__": __name__, "__qualname__": name}
        )
        _PREPARED[cls] = new
        _BASE_OF[new] = cls
    return _PREPARED[cls]


def _new_prepared(base: type):
    """An empty instance of ``base``'s prepared class, for unpickling."""
    cls = prepared_net_class(base)
    return cls.__new__(cls)


def _reduce_prepared_class(cls: type):
    base = _BASE_OF.get(cls)
    if base is None:  # not built here: by name
        return cls.__qualname__
    return prepared_net_class, (base,)


copyreg.pickle(_PreparedMeta, _reduce_prepared_class)


class EpochProgress(Callback):
    """Advance skinfluence's progress bar at the end of every epoch.

    Added by the filter to the nets it fits when ``verbose > 0``.
    """

    def on_epoch_end(self, net, **kwargs):
        from .._progress import advance

        advance(1, detail=f"epoch {len(net.history)} of {net.max_epochs}")


def _name(obj) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _is_class_or_instance(obj, classes) -> bool:
    if isinstance(obj, type):
        return issubclass(obj, classes)
    return isinstance(obj, classes)


def _weight_decay(net) -> dict[int, float]:
    """id(parameter) -> weight decay that the optimizer adds as an L2 term."""
    opt = getattr(net, "optimizer_", None)
    if opt is None:
        return {}
    decoupled = isinstance(opt, torch.optim.AdamW)
    out = {}
    for group in opt.param_groups:
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        if decoupled or group.get("decoupled_weight_decay", False):
            wd = 0.0  # decoupled decay is not a term of the objective
        for p in group["params"]:
            out[id(p)] = wd
    return out


def _recorded_checkpoints(net) -> list[Checkpoint]:
    for _, cb in getattr(net, "callbacks_", []) or []:
        if isinstance(cb, TracInCheckpoints):
            return list(getattr(cb, "checkpoints_", []))
    return []


def _has_callback(callbacks, cls: type) -> bool:
    """Whether the ``callbacks`` parameter holds a ``cls`` (instance or class)."""
    if not isinstance(callbacks, list | tuple):
        return False
    for item in callbacks:
        cb = item[1] if isinstance(item, tuple | list) else item
        if isinstance(cb, cls) or cb is cls:
            return True
    return False


def _rebuilt(net, cls: type, params: dict):
    """``cls(**params)`` with the metadata requests of ``net``.

    ``get_params`` leaves out the requests set by ``set_fit_request``
    (scikit-learn's ``clone`` copies them apart): without this a rebuilt net
    would drop them, and a Pipeline or the filter would no longer route the
    user's ``sample_weight`` (or its alias) to it.
    """
    new = cls(**params)
    requests = getattr(net, "_metadata_request", None)
    if requests is not None:
        new._metadata_request = copy.deepcopy(requests)
    return new


class SkorchAdapter(ModelAdapter):
    """skorch's ``NeuralNetClassifier`` (``CrossEntropyLoss`` on logits or
    ``NLLLoss`` on probabilities) and ``NeuralNetBinaryClassifier``
    (``BCEWithLogitsLoss``).

    The per-row loss is the net's criterion with ``reduction="none"``; with
    ``NLLLoss`` the module outputs probabilities and their log is taken as
    skorch does (``log(p + eps)``). An optimizer's (coupled) ``weight_decay``
    enters the training objective as ``wd / 2 ||theta||^2``. Nets are trained
    on class indices and predict class indices.
    """

    description = "skorch NeuralNetClassifier / NeuralNetBinaryClassifier"

    def handles(self, estimator) -> bool:
        return isinstance(estimator, NeuralNet)

    def check(self, net) -> None:
        crit = net.criterion
        if isinstance(net, NeuralNetBinaryClassifier):
            if not _is_class_or_instance(crit, nn.BCEWithLogitsLoss):
                raise TypeError(
                    "NeuralNetBinaryClassifier is supported with BCEWithLogitsLoss "
                    f"only, not {_name(crit)}."
                )
        elif isinstance(net, NeuralNetClassifier):
            if not _is_class_or_instance(crit, nn.CrossEntropyLoss | nn.NLLLoss):
                raise TypeError(
                    "NeuralNetClassifier is supported with CrossEntropyLoss (on "
                    f"logits) or NLLLoss (on probabilities), not {_name(crit)}."
                )
        else:
            raise TypeError(
                f"{type(net).__name__} is not a skorch classifier; use "
                "NeuralNetClassifier or NeuralNetBinaryClassifier."
            )

    def binary_only(self, net) -> bool:
        return isinstance(net, NeuralNetBinaryClassifier)

    def records_checkpoints(self, net) -> bool:
        return True

    def with_checkpoints(self, net):
        callbacks = net.callbacks
        if _has_callback(callbacks, TracInCheckpoints):
            return net
        params = net.get_params(deep=False)
        new = [("tracin_checkpoints", TracInCheckpoints())]
        if isinstance(callbacks, str) and callbacks == "disable":
            # keep skorch's default callbacks off, as "disable" asked
            params.update(
                {f"callbacks__{n}": None for n, _ in net.get_default_callbacks()}
            )
            params["callbacks"] = new
        else:
            params["callbacks"] = [*(callbacks or []), *new]
        return _rebuilt(net, type(net), params)

    def accepts_sample_weight(self, net) -> bool:
        return True  # through a PreparedNet subclass

    def with_sample_weight(self, net):
        return self.prepared(net)

    def fit_steps(self, net) -> int:
        return int(net.max_epochs)

    def prepared(self, net):
        """The net as a :class:`PreparedNet` (weights, input dtype); when
        verbose, with a callback that counts epochs on the progress bar.

        The metadata requests of ``net`` (``set_fit_request``) are kept, and
        preparing a prepared net changes nothing (the callback is added once).
        """
        from .._progress import level

        params = net.get_params(deep=False)
        if level() > 0 and not _has_callback(net.callbacks, EpochProgress):
            if isinstance(net.callbacks, str) and net.callbacks == "disable":
                params.update(
                    {f"callbacks__{n}": None for n, _ in net.get_default_callbacks()}
                )
                params["callbacks"] = []
            params["callbacks"] = [
                *(params["callbacks"] or []),
                ("epoch_progress", EpochProgress()),
            ]
        return _rebuilt(net, prepared_net_class(type(net)), params)

    def input_dtype(self, net):
        """float64 for a module instance in double precision, else float32.

        A module given as an instance tells its dtype; a module class is
        built in torch's default dtype (float32 unless changed).
        """
        module = getattr(net, "module", None)
        params = list(module.parameters()) if isinstance(module, nn.Module) else []
        dtype = params[0].dtype if params else torch.get_default_dtype()
        return np.float64 if dtype == torch.float64 else np.float32

    def accepts_sparse(self, net) -> bool:
        return True  # densified by fit_input

    def fit_input(self, X):
        """skorch nets take dense arrays: a sparse X is densified."""
        return X.toarray() if sp.issparse(X) else X

    @property
    def fits_class_indices(self) -> bool:
        return True

    def fit_target(self, codes, y, net):
        return codes.astype(np.float32 if self.binary_only(net) else np.int64)

    def labels_from_predictions(self, pred, classes):
        return classes[np.asarray(pred).astype(np.intp)]

    def is_fitted(self, net) -> bool:
        return bool(getattr(net, "initialized_", False))

    def to_torch(self, net) -> TorchModel:
        if not self.is_fitted(net):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("The skorch net is not initialized/fitted.")
        self.check(net)
        crit = net.criterion_
        if isinstance(net, NeuralNetBinaryClassifier):
            output, classes = "binary_logit", np.array([0, 1])
        else:
            output = output_kind_of(crit, probabilities=True)
            classes = getattr(net, "classes_", None)
        decay = _weight_decay(net)
        names = {n: id(p) for n, p in net.module_.named_parameters() if p.requires_grad}

        def l2(n_rows: int) -> dict[str, float]:
            return {n: decay.get(i, 0.0) for n, i in names.items()}

        return TorchModel(
            net.module_,
            criterion_row_loss(crit, output),
            output=output,
            classes=None if classes is None else np.asarray(classes),
            l2=l2,
            checkpoints=_recorded_checkpoints(net),
            family=type(net).__name__,
            linear_in_params=isinstance(net.module_, nn.Linear),
        )


register_adapter(SkorchAdapter())
