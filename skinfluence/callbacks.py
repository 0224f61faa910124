"""skorch callbacks."""

from __future__ import annotations

from skorch.callbacks import Callback

from .models import Checkpoint


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
