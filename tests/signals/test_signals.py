"""Every signal against a brute-force I matrix built from per-row autograd loops.

I_ij = sum_t lr_t <grad l_i(theta_t), grad l_j(theta_t)>, with the per-row
gradients from one autograd call per row (tests/_brute.py), margins from the
module's raw outputs row by row, and losses from the criterion row by row.
"""

import copy

import numpy as np
import pytest
import torch
from _brute import per_row_grads, rel_err
from cases import make_case
from torch import nn
from torch.func import functional_call

# the one private import: _matrix's cache and block bounds have no public
# parameter (test_blocks_without_cache_and_both_exact_methods)
import skinfluence.signals._matrix as matrix_mod
from skinfluence import compute_influence, compute_signals
from skinfluence.methods import METHODS
from skinfluence.models import as_torch_model
from skinfluence.objectives import Robustness
from skinfluence.signals import (
    SIGNAL_METHODS,
    SIGNALS,
    SignalAAI,
    influence_matrix,
    iter_influence_blocks,
)

# closed form (3 classes), vmap fallback (BatchNorm; a Linear called twice),
# log-softmax + NLL, one logit + BCE
NAMES = [
    "mlp_tanh_ce",
    "mlp_batchnorm_ce",
    "twice_linear_ce",
    "mlp_logsoftmax_nll",
    "binary_bce",
]


def with_checkpoints(name, n_ck=3, seed=0):
    module, loss, X, y, Xv, yv = make_case(name, seed=seed)
    g = torch.Generator().manual_seed(seed + 10)
    cks = [
        (
            {
                k: v.detach() + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                for k, v in module.named_parameters()
            },
            0.05 * (t + 1),
        )
        for t in range(n_ck)
    ]
    return (
        as_torch_model(module, loss=loss, checkpoints=cks),
        module,
        loss,
        X,
        y,
        Xv,
        yv,
    )


def signals_of(model, X, y, Xv=None, yv=None, names=tuple(SIGNALS), **kw):
    """compute_signals on a TorchModel, as float64 tensors by name."""
    df = compute_signals(model, X, y, Xv, yv, signals=list(names), **kw)
    return {k: torch.as_tensor(df[k].to_numpy().copy()) for k in df}


def brute_I(model, X, y, Xv, yv, cks):
    return sum(
        lr * per_row_grads(model, p, X, y) @ per_row_grads(model, p, Xv, yv).T
        for p, lr in cks
    )


def brute_margins(module, loss, params, X, y):
    """log p_y - max_{c != y} log p_c, one row at a time from the raw outputs."""
    m = copy.deepcopy(module).eval()
    out = []
    for i in range(len(X)):
        z = functional_call(m, params, (X[i : i + 1],)).reshape(-1)
        if isinstance(loss, nn.BCEWithLogitsLoss):
            lp = torch.stack(
                [nn.functional.logsigmoid(-z[0]), nn.functional.logsigmoid(z[0])]
            )
        elif isinstance(loss, nn.NLLLoss):
            lp = z  # the module ends in LogSoftmax
        else:
            lp = z - torch.logsumexp(z, 0)
        own = lp[y[i]]
        others = [lp[c] for c in range(len(lp)) if c != y[i]]
        out.append(own - max(others))
    return torch.stack(out)


def brute_losses(module, loss, params, X, y):
    m = copy.deepcopy(module).eval()
    out = []
    for i in range(len(X)):
        z = functional_call(m, params, (X[i : i + 1],))
        t = (
            y[i : i + 1].to(z.dtype)
            if isinstance(loss, nn.BCEWithLogitsLoss)
            else y[i : i + 1]
        )
        out.append(loss(z, t))
    return torch.stack(out)


def brute_signals(model, module, loss, X, y, Xv, yv):
    cks = model.checkpoint_params()
    infl = brute_I(model, X, y, Xv, yv, cks)
    sq = torch.stack([per_row_grads(model, p, X, y).pow(2).sum(1) for p, _ in cks])
    margins = torch.stack([brute_margins(module, loss, p, X, y) for p, _ in cks])
    per_class = torch.stack([infl[:, yv == c].sum(1) for c in torch.unique(yv)])
    return {
        "self_influence": sum(lr * s for (_, lr), s in zip(cks, sq, strict=True)),
        "aai": infl.abs().mean(1),
        "mai": infl.abs().sum(1),
        "mi": -infl.sum(1),
        "gd_class": -per_class.min(0).values,
        "loss": brute_losses(module, loss, model.params, X, y),
        "aum": -margins.mean(0),
        "instability": (sq[1:] - sq[:-1]).abs().mean(0),
        "relative_instability": (sq[1:] - sq[:-1]).abs().mean(0) / infl.abs().mean(1),
    }, infl


