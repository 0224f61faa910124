"""The peers of the counterfactual benchmarks on the same fitted models.

dattri's TRAK and CG influence function, captum's TracInCP, with the
validation objective as their target. Imported by ``bench_counterfactual.py``
and ``bench_counterfactual_cost.py``; not a script.
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr

import numpy as np
import torch
from harness import checkpoints_of

from skinfluence import as_torch_model
from skinfluence.objectives import Fairness


def dattri_tasks(est, model: str, objective: str, data, C: float = 1.0) -> dict:
    """dattri's ``AttributionTask``s for the fitted model, target the objective.

    The target is the validation objective, the whole validation set one
    "test sample" (the soft DP gap as its linearisation with the group
    weights frozen at the fitted model, as skinfluence's). Training losses:
    ``"cg"`` the mean cross-entropy plus LogisticRegression's L2 term
    ``||w||^2 / (2 C n)`` (``C`` the LogisticRegression's; the Hessian our influence function inverts);
    ``"trak"`` TRAK's margin ``log(p / (1 - p))``, as dattri documents it;
    ``"trak_loss"`` the cross-entropy (the configuration of runs 1-3).
    """
    from dattri.task import AttributionTask
    from torch.func import functional_call
    from torch.nn import functional as F

    Xtr, ytr, Xva, yva, sva = data
    lam = 0.0
    if model == "logreg":
        module = torch.nn.Linear(Xtr.shape[1], 1)
        state = {"weight": torch.as_tensor(est.coef_, dtype=torch.float32),
                 "bias": torch.as_tensor(est.intercept_, dtype=torch.float32)}  # fmt: skip
        lam = 1.0 / (C * len(Xtr))

        def logp(params, x):
            z = functional_call(module, params, (x,)).squeeze(-1)
            return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], -1)
    else:
        module = est.module_
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}

        def logp(params, x):
            return F.log_softmax(functional_call(module, params, (x,)), -1)

    def loss(params, data):
        x, y = data
        return -logp(params, x).gather(-1, y.unsqueeze(-1)).mean()

    def loss_l2(params, data):
        return loss(params, data) + (
            0.5 * lam * (params["weight"] ** 2).sum() if lam else 0.0
        )

    def target(params, data):
        x, y, w = data
        lp = logp(params, x)
        if objective == "utility":
            return -lp.gather(-1, y.unsqueeze(-1)).mean()
        return (w * lp[..., 1].exp()).sum()

    def correct_p(params, data):
        x, y = data
        return logp(params, x).gather(-1, y.unsqueeze(-1)).exp()

    def margin(params, data):
        x, y = data
        lp = logp(params, x)
        mine = torch.arange(lp.shape[-1]) == y.unsqueeze(-1)
        rest = torch.logsumexp(torch.where(mine, float("-inf"), lp), -1)
        return lp.gather(-1, y.unsqueeze(-1)).squeeze(-1) - rest

    if objective == "fairness":
        J = Fairness().bind(as_torch_model(est), Xva, yva, sensitive_features=sva)
        w = J.row_weights(J.model.params, len(yva)).cpu().double().numpy()
    else:
        w = np.zeros(len(yva))
    test = [torch.as_tensor(Xva)[None], torch.as_tensor(yva)[None],
            torch.as_tensor(w, dtype=torch.float32)[None]]  # fmt: skip
    losses = {"cg": loss_l2, "trak": margin, "trak_loss": loss}
    return {
        **{k: AttributionTask(loss_func=f, target_func=target, model=module,
                              checkpoints=state) for k, f in losses.items()},
        "correct_p": correct_p,
        "train": torch.utils.data.TensorDataset(torch.as_tensor(Xtr), torch.as_tensor(ytr)),
        "test": torch.utils.data.TensorDataset(*test),
    }  # fmt: skip


def _loader(t, key="train", batch_size=500):
    return torch.utils.data.DataLoader(t[key], batch_size=batch_size, shuffle=False)


def dattri_trak(t, proj_dim: int, task: str = "trak") -> np.ndarray:
    """dattri's TRAK scores in skinfluence's sign (higher = more beneficial).

    With the margin (``task="trak"``) dattri's score predicts how much
    including a row raises ``J``: minus it is our sign; with the loss
    gradients (``"trak_loss"``) the sign is already ours.
    """
    from dattri.algorithm.trak import TRAKAttributor

    att = TRAKAttributor(
        task=t[task], correct_probability_func=t["correct_p"], device="cpu",
        projector_kwargs={"proj_dim": proj_dim, "proj_seed": 0, "device": "cpu"},
    )  # fmt: skip
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):  # tqdm bars
        warnings.simplefilter("ignore")
        att.cache(_loader(t))
        out = (
            att.attribute(_loader(t, "test", 1))
            .reshape(-1)
            .detach()
            .numpy()
            .astype(float)
        )
    return -out if task == "trak" else out


def dattri_cg(t, damping: float, max_iter: int) -> np.ndarray:
    from dattri.algorithm.influence_function import IFAttributorCG

    att = IFAttributorCG(
        task=t["cg"], device="cpu", max_iter=max_iter, regularization=damping
    )
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):  # tqdm bars
        warnings.simplefilter("ignore")
        att.cache(_loader(t, batch_size=len(t["train"])))
        out = att.attribute(_loader(t), _loader(t, "test", 1))
    return out.reshape(-1).detach().numpy().astype(float)


def captum_tracin(est, data) -> np.ndarray:
    """captum's TracInCP on the MLP's checkpoints, mean validation cross-entropy."""
    import captum_ref

    Xtr, ytr, Xva, yva, _ = data
    cks = [(dict(c.params), float(c.learning_rate)) for c in checkpoints_of(est)]
    tensors = [torch.as_tensor(a) for a in (Xtr, ytr, Xva, yva)]
    return captum_ref.tracin_scores(est.module_, cks, *tensors, batch_size=512).astype(
        float
    )