@pytest.mark.parametrize("name", NAMES)
def test_every_signal_equals_brute_force(name):
    model, module, loss, X, y, Xv, yv = with_checkpoints(name)
    expected, infl = brute_signals(model, module, loss, X, y, Xv, yv)
    assert set(expected) == set(SIGNALS)
    # batch sizes that do not divide n = 40 nor m = 15: blocks end mid-way
    assert rel_err(influence_matrix(model, X, y, Xv, yv, batch_size=7), infl) <= 1e-10
    got = signals_of(model, X, y, Xv, yv, batch_size=9)
    for signal, want in expected.items():
        assert got[signal].shape == (len(X),)
        assert rel_err(got[signal], want) <= 1e-10, signal


def test_every_signal_method_scores_minus_the_signal():
    """score() on the validation rows it is given; the objective is ignored."""
    model, module, loss, X, y, Xv, yv = with_checkpoints("mlp_tanh_ce")
    expected, _ = brute_signals(model, module, loss, X, y, Xv, yv)
    # adversarial copies of the validation rows: a signal must not read them
    robust = Robustness(epsilon=0.5).bind(model, Xv, yv)
    for signal, cls in SIGNAL_METHODS.items():
        assert cls._key == f"signal_{signal}"
        assert isinstance(METHODS.resolve(cls._key), cls)
        val = (Xv, yv) if cls.needs_validation_rows else None
        for objective in (None, robust):
            scores = cls().score(model, objective, X, y, batch_size=11, validation=val)
            assert rel_err(scores, -expected[signal]) <= 1e-10, signal
        if not cls.needs_validation_rows:
            by_key = compute_influence(model, X, y, method=cls._key, batch_size=11)
            assert rel_err(by_key, -expected[signal]) <= 1e-10, signal
    with pytest.raises(ValueError, match="needs validation rows"):
        SignalAAI().score(model, robust, X, y, batch_size=11)


def test_blocks_without_cache_and_both_exact_methods(monkeypatch):
    model, _, _, X, y, Xv, yv = with_checkpoints("mlp_tanh_ce")
    X, y = X[:6], y[:6]
    infl = brute_I(model, X, y, Xv, yv, model.checkpoint_params())
    monkeypatch.setattr(matrix_mod, "_MAX_CACHE_BYTES", 0)  # recompute val features
    monkeypatch.setattr(matrix_mod, "_BLOCK_ELEMENTS", 40)  # blocks of 2 rows (m = 15)
    for method in ("closed_form", "vmap"):
        blocks = list(
            iter_influence_blocks(model, X, y, Xv, yv, batch_size=4, method=method)
        )
        assert [sl.stop - sl.start for sl, _ in blocks] == [2, 2, 2]
        assert rel_err(torch.cat([b for _, b in blocks]), infl) <= 1e-10


def test_closed_form_is_refused_where_it_does_not_apply():
    model, _, _, X, y, Xv, yv = with_checkpoints("mlp_batchnorm_ce")
    with pytest.raises(ValueError, match="closed form"):
        influence_matrix(model, X, y, Xv, yv, method="closed_form")


def test_without_checkpoints_the_final_model_has_weight_one():
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce")
    model = as_torch_model(module, loss=loss)
    infl = (
        per_row_grads(model, model.params, X, y)
        @ per_row_grads(model, model.params, Xv, yv).T
    )
    got = signals_of(model, X, y, Xv, yv, ["aai", "mi"], batch_size=16)
    assert rel_err(got["aai"], infl.abs().mean(1)) <= 1e-10
    assert rel_err(got["mi"], -infl.sum(1)) <= 1e-10
    with pytest.raises(ValueError, match="at least 2"):
        signals_of(model, X, y, names=["instability"])
    with pytest.raises(ValueError, match="validation rows"):
        signals_of(model, X, y, names=["aai"])


def test_cancellation_mi_is_zero_while_aai_is_large():
    """Influences of opposite sign cancel in MI, not in AAI (nor in GD-class).

    A linear softmax model at theta = 0 predicts p = (1/2, 1/2) everywhere;
    the validation set holds every point twice, once with each label. The
    gradients of a pair, (p - e_0) x^T and (p - e_1) x^T, are opposite, so
    sum_j I_ij = 0 exactly for every training row i, although each row
    strongly influences every validation row.
    """
    torch.manual_seed(0)
    module = nn.Linear(3, 2).double()
    with torch.no_grad():
        module.weight.zero_()
        module.bias.zero_()
    model = as_torch_model(module, loss=nn.CrossEntropyLoss())
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (30,), generator=g)
    x_val = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Xv = torch.cat([x_val, x_val])
    yv = torch.cat([torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)])
    got = signals_of(model, X, y, Xv, yv, ["aai", "mi", "gd_class"], batch_size=8)
    infl = (
        per_row_grads(model, model.params, X, y)
        @ per_row_grads(model, model.params, Xv, yv).T
    )
    aai, mi, gd = got["aai"], got["mi"], got["gd_class"]
    assert rel_err(aai, infl.abs().mean(1)) <= 1e-10
    assert infl.abs().mean(1).min() > 0.1  # every row influences a lot ...
    assert mi.abs().max() <= 1e-12 * aai.max()  # ... and MI sees nothing
    assert infl.sum(1).abs().max() <= 1e-12 * aai.max()  # (so does brute force)
    # GD-class sums per class, where the signs do not cancel
    assert rel_err(gd, infl[:, :8].sum(1).abs()) <= 1e-10
    assert gd.mean() > 1.0  # large where MI is exactly zero


def test_projection_approaches_the_exact_aai_and_is_seeded():
    model, _, _, X, y, Xv, yv = with_checkpoints("mlp_tanh_ce")
    exact = brute_I(model, X, y, Xv, yv, model.checkpoint_params()).abs().mean(1)

    def projected(k, seed, batch_size=64):
        return signals_of(
            model,
            X,
            y,
            Xv,
            yv,
            ["aai"],
            batch_size=batch_size,
            projection_dim=k,
            random_state=seed,
        )["aai"]

    errors = {k: rel_err(projected(k, 0), exact) for k in (30, 300, 20000)}
    assert errors[20000] <= 0.02
    assert errors[30] > errors[300] > errors[20000]
    a, b, c = projected(300, 0), projected(300, 0), projected(300, 1)
    assert torch.equal(a, b)  # deterministic for a seed
    assert not torch.allclose(a, c)
    # the same sketch whatever the block size (directions depend on the seed only)
    assert rel_err(projected(300, 0, batch_size=16), a) <= 1e-10


def test_projection_is_unbiased_on_average():
    """Mean over seeds of the sketched I approaches the exact I faster than one sketch."""
    model, _, _, X, y, Xv, yv = with_checkpoints("binary_bce", n_ck=1)
    infl = brute_I(model, X[:10], y[:10], Xv, yv, model.checkpoint_params())
    runs = [
        influence_matrix(
            model, X[:10], y[:10], Xv, yv, projection_dim=50, random_state=s
        )
        for s in range(40)
    ]
    single = np.mean([rel_err(r, infl) for r in runs])
    assert rel_err(torch.stack(runs).mean(0), infl) < 0.35 * single


@pytest.mark.cuda
def test_signals_on_cuda_equal_cpu():
    model, module, loss, X, y, Xv, yv = with_checkpoints("mlp_tanh_ce")
    cks = [(p, lr) for p, lr in model.checkpoint_params()]
    gpu = as_torch_model(copy.deepcopy(module).cuda(), loss=loss, checkpoints=cks)
    cpu = signals_of(model, X, y, Xv, yv, batch_size=9)
    dev = signals_of(gpu, X, y, Xv, yv, batch_size=9)
    for signal in SIGNALS:
        assert rel_err(dev[signal], cpu[signal]) <= 1e-8, signal
    scores = SignalAAI().score(gpu, None, X, y, batch_size=9, validation=(Xv, yv))
    assert scores.device.type == "cuda"
    kw = {"projection_dim": 64, "random_state": 0}
    proj = signals_of(gpu, X, y, Xv, yv, ["aai"], **kw)["aai"]
    assert rel_err(proj, signals_of(model, X, y, Xv, yv, ["aai"], **kw)["aai"]) <= 1e-8
